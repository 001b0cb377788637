"""Checks of each Deployment and its containers: selectors, rollout strategy, security context,
resources, flags (against the binary), probes, and graceful termination.
"""
import re

import binaries
import volume_checks
from manifests import Container, ident, subset


def check_deployment(m, d, context, problems):
    where = ident(d)
    ns = d["metadata"].get("namespace") or ""
    spec = d["spec"]
    template = spec["template"]
    labels = template["metadata"].get("labels") or {}
    match = (spec.get("selector") or {}).get("matchLabels") or {}
    if not subset(match, labels):
        problems.append("%s: spec.selector.matchLabels %s is not a subset of the pod template "
                        "labels %s" % (where, match, labels))
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or \
            str(rolling.get("maxUnavailable", "25%")) not in ("0", "0%"):
        problems.append("%s: the rolling update must have maxUnavailable 0 (got strategy %s), "
                        "or a rollout removes a replica before its successor is ready"
                        % (where, strategy))
    if str(rolling.get("maxSurge", "25%")) in ("0", "0%"):
        problems.append("%s: maxSurge 0 with maxUnavailable 0 cannot roll out" % where)
    pod = template["spec"]
    for t in pod.get("topologySpreadConstraints") or []:
        selector = (t.get("labelSelector") or {}).get("matchLabels") or {}
        if not subset(selector, labels):
            problems.append("%s: topologySpreadConstraints selector %s does not select its own "
                            "pods (labels %s)" % (where, selector, labels))
    out = []
    for spec_c in pod.get("containers") or []:
        c = Container(d, spec_c, context, problems)
        out.append(c)
        check_security(pod, c, context, problems)
        check_resources(c, problems)
        check_flags(c, problems)
        check_probes(c, context, problems)
        check_termination(pod, c, problems)
        volume_checks.check_volumes(m, ns, pod, c, problems)
    return out


def check_security(pod, c, context, problems):
    psc = pod.get("securityContext") or {}
    csc = c.spec.get("securityContext") or {}

    def effective(key):
        return csc.get(key, psc.get(key))

    if effective("runAsNonRoot") is not True:
        problems.append("%s: securityContext.runAsNonRoot is not true" % c.where)
    uid = effective("runAsUser")
    if not isinstance(uid, int) or uid == 0:
        problems.append("%s: securityContext.runAsUser must be a non-zero uid (got %r)"
                        % (c.where, uid))
    if context.image is not None:
        image_user = (context.image.user(context.image.runtime) or "").split(":")[0]
        if str(uid) != image_user:
            problems.append("%s: runAsUser %r differs from the image's USER %r (%s)"
                            % (c.where, uid, image_user, context.image.path))
    if csc.get("readOnlyRootFilesystem") is not True:
        problems.append("%s: securityContext.readOnlyRootFilesystem is not true" % c.where)
    if csc.get("allowPrivilegeEscalation") is not False:
        problems.append("%s: securityContext.allowPrivilegeEscalation is not false" % c.where)
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        problems.append("%s: securityContext.capabilities.drop does not include ALL" % c.where)
    if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("%s: seccompProfile is not RuntimeDefault" % c.where)


def check_resources(c, problems):
    resources = c.spec.get("resources") or {}
    for part in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (resources.get(part) or {}):
                problems.append("%s: resources.%s.%s is not set" % (c.where, part, r))


def check_flags(c, problems):
    if c.binary is None:
        return
    message = c.binary.accepts(c.args)
    if message:
        problems.append("%s: %s does not accept its arguments: %s" % (c.where, c.binary_name,
                                                                      message))
    for port_name, flag in binaries.PORT_FLAGS.get(c.binary_name, {}).items():
        value = c.flag(flag)
        if port_name not in c.ports:
            problems.append("%s: no containerPort named %r for --%s=%s" % (c.where, port_name,
                                                                           flag, value))
        elif str(c.ports[port_name]) != str(value):
            problems.append("%s: containerPort %r is %s but %s listens on --%s=%s"
                            % (c.where, port_name, c.ports[port_name], c.binary_name, flag,
                               value))
    if c.binary_name == "inferd-server" and c.flags.get("batching_parameters_file") and \
            c.flag("enable_batching") != "true":
        problems.append("%s: --batching_parameters_file needs --enable_batching" % c.where)


def check_probes(c, context, problems):
    served = None
    if context.src and c.binary_name in binaries.HEALTH_SOURCES:
        served = binaries.served_paths(context.src, c.binary_name)
    expected_path = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.spec.get(kind)
        if probe is None:
            if kind != "startupProbe":
                problems.append("%s: no %s" % (c.where, kind))
            continue
        get = probe.get("httpGet")
        if get is None:
            problems.append("%s: %s is not an httpGet probe" % (c.where, kind))
            continue
        port = get.get("port")
        number = c.resolve_port(port)
        if number is None:
            problems.append("%s: %s uses port %r, which is not a containerPort %s of the "
                            "container (ports: %s)" % (c.where, kind, port,
                                                       "name" if isinstance(port, str)
                                                       else "number",
                                                       ", ".join("%s=%s" % kv
                                                                 for kv in c.ports.items())))
        elif c.binary_name in binaries.PROBE_PORT_FLAG:
            flag = binaries.PROBE_PORT_FLAG[c.binary_name]
            if str(number) != str(c.flag(flag)):
                problems.append("%s: %s goes to port %s, but %s serves %s on --%s=%s"
                                % (c.where, kind, number, c.binary_name, get.get("path"), flag,
                                   c.flag(flag)))
        path = get.get("path")
        if served is not None and path not in served:
            problems.append("%s: %s path %r is not served by %s (%s serves %s)"
                            % (c.where, kind, path, c.binary_name,
                               binaries.HEALTH_SOURCES[c.binary_name], ", ".join(sorted(served))))
        if kind in expected_path and path != expected_path[kind]:
            problems.append("%s: %s should use %s (got %r)" % (c.where, kind, expected_path[kind],
                                                               path))


def pre_stop_seconds(c):
    pre_stop = (c.spec.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"].get("seconds", 0))
    command = (pre_stop.get("exec") or {}).get("command") or []
    text = " ".join(str(w) for w in command)
    m = re.search(r"(?:^|[\s/])sleep\s+(\d+)\s*$", text)
    return int(m.group(1)) if m else None


def check_termination(pod, c, problems):
    if c.binary is None or "drain_timeout_seconds" not in c.binary.flags:
        return
    sleep = pre_stop_seconds(c)
    if sleep is None:
        problems.append("%s: no preStop sleep: the pod would stop taking requests before the "
                        "gateways and load balancers have taken it out of rotation" % c.where)
        sleep = 0
    try:
        drain = int(c.flag("drain_timeout_seconds"))
    except ValueError:
        return  # check_flags reports the value
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not grace > sleep + drain:
        problems.append("%s: terminationGracePeriodSeconds %s does not exceed preStop sleep %d s "
                        "+ --drain_timeout_seconds=%d: requests still draining would be killed"
                        % (c.where, grace, sleep, drain))
