"""What the inferd binaries accept and serve, read from the binaries and the source tree, for the
manifest checks: their flags (from `--help`), the HTTP paths their probes may use, the
Kubernetes API access the gateway needs, and the argument parsing rules of common/flags.cc.
"""
import os
import re
import subprocess

# HTTP paths a probe may use, and the file that serves them (`path == "/..."` comparisons).
HEALTH_SOURCES = {
    "inferd-server": "serving/http_handler.cc",  # on --rest_api_port
    "inferd-gateway": "balancer/admin_page.cc",  # on --monitoring_port
}
# The listener each binary's probes reach, by flag.
PROBE_PORT_FLAG = {"inferd-server": "rest_api_port", "inferd-gateway": "monitoring_port"}
# Container port names the manifests use for each binary's listeners, by flag.
PORT_FLAGS = {
    "inferd-server": {"grpc": "port", "http": "rest_api_port"},
    "inferd-gateway": {"grpc": "port", "http": "rest_api_port", "admin": "monitoring_port"},
}
# Flags whose values are files the process reads.
PATH_FLAGS = ("model_config_file", "batching_parameters_file", "monitoring_config_file",
              "k8s_token_file", "k8s_ca_file", "ssl_config_file")

K8S_SOURCE = "balancer/k8s_source.cc"
# What balancer/k8s_source.cc requests, and the RBAC verb each request needs: a GET of the
# EndpointSlice collection with a label selector is `list`; the same with watch=1 is `watch`.
K8S_REQUESTS = {
    "list": ("/apis/discovery.k8s.io/v1/namespaces/", "/endpointslices?labelSelector="),
    "watch": ("&watch=1",),
}


class Flag:
    def __init__(self, name, kind, default):
        self.name, self.kind, self.default = name, kind, default


class Binary:
    """One binary's flags, from running it with --help."""

    def __init__(self, name, path):
        self.name, self.path = name, path
        self.flags = {}      # name -> Flag
        self.ignored = set()  # accepted for TF Serving compatibility, without effect
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError("%s --help exited %d: %s" % (path, out.returncode, out.stderr))
        lines = out.stdout.splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^  --(\w+) \((\w+), default (.*)\)$", line)
            if m:
                default = m.group(3)
                if m.group(2) == "string":
                    default = default[1:-1]
                self.flags[m.group(1)] = Flag(m.group(1), m.group(2), default)
            if line.startswith("accepted and ignored") and i + 1 < len(lines):
                self.ignored = {f.strip().lstrip("-") for f in lines[i + 1].split(",")}
        if not self.flags:
            raise RuntimeError("%s --help lists no flags" % path)

    def accepts(self, args):
        """None if the binary parses `args` (names and value types), else its message."""
        out = subprocess.run([self.path] + list(args) + ["--help"], capture_output=True,
                             text=True, timeout=30)
        return None if out.returncode == 0 else (out.stderr or out.stdout).strip()


def parse_args(args, binary):
    """(flags {name: value}, problems) for a container's args, by common/flags.cc's rules:
    --name=value, --name value (not for bools), --name alone for a bool."""
    values, problems = {}, []
    i = 0
    while i < len(args):
        arg = str(args[i])
        i += 1
        if not arg.startswith("-"):
            problems.append("argument %r is not a flag (flags are written --name=value)" % arg)
            continue
        name, _, value = arg.lstrip("-").partition("=")
        has_value = "=" in arg
        flag = binary.flags.get(name) if binary else None
        negated = binary.flags.get(name[2:]) if binary and name.startswith("no") else None
        if flag is None and negated is not None and negated.kind == "bool" and not has_value:
            values[negated.name] = "false"  # --noflag, as gflags accept
            continue
        if binary is not None and flag is None:
            if name in binary.ignored:
                problems.append("flag --%s is accepted but ignored by %s (a TF Serving flag "
                                "with no inferd meaning): remove it" % (name, binary.name))
            else:
                problems.append("flag --%s is not a flag of %s (not in `%s --help`)"
                                % (name, binary.name, binary.name))
            continue
        if not has_value:
            if flag is None or flag.kind == "bool":
                value = "true"
            elif i < len(args):
                value = str(args[i])
                i += 1
        values[name] = value
    return values, problems


def flag_value(binary, values, name):
    """The value a flag has in a container: given, or the binary's default."""
    if name in values:
        return values[name]
    if binary is not None and name in binary.flags:
        return binary.flags[name].default
    return None


def served_paths(src, binary_name):
    """The literal HTTP paths the binary's probe listener serves, read from its source file."""
    path = os.path.join(src, HEALTH_SOURCES[binary_name])
    with open(path) as f:
        return set(re.findall(r'path == "(/[^"]*)"', f.read()))


def gateway_api_access(src):
    """(set of (apiGroup, resource, verb) the gateway needs, problems), from k8s_source.cc."""
    with open(os.path.join(src, K8S_SOURCE)) as f:
        text = f.read()
    problems = []
    literals = set(re.findall(r'"(/apis?/[^"]*)"', text))
    known = {K8S_REQUESTS["list"][0]}
    if literals - known:
        problems.append("%s requests API paths the RBAC check does not know: %s (teach "
                        "tests/deploy/binaries.py which verbs they need)"
                        % (K8S_SOURCE, ", ".join(sorted(literals - known))))
    needed = set()
    for verb, fragments in K8S_REQUESTS.items():
        if all(fr in text for fr in fragments):
            needed.add(("discovery.k8s.io", "endpointslices", verb))
    if not needed:
        problems.append("%s no longer lists EndpointSlices the way the RBAC check expects"
                        % K8S_SOURCE)
    return needed, problems
