"""Shared by the gateway's end-to-end tests: an inferd-gateway process, clients, and the replicas'
helpers from tests/serving/server_e2e_test.py. Call init() first."""
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "serving"))
import server_e2e_test as replicas  # noqa: E402

ARGS = None
LOAD_SECONDS = float(os.environ.get("INFERD_GATEWAY_LOAD_SECONDS", "20"))


def init(argv):
    """Parses the test binary paths (the replicas' and --gateway), generates the Python stubs;
    returns the unittest args."""
    global ARGS
    rest = replicas.init(argv, extra=("gateway",))
    ARGS = replicas.ARGS
    return rest


def main():
    """Runs the calling test script's unittest cases with the paths from the command line."""
    import unittest
    rest = init(sys.argv[1:])
    unittest.main(module="__main__", argv=[sys.argv[0]] + rest, verbosity=2)


class Gateway:
    """One inferd-gateway process; its ports are read from its log."""

    def __init__(self, backends=None, extra=()):
        self.log_path = tempfile.mktemp(prefix="inferd-gateway-", suffix=".log", dir=ARGS.out)
        self.log = open(self.log_path, "w+")
        args = [ARGS.gateway, "--port=0", "--rest_api_port=0", "--monitoring_port=0",
                "--bind_address=127.0.0.1"] + list(extra)
        if backends is not None:
            args.append("--static_backends=" + ",".join(
                "127.0.0.1:%d:%d" % (s.grpc_port, s.rest_port) for s in backends))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        ports = replicas.wait_for_ports(
            self.proc, self.log_path, "inferd-gateway",
            {"grpc": r"gRPC listening on [\d.]+:(\d+)", "rest": r"REST listening on [\d.]+:(\d+)",
             "metrics": r"metrics listening on [\d.]+:(\d+)"})
        self.port, self.rest_port, self.metrics_port = ports["grpc"], ports["rest"], ports["metrics"]

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def metrics(self):
        return self.admin("/metrics")[1].decode()

    def admin(self, path):
        return http_call(self.metrics_port, "GET", path)

    def rest(self, method, path, body=None, conn=None):
        return http_call(self.rest_port, method, path, body, conn)

    def endpoints(self):
        """host:grpc_port -> state, from the admin page."""
        import json
        rows = json.loads(self.admin("/endpoints")[1])["endpoints"]
        return {"%s:%d" % (r["host"], r["grpc_port"]): r["state"] for r in rows}

    def stop(self, sig=signal.SIGTERM, timeout=40):
        code = replicas.stop_process(self.proc, sig, timeout)
        self.log.close()
        return code


def http_call(port, method, path, body=None, conn=None):
    import http.client
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body,
                 headers={"Content-Type": "application/json"} if body is not None else {})
    resp = conn.getresponse()
    data = resp.read()
    if own:
        conn.close()
    return resp.status, data


def rest_body(images):
    import json
    return json.dumps({"instances": images.tolist()})


def channel(port):
    import grpc
    # Its own connection: every client thread has one HTTP/2 connection to the gateway, so a
    # connection-level balancer would pin each thread to one replica.
    return grpc.insecure_channel("127.0.0.1:%d" % port,
                                 options=[("grpc.use_local_subchannel_pool", 1)])


def served_ok(server):
    """gRPC Predict calls a replica answered, from its own metrics (TF Serving's request_count
    would also count the gateway's GetModelStatus polls)."""
    status, body = server.http("GET", "/monitoring/prometheus/metrics")
    assert status == 200, status
    for line in body.decode().splitlines():
        if (line.startswith(":tensorflow:serving:request_latency_count{") and 'API="Predict"' in line
                and 'entrypoint="GRPC"' in line and 'model_name="digits"' in line):
            return float(line.split()[-1])
    return 0.0


class Load:
    """`threads` clients, each on its own channel, sending Predict until stop()."""

    def __init__(self, port, images, threads=8):
        self.pb = replicas.pb
        self.ok = 0
        self.errors = []
        self.error_times = []
        self.started = None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(port, images[i % len(images):][:1]))
                        for i in range(threads)]

    def run(self, port, image):
        ch = channel(port)
        stub = self.pb["prediction_service_pb2_grpc"].PredictionServiceStub(ch)
        request = replicas.predict_request(image)
        while not self.done.is_set():
            try:
                resp = stub.Predict(request, timeout=10)
                assert len(resp.outputs["probabilities"].float_val) == 10
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                with self.lock:
                    self.errors.append(repr(e)[:300])
                    self.error_times.append(time.time() - self.started)
        ch.close()

    def start(self):
        self.started = time.time()
        for t in self.threads:
            t.start()
        return self

    def check_no_errors(self, test, gateway=None):
        """Fails `test` if any call failed, with what a flaky failure needs to be understood:
        how many, when (seconds into the load), the distinct messages and the gateway's log tail."""
        if not self.errors:
            return
        distinct = sorted(set(self.errors), key=self.errors.index)
        lines = ["%d of %d calls failed, %.2f-%.2f s into the load; %d distinct messages:"
                 % (len(self.errors), len(self.errors) + self.ok, min(self.error_times),
                    max(self.error_times), len(distinct))]
        lines += ["  %dx %s" % (self.errors.count(m), m) for m in distinct[:5]]
        if gateway is not None:
            lines.append("gateway log (tail):\n" + gateway.read_log()[-3000:])
        test.fail("\n".join(lines))

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(30)


