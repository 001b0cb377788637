#!/usr/bin/python3
"""Tests of deploy/: the kustomize manifests (base and overlays), the Dockerfile and the image's
entry point, against the built binaries.

Each kustomization is rendered by kustomize_render.py (and, where kubectl is installed, by
`kubectl kustomize` too, which must give the same objects) and checked by manifest_checks.py.
Breaking a copy of the manifests on purpose must make the checker name what broke.

  manifest_test.py --bin_dir build/bin --src . [--out DIR] [unittest args]
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dockerfile  # noqa: E402
import kustomize_render  # noqa: E402
import manifest_checks  # noqa: E402

ARGS = None
KUSTOMIZATIONS = ("base", "overlays/gpu", "overlays/nfs")
# Libraries debian:bookworm-slim already has: their packages need not be installed.
BASE_IMAGE_PACKAGES = {"base-files", "libc6", "libgcc-s1", "libstdc++6"}


def k8s_dir():
    return os.path.join(ARGS.src, "deploy", "k8s")


def context():
    return manifest_checks.Context(ARGS.bin_dir, ARGS.src,
                                   os.path.join(ARGS.src, "deploy", "Dockerfile"))


def check_dir(path, ctx):
    objects = kustomize_render.render(path)
    return objects, manifest_checks.check(objects, ctx)


def find(objects, kind, name):
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, "%s/%s: %d found" % (kind, name, len(matches))
    return matches[0]


def server_container(objects):
    return find(objects, "Deployment", "inferd-server")["spec"]["template"]["spec"]["containers"][0]


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class ManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ctx = context()

    def test_every_kustomization_passes_the_checks(self):
        for name in KUSTOMIZATIONS:
            with self.subTest(kustomization=name):
                objects, problems = check_dir(os.path.join(k8s_dir(), name), self.ctx)
                print("%s: %d objects, %d problems" % (name, len(objects), len(problems)),
                      file=sys.stderr)
                self.assertEqual(problems, [], "\n".join(problems))

    @unittest.skipUnless(shutil.which("kubectl"), "kubectl is not installed")
    def test_kubectl_kustomize_renders_the_same_objects(self):
        for name in KUSTOMIZATIONS:
            with self.subTest(kustomization=name):
                path = os.path.join(k8s_dir(), name)
                self.assert_same_as_kubectl(path)

    def assert_same_as_kubectl(self, path):
        out = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        theirs = {kustomize_render.object_id(o): o for o in yaml.safe_load_all(out.stdout) if o}
        ours = {kustomize_render.object_id(o): o for o in kustomize_render.render(path)}
        self.assertEqual(sorted(ours), sorted(theirs), "objects differ for %s" % path)
        differ = [oid for oid in ours if ours[oid] != theirs[oid]]
        self.assertEqual(differ, [], "kubectl kustomize renders these differently: %s\nours:\n%s"
                         "\nkubectl:\n%s" % (differ, yaml.safe_dump([ours[d] for d in differ]),
                                             yaml.safe_dump([theirs[d] for d in differ])))

    def test_images_override_as_in_the_readme(self):
        work = tempfile.mkdtemp(dir=ARGS.out)
        shutil.copytree(k8s_dir(), os.path.join(work, "k8s"))
        overlay = os.path.join(work, "k8s", "overlays", "mine")
        os.makedirs(overlay)
        with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
            f.write("resources:\n  - ../nfs\nimages:\n  - name: inferd\n"
                    "    newName: registry.example.com/inferd\n    newTag: \"1.2\"\n")
        objects = kustomize_render.render(overlay)
        for d in ("inferd-server", "inferd-gateway"):
            c = find(objects, "Deployment", d)["spec"]["template"]["spec"]["containers"][0]
            self.assertEqual(c["image"], "registry.example.com/inferd:1.2")
        if shutil.which("kubectl"):
            self.assert_same_as_kubectl(overlay)

    def test_gpu_overlay(self):
        base = server_container(kustomize_render.render(os.path.join(k8s_dir(), "base")))
        gpu_objects = kustomize_render.render(os.path.join(k8s_dir(), "overlays/gpu"))
        gpu = server_container(gpu_objects)
        # The patch replaces args whole: it must still be the base's list plus --device.
        self.assertEqual(gpu["args"], base["args"] + ["--device=cuda:0"],
                         "overlays/gpu/server-gpu.yaml repeats the base's args; update it")
        self.assertEqual(gpu["resources"]["limits"]["nvidia.com/gpu"], 1)
        self.assertEqual(gpu["resources"]["limits"]["cpu"], base["resources"]["limits"]["cpu"])
        pod = find(gpu_objects, "Deployment", "inferd-server")["spec"]["template"]["spec"]
        self.assertEqual(pod["nodeSelector"], {"nvidia.com/gpu.present": "true"})
        self.assertIn({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                      pod["tolerations"])
        server = self.ctx.binaries["inferd-server"]
        self.assertIn("device", server.flags,
                      "inferd-server --help has no --device flag (is the build older than it?)")

    def test_nfs_overlay(self):
        objects = kustomize_render.render(os.path.join(k8s_dir(), "overlays/nfs"))
        pv = find(objects, "PersistentVolume", "inferd-models-nfs")
        pvc = find(objects, "PersistentVolumeClaim", "inferd-models")
        self.assertIn("nfs", pv["spec"])
        self.assertEqual(pvc["spec"]["volumeName"], "inferd-models-nfs")
        self.assertEqual(pvc["spec"]["storageClassName"], "")
        self.assertNotIn("namespace", pv["metadata"])  # cluster-scoped


CUDA_TOOLKIT_PREFIXES = ("/usr/local/cuda",)


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.image = dockerfile.Dockerfile(os.path.join(ARGS.src, "deploy", "Dockerfile"))

    @unittest.skipUnless(shutil.which("ldd") and shutil.which("dpkg"), "needs ldd and dpkg")
    def test_runtime_packages_are_the_libraries_the_binaries_link(self):
        needed = {}  # package -> libraries
        for name in ("inferd-server", "inferd-gateway", "inferd-run"):
            binary = os.path.join(ARGS.bin_dir, name)
            out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
            for line in out.stdout.splitlines():
                self.assertNotIn("not found", line, "%s: %s" % (name, line))
                m = re.match(r"^\s*(\S+) => (/\S+)", line)
                if not m:
                    continue  # linux-vdso, the dynamic loader
                if m.group(2).startswith(CUDA_TOOLKIT_PREFIXES):
                    # A CUDA build here links the toolkit's libraries; the image is built on
                    # debian:bookworm, which has no CUDA toolkit, so its binaries do not.
                    continue
                package = self.package_of(m.group(2))
                needed.setdefault(package, set()).add(m.group(1))
        listed = set(self.image.apt_packages(self.image.runtime))
        wanted = set(needed) - BASE_IMAGE_PACKAGES
        missing = {p: sorted(needed[p]) for p in wanted - listed}
        self.assertEqual(missing, {}, "deploy/Dockerfile's runtime stage does not install the "
                         "packages of these libraries")
        self.assertEqual(listed - wanted, set(), "deploy/Dockerfile installs packages no binary "
                         "links")
        print("runtime packages: %s" % " ".join(sorted(listed)), file=sys.stderr)

    @staticmethod
    def package_of(library):
        for path in (library, os.path.realpath(library)):
            for candidate in (path, path.replace("/usr/lib/", "/lib/", 1),
                              path.replace("/lib/", "/usr/lib/", 1)):
                out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if out.returncode == 0:
                    return out.stdout.split(":")[0].strip()
        raise AssertionError("no Debian package owns %s" % library)

    def test_stages(self):
        builder, runtime = self.image.stages[0], self.image.runtime
        self.assertEqual(len(self.image.stages), 2)
        self.assertEqual(builder.image, "debian:bookworm")
        self.assertEqual(runtime.image, "debian:bookworm-slim")
        runs = " ".join(rest for k, rest in builder.instructions if k == "RUN")
        self.assertIn("scripts/setup --no-build", runs)
        self.assertRegex(runs, r"cmake -S \. -B build -G Ninja -DCMAKE_BUILD_TYPE=Release")
        self.assertIn("--target inferd-server inferd-gateway inferd-run", runs)
        self.assertIn("--no-install-recommends", self.image.install_options(runtime))
        self.assertRegex(self.image.user(runtime), r"^\d+:\d+$")
        self.assertNotEqual(self.image.user(runtime).split(":")[0], "0")
        self.assertEqual(self.image.exposed_ports(runtime), {8500, 8501, 8502})
        files = self.image.installed_files(runtime)
        for name in ("inferd-server", "inferd-gateway", "inferd-run",
                     "inferd-server-entrypoint.sh"):
            self.assertIn("/usr/local/bin/" + name, files)
        self.assertEqual(self.image.entrypoint(runtime),
                         ["/usr/local/bin/inferd-server-entrypoint.sh"])

    def run_entrypoint(self, args, env):
        """The arguments the entry point script passes to inferd-server (a stand-in that prints
        them), and whether the real inferd-server accepts them."""
        fake = tempfile.mkdtemp(dir=ARGS.out)
        with open(os.path.join(fake, "inferd-server"), "w") as f:
            f.write('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
        os.chmod(os.path.join(fake, "inferd-server"), 0o755)
        script = os.path.join(ARGS.src, "deploy", "inferd-server-entrypoint.sh")
        self.assertTrue(os.access(script, os.X_OK), "%s is not executable" % script)
        out = subprocess.run(["/bin/sh", script] + args, capture_output=True, text=True,
                             env=dict(env, PATH=fake + ":/usr/bin:/bin"), check=True)
        passed = out.stdout.splitlines()
        server = manifest_checks.binaries.Binary("inferd-server",
                                                 os.path.join(ARGS.bin_dir, "inferd-server"))
        self.assertIsNone(server.accepts(passed))
        return passed

    def test_entrypoint_serves_one_model_like_tf_serving(self):
        self.assertEqual(self.run_entrypoint([], {}),
                         ["--port=8500", "--rest_api_port=8501", "--model_name=model",
                          "--model_base_path=/models/model"])
        self.assertEqual(self.run_entrypoint(["--enable_batching"],
                                             {"MODEL_NAME": "digits", "MODEL_BASE_PATH": "/m"}),
                         ["--port=8500", "--rest_api_port=8501", "--model_name=digits",
                          "--model_base_path=/m/digits", "--enable_batching"])

    def test_entrypoint_leaves_models_to_a_config_file(self):
        for args in (["--model_config_file=/config/models.config"],
                     ["--model_config_file", "/config/models.config"]):
            self.assertEqual(self.run_entrypoint(args, {"MODEL_NAME": "x"}),
                             ["--port=8500", "--rest_api_port=8501"] + args)


class ServerConfigTest(unittest.TestCase):
    """inferd-server starts with the base Deployment's arguments and ConfigMap, and serves every
    configured model (the bundled digits model stands in for each)."""

    def test_server_runs_with_the_deployment_args(self):
        objects = kustomize_render.render(os.path.join(k8s_dir(), "base"))
        deployment = find(objects, "Deployment", "inferd-server")
        pod = deployment["spec"]["template"]["spec"]
        c = pod["containers"][0]
        volumes = {v["name"]: v for v in pod["volumes"]}
        root = tempfile.mkdtemp(dir=ARGS.out)
        # Every path under a mount point moves under `root`: /config/x -> ROOT/config/x.
        mounts = "|".join(re.escape(m["mountPath"]) for m in c["volumeMounts"])
        relocate = lambda text: re.sub(r'(["=])(%s)/' % mounts, r"\1%s\2/" % root, text)
        for mount in c["volumeMounts"]:
            path = root + mount["mountPath"]
            os.makedirs(path)
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                cm = find(objects, "ConfigMap", volume["configMap"]["name"])
                for key, text in cm["data"].items():
                    with open(os.path.join(path, key), "w") as f:
                        f.write(relocate(text))
        config = find(objects, "ConfigMap", "inferd-server-config")["data"]["models.config"]
        names = re.findall(r'name:\s*"([^"]+)"', config)
        for base in re.findall(r'base_path:\s*"([^"]+)"', config):
            os.makedirs(root + base + "/1")
            shutil.copy(os.path.join(ARGS.src, "models/zoo/digits/1/model.onnx"),
                        root + base + "/1/model.onnx")
        args = []
        for arg in c["args"]:
            name = arg.split("=")[0]
            if name in ("--port", "--rest_api_port"):
                arg = name + "=0"
            args.append(relocate(arg))
        args.append("--bind_address=127.0.0.1")
        log_path = os.path.join(root, "server.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([os.path.join(ARGS.bin_dir, "inferd-server")] + args,
                                    stdout=log, stderr=subprocess.STDOUT)
        def read_log():
            with open(log_path) as f:
                return f.read()
        try:
            def rest_port():
                if proc.poll() is not None:
                    raise AssertionError("inferd-server exited %d:\n%s"
                                         % (proc.returncode, read_log()))
                m = re.search(r"REST API listening on [\d.]+:(\d+)", read_log())
                return m and int(m.group(1))
            port = wait_until(rest_port, 20, "the REST port")

            def get(path):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                try:
                    conn.request("GET", path)
                    r = conn.getresponse()
                    return r.status, r.read().decode()
                finally:
                    conn.close()
            wait_until(lambda: get("/readyz")[0] == 200, 30, "/readyz")
            for name in names:
                status, body = get("/v1/models/" + name)
                self.assertEqual(status, 200, body)
                self.assertIn("AVAILABLE", body)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(30), 0, read_log())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class NegativeTest(unittest.TestCase):
    """Breaks a copy of deploy/k8s one way at a time; the checker must say what broke."""

    @classmethod
    def setUpClass(cls):
        cls.ctx = context()

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=ARGS.out)
        shutil.copytree(k8s_dir(), os.path.join(self.work, "k8s"))
        _, problems = check_dir(os.path.join(self.work, "k8s", "base"), self.ctx)
        self.assertEqual(problems, [], "the unbroken copy should pass")

    def edit(self, rel, change):
        """Rewrites a manifest file of the copy: change(list of its YAML documents)."""
        path = os.path.join(self.work, "k8s", rel)
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        change(docs)
        with open(path, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)

    def assert_reported(self, expected, kustomization="base"):
        _, problems = check_dir(os.path.join(self.work, "k8s", kustomization), self.ctx)
        hits = [p for p in problems if all(e in p for e in expected)]
        self.assertTrue(hits, "no problem mentions %s; problems:\n%s"
                        % (expected, "\n".join(problems) or "(none)"))
        print("\n  detected: " + "\n  detected: ".join(hits), file=sys.stderr)

    @staticmethod
    def container(docs):
        return docs[0]["spec"]["template"]["spec"]["containers"][0]

    def test_server_service_selector_typo(self):
        self.edit("base/server-service.yaml", lambda d: d[0]["spec"]["selector"].update(
            {"app.kubernetes.io/name": "inferd-sever"}))
        self.assert_reported(["Service inferd/inferd-server", "selector", "inferd-sever",
                              "0 Deployments"])

    def test_wrong_probe_port_name(self):
        self.edit("base/server-deployment.yaml", lambda d: self.container(d)["readinessProbe"]
                  ["httpGet"].update(port="htttp"))
        self.assert_reported(["container inferd-server", "readinessProbe", "'htttp'",
                              "not a containerPort name"])

    def test_flag_the_server_does_not_have(self):
        self.edit("base/server-deployment.yaml",
                  lambda d: self.container(d)["args"].append("--model_poll_seconds=5"))
        self.assert_reported(["--model_poll_seconds", "not a flag of inferd-server"])

    def test_flag_the_gateway_does_not_have(self):
        self.edit("base/gateway-deployment.yaml",
                  lambda d: self.container(d)["args"].append("--k8s_namespace=inferd"))
        self.assert_reported(["--k8s_namespace", "not a flag of inferd-gateway"])

    def test_flag_value_of_the_wrong_type(self):
        def change(docs):
            args = self.container(docs)["args"]
            args[args.index("--drain_timeout_seconds=20")] = "--drain_timeout_seconds=soon"
        self.edit("base/server-deployment.yaml", change)
        self.assert_reported(["does not accept its arguments", "drain_timeout_seconds"])

    def test_role_without_watch(self):
        self.edit("base/gateway-rbac.yaml", lambda d: d[1]["rules"][0]["verbs"].remove("watch"))
        self.assert_reported(["do not grant watch endpointslices.discovery.k8s.io",
                              "k8s_source.cc"])

    def test_role_granting_more_than_the_gateway_uses(self):
        self.edit("base/gateway-rbac.yaml", lambda d: d[1]["rules"].append(
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}))
        self.assert_reported(["grant get pods.core", "never uses"])

    def test_role_binding_to_another_account(self):
        self.edit("base/gateway-rbac.yaml",
                  lambda d: d[2]["subjects"][0].update(name="inferd-gatewy"))
        self.assert_reported(["RoleBinding", "inferd-gatewy", "does not exist"])

    def test_grace_period_shorter_than_prestop_and_drain(self):
        self.edit("base/server-deployment.yaml", lambda d: d[0]["spec"]["template"]["spec"]
                  .update(terminationGracePeriodSeconds=20))
        self.assert_reported(["terminationGracePeriodSeconds 20", "preStop sleep 5 s",
                              "--drain_timeout_seconds=20"])

    def test_missing_config_map_key(self):
        def change(docs):
            data = docs[0]["data"]
            data["batching.conf"] = data.pop("batching.config")
        self.edit("base/server-config.yaml", change)
        self.assert_reported(["--batching_parameters_file=/config/batching.config",
                              "'batching.config'", "ConfigMap inferd-server-config"])

    def test_model_outside_the_model_volume(self):
        self.edit("base/server-config.yaml", lambda d: d[0]["data"].update({
            "models.config": d[0]["data"]["models.config"].replace('"/models/inception"',
                                                                   '"/data/inception"')}))
        self.assert_reported(["model 'inception'", "/data/inception", "not on the mounted model"])

    def test_gateway_port_name_not_on_the_service(self):
        def change(docs):
            args = self.container(docs)["args"]
            args[args.index("--k8s_http_port_name=http")] = "--k8s_http_port_name=rest"
        self.edit("base/gateway-deployment.yaml", change)
        self.assert_reported(["--k8s_http_port_name=rest", "not a port name of Service"])

    def test_rolling_update_that_removes_replicas_first(self):
        self.edit("base/server-deployment.yaml", lambda d: d[0]["spec"]["strategy"]
                  ["rollingUpdate"].update(maxUnavailable=1))
        self.assert_reported(["Deployment inferd/inferd-server", "maxUnavailable 0"])

    def test_writable_root_file_system(self):
        self.edit("base/gateway-deployment.yaml", lambda d: self.container(d)["securityContext"]
                  .pop("readOnlyRootFilesystem"))
        self.assert_reported(["container inferd-gateway", "readOnlyRootFilesystem"])

    def test_gateway_service_not_a_load_balancer(self):
        self.edit("base/gateway-service.yaml", lambda d: d[0]["spec"].update(type="NodePort"))
        self.assert_reported(["Service inferd-gateway has type NodePort, not LoadBalancer"])

    def test_nfs_claim_bound_to_a_missing_volume(self):
        self.edit("overlays/nfs/models-pvc-nfs.yaml",
                  lambda d: d[0]["spec"].update(volumeName="inferd-models-nsf"))
        self.assert_reported(["PersistentVolumeClaim inferd/inferd-models", "inferd-models-nsf",
                              "names no PersistentVolume"], kustomization="overlays/nfs")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin_dir", required=True, help="where inferd-server, inferd-gateway "
                        "and inferd-run are")
    parser.add_argument("--src", required=True, help="the repository root")
    parser.add_argument("--out", help="scratch directory (default: a temporary one)")
    ARGS, rest = parser.parse_known_args()
    ARGS.bin_dir, ARGS.src = os.path.abspath(ARGS.bin_dir), os.path.abspath(ARGS.src)
    cleanup = ARGS.out is None
    if ARGS.out:
        shutil.rmtree(ARGS.out, ignore_errors=True)
        os.makedirs(ARGS.out)
    else:
        ARGS.out = tempfile.mkdtemp(prefix="inferd-deploy-test-")
    try:
        program = unittest.main(argv=[sys.argv[0]] + rest, verbosity=2, exit=False)
    finally:
        if cleanup:
            shutil.rmtree(ARGS.out, ignore_errors=True)
    sys.exit(0 if program.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
