"""The rendered objects, and the containers of Deployments with the binary each runs and its
parsed flags: what every check module looks things up in.
"""
import os
import re

import binaries


def ident(obj):
    meta = obj.get("metadata") or {}
    return "%s %s/%s" % (obj.get("kind"), meta.get("namespace", "-"), meta.get("name"))


def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def quantity(text):
    """A Kubernetes quantity ('20Gi', '500m', '2') as a float."""
    m = re.match(r"^([0-9.]+)([A-Za-z]*)$", str(text))
    if not m:
        return None
    units = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20,
             "Gi": 2**30, "Ti": 2**40}
    return float(m.group(1)) * units[m.group(2)] if m.group(2) in units else None


class Manifests:
    def __init__(self, objects):
        self.objects = objects

    def of(self, kind):
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind, namespace, name):
        for o in self.of(kind):
            meta = o["metadata"]
            if meta.get("name") == name and (meta.get("namespace") or "") == (namespace or ""):
                return o
        return None


class Container:
    """One container of a Deployment, with the binary it runs and its parsed flags."""

    def __init__(self, deployment, spec, context, problems):
        self.deployment, self.spec = deployment, spec
        self.where = "%s container %s" % (ident(deployment), spec.get("name"))
        command = spec.get("command")
        # Without a command the image's entry point runs: inferd-server through its script.
        self.binary_name = os.path.basename(command[0]) if command else "inferd-server"
        self.binary = context.binaries.get(self.binary_name)
        args = list(command[1:] if command else []) + list(spec.get("args") or [])
        self.args = args
        self.flags, arg_problems = binaries.parse_args(args, self.binary)
        problems += ["%s: %s" % (self.where, p) for p in arg_problems]
        self.ports = {p.get("name"): p.get("containerPort") for p in spec.get("ports") or []}
        self.port_numbers = {p.get("containerPort") for p in spec.get("ports") or []}

    def flag(self, name):
        return binaries.flag_value(self.binary, self.flags, name)

    def resolve_port(self, port):
        """A probe's or Service's target port as a number, or None if the container has none."""
        if isinstance(port, int):
            return port if port in self.port_numbers else None
        return self.ports.get(port)


def deployments_selected(m, namespace, selector):
    return [d for d in m.of("Deployment") if (d["metadata"].get("namespace") or "") == namespace
            and subset(selector, d["spec"]["template"]["metadata"].get("labels") or {})]
