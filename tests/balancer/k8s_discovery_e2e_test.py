#!/usr/bin/python3
"""inferd-gateway's Kubernetes discovery against a fake API server (fake_kube_api.py) that
follows the EndpointSlice list+watch protocol, over HTTP and HTTPS.

Clients are Debian's python3-grpcio with stubs generated from proto/; every load loop is
bounded in time. Shared pieces: gateway_testing.py.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_testing as gt  # noqa: E402
from gateway_testing import Gateway, Load, replicas  # noqa: E402
from fake_kube_api import FakeKubeApi, slice_object  # noqa: E402

class KubernetesDiscoveryTest(unittest.TestCase):
    """Discovery against a fake API server that follows the list+watch protocol."""

    def start_gateway(self, fake, extra=()):
        self.token_file = os.path.join(tempfile.mkdtemp(dir=gt.ARGS.out), "token")
        with open(self.token_file, "w") as f:
            f.write(fake.token + "\n")
        return Gateway(extra=["--k8s_service=default/models", "--k8s_api_server=" + fake.url(),
                              "--k8s_token_file=" + self.token_file] + list(extra))

    def test_list_watch_protocol(self):
        fake = FakeKubeApi()
        # Closed loopback ports: these replicas are only looked at, never called.
        fake.apply(slice_object("models-a", "models", 9000, 9001, [
            ("127.0.0.2", True, True, False), ("127.0.0.3", False, True, True)]))
        fake.apply(slice_object("models-b", "models", 9000, 9001, [
            ("127.0.0.2", True, True, False), ("127.0.0.4", False, False, False)]))
        gateway = self.start_gateway(fake, ["--health_check_interval_ms=0"])
        wait = replicas.wait_until
        try:
            # Two slices sharing an endpoint, a terminating one draining, an unready one left out.
            wait(lambda: gateway.endpoints() == {"127.0.0.2:9000": "ready",
                                                 "127.0.0.3:9000": "draining"}, 10, "first list")
            fake.apply(slice_object("models-c", "models", 9000, 9001,
                                    [("127.0.0.5", True, True, False)]))
            wait(lambda: "127.0.0.5:9000" in gateway.endpoints(), 10, "ADDED")
            fake.apply(slice_object("models-a", "models", 9000, 9001,
                                    [("127.0.0.2", True, True, False)]))
            wait(lambda: "127.0.0.3:9000" not in gateway.endpoints(), 10, "MODIFIED")
            fake.delete("models-c")
            wait(lambda: "127.0.0.5:9000" not in gateway.endpoints(), 10, "DELETED")

            # A closed stream: the gateway watches again from where it was, without a list.
            lists, watches = fake.count("list"), fake.count("watch")
            fake.close_streams()
            wait(lambda: fake.count("watch") > watches, 10, "a new watch")
            self.assertEqual(fake.count("list"), lists)
            fake.apply(slice_object("models-c", "models", 9000, 9001,
                                    [("127.0.0.6", True, True, False)]))
            wait(lambda: "127.0.0.6:9000" in gateway.endpoints(), 10, "events after re-watch")

            # A bookmark moves the resourceVersion the next watch starts from.
            fake.bookmark()
            time.sleep(0.3)
            bookmark_rv = str(fake.rv)
            watches = fake.count("watch")
            fake.close_streams()
            wait(lambda: fake.count("watch") > watches, 10, "a watch after the bookmark")
            self.assertEqual(fake.last_watch_rv(), bookmark_rv)

            # 410 as an ERROR event, then as the watch's HTTP status: both re-list.
            lists = fake.count("list")
            fake.expire_in_stream()
            wait(lambda: fake.count("list") > lists, 10, "a re-list after an ERROR 410 event")
            lists = fake.count("list")
            fake.compact()
            fake.close_streams()
            wait(lambda: fake.count("list") > lists, 10, "a re-list after HTTP 410")
            fake.apply(slice_object("models-c", "models", 9000, 9001,
                                    [("127.0.0.7", True, True, False)]))
            wait(lambda: gateway.endpoints() == {"127.0.0.2:9000": "ready",
                                                 "127.0.0.7:9000": "ready"}, 10, "after re-lists")

            # A malformed event ends the watch and re-lists; the last good set stays meanwhile.
            lists = fake.count("list")
            fake.raw_line(b'{"type":"ADDED","object":{"metadata":\n')
            wait(lambda: fake.count("list") > lists, 10, "a re-list after a malformed event")
            self.assertEqual(gateway.endpoints(), {"127.0.0.2:9000": "ready",
                                                   "127.0.0.7:9000": "ready"})

            # Token rotation: the old token is refused; the gateway re-reads the file.
            fake.token = "token-2"
            with open(self.token_file, "w") as f:
                f.write("token-2\n")
            fake.close_streams()
            fake.apply(slice_object("models-c", "models", 9000, 9001,
                                    [("127.0.0.8", True, True, False)]))
            wait(lambda: "127.0.0.8:9000" in gateway.endpoints(), 15, "events with the new token")
            with fake.lock:
                auths = [a for _, _, a in fake.requests]
            self.assertIn("Bearer token-1", auths)
            self.assertEqual(auths[-1], "Bearer token-2")
            self.assertIsNone(gateway.proc.poll())
            log = gateway.read_log()
            self.assertIn("re-listing", log)
        finally:
            code = gateway.stop()
            fake.stop()
        self.assertEqual(code, 0)

    def test_https_api_server_certificate_is_verified(self):
        """The API server over HTTPS: its certificate must chain to --k8s_ca_file."""
        if not os.path.exists("/usr/bin/openssl"):
            self.skipTest("openssl is not installed")
        tmp = tempfile.mkdtemp(dir=gt.ARGS.out)
        run = lambda *args: subprocess.run(["/usr/bin/openssl"] + list(args), cwd=tmp, check=True,
                                           capture_output=True)
        for ca in ("ca", "other-ca"):
            run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                "/CN=" + ca, "-keyout", ca + ".key", "-out", ca + ".pem")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
            "server.key", "-out", "server.csr")
        with open(os.path.join(tmp, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
        fake = FakeKubeApi(tls=(os.path.join(tmp, "server.pem"), os.path.join(tmp, "server.key")))
        fake.apply(slice_object("models-a", "models", 9000, 9001, [("127.0.0.2", True, True, False)]))
        good = self.start_gateway(fake, ["--health_check_interval_ms=0",
                                         "--k8s_ca_file=" + os.path.join(tmp, "ca.pem")])
        bad = self.start_gateway(fake, ["--health_check_interval_ms=0",
                                        "--k8s_ca_file=" + os.path.join(tmp, "other-ca.pem")])
        try:
            replicas.wait_until(lambda: good.endpoints() == {"127.0.0.2:9000": "ready"}, 10,
                                "discovery over HTTPS")
            replicas.wait_until(lambda: "certificate verify failed" in bad.read_log(), 10,
                                "the wrong CA to be refused")
            self.assertEqual(bad.endpoints(), {})
            self.assertIsNone(bad.proc.poll())
        finally:
            self.assertEqual(good.stop(), 0)
            self.assertEqual(bad.stop(), 0)
            fake.stop()

    def test_terminating_replica_drains_without_failed_requests(self):
        """Acceptance 3: a replica marked terminating, then stopped, under load."""
        base = replicas.make_base(tempfile.mkdtemp(dir=gt.ARGS.out))
        servers = [replicas.Server(base) for _ in range(3)]
        for s in servers:
            s.wait_ready()
        fake = FakeKubeApi()
        for i, s in enumerate(servers):
            fake.apply(slice_object("models-%d" % i, "models", s.grpc_port, s.rest_port,
                                    [("127.0.0.1", True, True, False)]))
        gateway = self.start_gateway(fake)
        try:
            replicas.wait_until(lambda: len(gateway.endpoints()) == 3, 10, "three replicas")
            load = Load(gateway.port, replicas.digits_images()[:8]).start()
            time.sleep(2)
            victim = servers[0]
            key = "127.0.0.1:%d" % victim.grpc_port
            # Kubernetes marks the pod terminating (and sends SIGTERM at the same time).
            fake.apply(slice_object("models-0", "models", victim.grpc_port, victim.rest_port,
                                    [("127.0.0.1", False, True, True)]))
            victim.proc.send_signal(signal.SIGTERM)
            replicas.wait_until(lambda: gateway.endpoints().get(key) == "draining", 10,
                                "the replica draining")
            self.assertEqual(victim.proc.wait(30), 0)
            fake.delete("models-0")
            replicas.wait_until(lambda: key not in gateway.endpoints(), 10, "the replica gone")
            time.sleep(2)
            load.stop()
            print("\nterminating: %d requests, %d errors" % (load.ok, len(load.errors)),
                  file=sys.stderr)
            load.check_no_errors(self, gateway)
            self.assertGreater(load.ok, 100)
        finally:
            self.assertEqual(gateway.stop(), 0)
            fake.stop()
            for s in servers:
                s.stop()


if __name__ == "__main__":
    gt.main()
