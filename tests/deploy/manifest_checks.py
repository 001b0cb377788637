#!/usr/bin/python3
"""Checks that rendered inferd manifests hang together, and with the binaries and the image they
run. check(objects, context) returns a list of problems, each a sentence naming the object and
what is wrong; an empty list means the manifests pass.

  manifest_checks.py DIR --bin_dir build/bin --src .     (DIR holds a kustomization.yaml)
"""
import argparse
import os
import sys

import binaries
import dockerfile
import gateway_checks
import kustomize_render
import pod_checks
import service_checks
from manifests import Manifests


class Context:
    """What the checks compare the manifests with. Any part may be None: its checks are skipped."""

    def __init__(self, bin_dir=None, src=None, dockerfile_path=None):
        self.src = src
        self.binaries = {}
        if bin_dir:
            for name in ("inferd-server", "inferd-gateway"):
                self.binaries[name] = binaries.Binary(name, os.path.join(bin_dir, name))
        self.image = dockerfile.Dockerfile(dockerfile_path) if dockerfile_path else None


def check(objects, context):
    m = Manifests(objects)
    problems = []
    containers = {}  # deployment name -> [Container]
    for d in m.of("Deployment"):
        containers[d["metadata"]["name"]] = pod_checks.check_deployment(m, d, context, problems)
    for s in m.of("Service"):
        service_checks.check_service(m, s, containers, problems)
    for pdb in m.of("PodDisruptionBudget"):
        service_checks.check_pdb(m, pdb, problems)
    for hpa in m.of("HorizontalPodAutoscaler"):
        service_checks.check_hpa(m, hpa, problems)
    for binding in m.of("RoleBinding"):
        gateway_checks.check_role_binding(m, binding, problems)
    for pvc in m.of("PersistentVolumeClaim"):
        service_checks.check_pvc(m, pvc, problems)
    gateways = [c for cs in containers.values() for c in cs if c.binary_name == "inferd-gateway"]
    for c in gateways:
        gateway_checks.check_gateway(m, c, containers, context, problems)
    if not gateways:
        problems.append("no Deployment runs inferd-gateway")
    if not any(c.binary_name == "inferd-server" for cs in containers.values() for c in cs):
        problems.append("no Deployment runs inferd-server")
    if context.image is not None:
        service_checks.check_image(objects, context.image, problems)
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", help="a directory with a kustomization.yaml")
    parser.add_argument("--bin_dir", help="where inferd-server and inferd-gateway are")
    parser.add_argument("--src", help="the repository root")
    args = parser.parse_args()
    dockerfile_path = os.path.join(args.src, "deploy/Dockerfile") if args.src else None
    context = Context(args.bin_dir, args.src, dockerfile_path)
    objects = kustomize_render.render(args.dir)
    problems = check(objects, context)
    for p in problems:
        print("PROBLEM: " + p)
    print("%s: %d objects, %d problems" % (args.dir, len(objects), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
