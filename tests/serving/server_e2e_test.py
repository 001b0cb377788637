#!/usr/bin/python3
"""End-to-end tests of inferd-server through its real gRPC and REST APIs.

Clients are Debian's python3-grpcio with stubs generated from proto/ by this test, i.e. what a
TF Serving user's client looks like. Servers bind 127.0.0.1 on free ports (port 0); waits are
bounded polls, never fixed sleeps for synchronisation.

  server_e2e_test.py --server build/bin/inferd-server --run build/bin/inferd-run \
      --src . --out build/tests/e2e [unittest args]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import numpy as np

ARGS = None
pb = {}  # generated modules


def generate_stubs(src, out):
    os.makedirs(out, exist_ok=True)
    proto_dir = os.path.join(src, "proto")
    protos = []
    for root, _, files in os.walk(proto_dir):
        protos += [os.path.relpath(os.path.join(root, f), proto_dir) for f in files if f.endswith(".proto")]
    subprocess.run(["/usr/bin/protoc", "-I", proto_dir, "--python_out", out, "--grpc_out", out,
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + sorted(protos),
                   check=True)
    sys.path.insert(0, out)
    import grpc  # noqa: F401
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc, model_service_pb2_grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_management_pb2
    from tensorflow_serving.apis import classification_pb2
    from tensorflow_serving.config import model_server_config_pb2
    from tensorflow.core.framework import tensor_pb2, types_pb2, tensor_shape_pb2
    from tensorflow.core.protobuf import meta_graph_pb2  # noqa: F401
    pb.update(locals())


def _import_health(out):
    # The generated module path grpc/health/v1 would shadow the grpc package; compile a copy of
    # the same proto under another directory name (the wire names stay grpc.health.v1).
    if "inferd_health_stubs" not in pb:
        work = os.path.join(out, "health_copy")
        os.makedirs(os.path.join(work, "inferd_health"), exist_ok=True)
        shutil.copy(os.path.join(ARGS.src, "proto/grpc/health/v1/health.proto"),
                    os.path.join(work, "inferd_health", "health.proto"))
        subprocess.run(["/usr/bin/protoc", "-I", work, "--python_out", work, "--grpc_out", work,
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                        "inferd_health/health.proto"], check=True)
        sys.path.insert(0, work)
        from inferd_health import health_pb2, health_pb2_grpc
        pb["inferd_health_stubs"] = {"health_pb2": health_pb2, "health_pb2_grpc": health_pb2_grpc}
    return pb["inferd_health_stubs"]


def wait_for_ports(proc, log_path, what, patterns, timeout=20):
    """The ports a starting process logs: {name: port} for every (name, regex with the port as
    group 1) in `patterns`. Raises if the process exits or a port is not logged in time."""
    ports = {}
    deadline = time.time() + timeout
    while time.time() < deadline and len(ports) < len(patterns):
        with open(log_path) as f:
            text = f.read()
        for name, pattern in patterns.items():
            m = re.search(pattern, text)
            if m:
                ports[name] = int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError("%s exited:\n%s" % (what, text))
        if len(ports) < len(patterns):
            time.sleep(0.02)
    if len(ports) < len(patterns):
        with open(log_path) as f:
            raise RuntimeError("%s did not start:\n%s" % (what, f.read()))
    return ports


def stop_process(proc, sig=signal.SIGTERM, timeout=40):
    """Sends `sig` (if it still runs), waits up to `timeout` s, then kills; the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Server:
    """One inferd-server process with its ports parsed from its log."""

    def __init__(self, base_path=None, model_name="digits", extra=(), config_file=None):
        self.log_path = tempfile.mktemp(prefix="inferd-server-", suffix=".log", dir=ARGS.out)
        args = [ARGS.server, "--port=0", "--rest_api_port=0", "--bind_address=127.0.0.1",
                "--file_system_poll_wait_seconds=1", "--intra_op_threads=1"]
        if config_file:
            args.append("--model_config_file=" + config_file)
        else:
            args += ["--model_name=" + model_name, "--model_base_path=" + base_path]
        args += list(extra)
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            ports = wait_for_ports(self.proc, self.log_path, "inferd-server",
                                   {"grpc": r"gRPC API listening on [\d.]+:(\d+)",
                                    "rest": r"REST API listening on [\d.]+:(\d+)"})
        except RuntimeError:
            stop_process(self.proc, signal.SIGKILL, 10)
            self.log.close()
            raise
        self.grpc_port, self.rest_port = ports["grpc"], ports["rest"]
        import grpc
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.grpc_port)
        self.predict = pb["prediction_service_pb2_grpc"].PredictionServiceStub(self.channel)
        self.models = pb["model_service_pb2_grpc"].ModelServiceStub(self.channel)

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, _ = self.http("GET", "/readyz")
            if status == 200:
                return
            time.sleep(0.02)
        raise AssertionError("server not ready:\n" + self.read_log())

    def http(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        if own:
            conn.close()
        return resp.status, data

    def stop(self, sig=signal.SIGTERM, timeout=40):
        code = stop_process(self.proc, sig, timeout)
        self.channel.close()
        self.log.close()
        return code


def post_expecting_continue(port, path, body, length=None):
    """POSTs `body` with "Expect: 100-continue" on a raw connection and, like curl, sends the
    body only once the interim answer came. Returns (the first answer's head, the final status,
    the final body); when the first answer is already final (a 413) the body is never sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                   % (path, len(body) if length is None else length)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            byte = s.recv(1)  # one at a time: nothing after the interim answer may be consumed
            if not byte:
                break
            head += byte
        if head.startswith(b"HTTP/1.1 100 "):
            s.sendall(body)
            resp = http.client.HTTPResponse(s)
            resp.begin()
            return head, resp.status, resp.read()
        rest = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        status = int(head.split(b" ")[1]) if head else 0
        return head, status, head.partition(b"\r\n\r\n")[2] + rest
    finally:
        s.close()


def digits_images():
    from onnx import numpy_helper, TensorProto
    t = TensorProto()
    with open(os.path.join(ARGS.src, "models/zoo/digits/heldout/input_0.pb"), "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t).astype(np.float32)


def make_base(tmp, versions=(1,)):
    base = os.path.join(tmp, "digits")
    for v in versions:
        publish_version(base, v)
    return base


def publish_version(base, version, model=None):
    """Copies the digits model into <base>/<version> atomically (temp dir + rename)."""
    model = model or os.path.join(ARGS.src, "models/zoo/digits/1/model.onnx")
    os.makedirs(base, exist_ok=True)
    tmp = os.path.join(base, ".incoming-%d" % version)
    os.makedirs(tmp, exist_ok=True)
    shutil.copy(model, os.path.join(tmp, "model.onnx"))
    os.rename(tmp, os.path.join(base, str(version)))


def predict_request(images, name="digits", version=None, label=None, content=False, alias="image"):
    req = pb["predict_pb2"].PredictRequest()
    req.model_spec.name = name
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    t = req.inputs[alias]
    t.dtype = pb["types_pb2"].DT_FLOAT
    for d in images.shape:
        t.tensor_shape.dim.add().size = d
    if content:
        t.tensor_content = images.astype("<f4").tobytes()
    else:
        t.float_val.extend(images.ravel().tolist())
    return req


def output_array(tensor):
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype="<f4").reshape(shape)
    return np.array(tensor.float_val, dtype=np.float32).reshape(shape)


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def batching_flags(tmp, **fields):
    """--enable_batching with a --batching_parameters_file written in `tmp` (BatchingParameters
    text format) from `fields`."""
    path = os.path.join(tmp, "batching.txt")
    with open(path, "w") as f:
        f.write(" ".join("%s { value: %d }" % kv for kv in fields.items()))
    return ["--enable_batching", "--batching_parameters_file=" + path]


def run_reference(tmp, base, images):
    """inferd-run's outputs for `images` on version 1 of `base`: the reference."""
    from onnx import TensorProto, numpy_helper
    in_dir = os.path.join(tmp, "run_in")
    out_dir = os.path.join(tmp, "run_out")
    os.makedirs(in_dir)
    with open(os.path.join(in_dir, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(images, "image").SerializeToString())
    subprocess.run([ARGS.run, "--model", os.path.join(base, "1", "model.onnx"),
                    "--input_dir", in_dir, "--output_dir", out_dir], check=True,
                   capture_output=True)
    t = TensorProto()
    with open(os.path.join(out_dir, "output_0.pb"), "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


class ApiTest(unittest.TestCase):
    """Predict, metadata, status and reload against one server (acceptance 1 and 4)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(dir=ARGS.out)
        cls.base = make_base(cls.tmp)
        cls.server = Server(cls.base, extra=["--max_request_bytes=200000"])
        cls.server.wait_ready()
        cls.images = digits_images()[:16]
        cls.reference = run_reference(cls.tmp, cls.base, cls.images)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def test_grpc_predict_equals_inferd_run(self):
        for content in (False, True):
            resp = self.server.predict.Predict(predict_request(self.images, content=content), timeout=10)
            out = output_array(resp.outputs["probabilities"])
            np.testing.assert_allclose(out, self.reference, rtol=0, atol=1e-6)
            self.assertEqual(resp.model_spec.name, "digits")
            self.assertEqual(resp.model_spec.version.value, 1)
            self.assertEqual(resp.model_spec.signature_name, "serving_default")

    def test_rest_row_and_columnar_equal_inferd_run(self):
        rows = json.dumps({"instances": self.images.tolist()})
        status, body = self.server.http("POST", "/v1/models/digits:predict", rows,
                                        {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        np.testing.assert_allclose(np.array(json.loads(body)["predictions"]), self.reference,
                                   rtol=0, atol=1e-6)
        cols = json.dumps({"signature_name": "serving_default", "inputs": {"image": self.images.tolist()}})
        status, body = self.server.http("POST", "/v1/models/digits/versions/1:predict", cols)
        self.assertEqual(status, 200, body)
        np.testing.assert_allclose(np.array(json.loads(body)["outputs"]), self.reference,
                                   rtol=0, atol=1e-6)

    def test_expect_100_continue(self):
        """Clients that send "Expect: 100-continue" (curl for large bodies, .NET, Java) get
        "100 Continue" before they send the body instead of waiting a second; a body announced
        over the limit gets its 413 before it is sent."""
        body = json.dumps({"instances": self.images.tolist()}).encode()
        head, status, data = post_expecting_continue(self.server.rest_port,
                                                     "/v1/models/digits:predict", body)
        self.assertTrue(head.startswith(b"HTTP/1.1 100 Continue\r\n"), head)
        self.assertEqual(status, 200, data)
        np.testing.assert_allclose(np.array(json.loads(data)["predictions"]), self.reference,
                                   rtol=0, atol=1e-6)
        head, status, data = post_expecting_continue(self.server.rest_port,
                                                     "/v1/models/digits:predict", b"",
                                                     length=10 ** 6)
        self.assertEqual(status, 413, head)
        self.assertIn("exceeds the limit", json.loads(data)["error"])

    def test_metadata(self):
        req = pb["get_model_metadata_pb2"].GetModelMetadataRequest()
        req.model_spec.name = "digits"
        req.metadata_field.append("signature_def")
        resp = self.server.predict.GetModelMetadata(req, timeout=10)
        self.assertEqual(resp.model_spec.version.value, 1)
        sigs = pb["get_model_metadata_pb2"].SignatureDefMap()
        self.assertTrue(resp.metadata["signature_def"].Unpack(sigs))
        sig = sigs.signature_def["serving_default"]
        self.assertEqual(sig.method_name, "tensorflow/serving/predict")
        self.assertEqual([d.size for d in sig.inputs["image"].tensor_shape.dim], [-1, 1, 8, 8])
        self.assertEqual(sig.inputs["image"].dtype, pb["types_pb2"].DT_FLOAT)
        self.assertEqual([d.size for d in sig.outputs["probabilities"].tensor_shape.dim], [-1, 10])
        status, body = self.server.http("GET", "/v1/models/digits/metadata")
        self.assertEqual(status, 200)
        meta = json.loads(body)
        self.assertEqual(meta["model_spec"]["version"], "1")
        self.assertIn("serving_default", meta["metadata"]["signature_def"]["signature_def"])

    def test_status(self):
        req = pb["get_model_status_pb2"].GetModelStatusRequest()
        req.model_spec.name = "digits"
        resp = self.server.models.GetModelStatus(req, timeout=10)
        self.assertEqual(len(resp.model_version_status), 1)
        self.assertEqual(resp.model_version_status[0].version, 1)
        self.assertEqual(resp.model_version_status[0].state, 30)  # AVAILABLE
        status, body = self.server.http("GET", "/v1/models/digits")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})

    def test_reload_config_adds_and_removes_models(self):
        config = pb["model_server_config_pb2"].ModelServerConfig()
        for name in ("digits", "digits_copy"):
            c = config.model_config_list.config.add()
            c.name = name
            c.base_path = self.base
        req = pb["model_management_pb2"].ReloadConfigRequest(config=config)
        resp = self.server.models.HandleReloadConfigRequest(req, timeout=60)
        self.assertEqual(resp.status.error_code, 0, resp.status.error_message)
        out = self.server.predict.Predict(predict_request(self.images[:2], name="digits_copy"), timeout=10)
        self.assertEqual(out.model_spec.name, "digits_copy")
        # Back to one model: digits_copy goes away.
        del config.model_config_list.config[1]
        resp = self.server.models.HandleReloadConfigRequest(
            pb["model_management_pb2"].ReloadConfigRequest(config=config), timeout=60)
        self.assertEqual(resp.status.error_code, 0)
        import grpc
        with self.assertRaises(grpc.RpcError) as e:
            self.server.predict.Predict(predict_request(self.images[:1], name="digits_copy"), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        # A label on a version that is not available is refused.
        config.model_config_list.config[0].version_labels["stable"] = 9
        with self.assertRaises(grpc.RpcError) as e:
            self.server.models.HandleReloadConfigRequest(
                pb["model_management_pb2"].ReloadConfigRequest(config=config), timeout=60)
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("not currently available for inference", e.exception.details())

    def test_health_service(self):
        health = _import_health(os.path.join(ARGS.out, "stubs"))
        stub = health["health_pb2_grpc"].HealthStub(self.server.channel)
        req = health["health_pb2"].HealthCheckRequest(service="")
        self.assertEqual(stub.Check(req, timeout=5).status, 1)  # SERVING
        req.service = "tensorflow.serving.PredictionService"
        self.assertEqual(stub.Check(req, timeout=5).status, 1)
        import grpc
        with self.assertRaises(grpc.RpcError) as e:
            stub.Check(health["health_pb2"].HealthCheckRequest(service="nope"), timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        first = next(iter(stub.Watch(health["health_pb2"].HealthCheckRequest(service=""), timeout=5)))
        self.assertEqual(first.status, 1)
        status, _ = self.server.http("GET", "/healthz")
        self.assertEqual(status, 200)

    def test_a_taken_grpc_port_fails_the_start(self):
        """No silent port sharing: a second server on this one's gRPC port exits with an error
        naming the address, and this one still answers. Sharing needs both to ask for it."""
        port = self.server.grpc_port
        with self.assertRaises(RuntimeError) as e:
            Server(self.base, extra=["--port=%d" % port])
        self.assertIn("cannot listen for gRPC on 127.0.0.1:%d" % port, str(e.exception))
        resp = self.server.predict.Predict(predict_request(self.images[:1]), timeout=10)
        self.assertEqual(len(resp.outputs["probabilities"].float_val), 10)

        share = ["--grpc_channel_arguments=grpc.so_reuseport=1"]
        first = Server(self.base, extra=share)
        try:
            second = Server(self.base, extra=share + ["--port=%d" % first.grpc_port])
            self.assertEqual(second.grpc_port, first.grpc_port)
            self.assertEqual(second.stop(), 0)
        finally:
            self.assertEqual(first.stop(), 0)

    def test_classify_is_unimplemented(self):
        import grpc
        req = pb["classification_pb2"].ClassificationRequest()
        req.model_spec.name = "digits"
        with self.assertRaises(grpc.RpcError) as e:
            self.server.predict.Classify(req, timeout=5)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertIn("Classify is not supported", e.exception.details())

    def test_bad_inputs_fail_cleanly_while_good_requests_succeed(self):
        import grpc
        stop = threading.Event()
        failures, successes = [], [0]

        def good_load():
            req = predict_request(self.images[:4])
            conn = http.client.HTTPConnection("127.0.0.1", self.server.rest_port, timeout=30)
            body = json.dumps({"instances": self.images[:2].tolist()})
            while not stop.is_set():
                try:
                    out = self.server.predict.Predict(req, timeout=10)
                    np.testing.assert_allclose(output_array(out.outputs["probabilities"]),
                                               self.reference[:4], atol=1e-6)
                    status, data = self.server.http("POST", "/v1/models/digits:predict", body, conn=conn)
                    if status != 200:
                        failures.append(data)
                    successes[0] += 1
                except Exception as e:  # noqa: BLE001
                    failures.append(repr(e))

        threads = [threading.Thread(target=good_load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            self._check_bad_grpc(grpc)
            self._check_bad_rest()
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        self.assertGreater(successes[0], 0)
        self.assertIsNone(self.server.proc.poll())

    def _expect_grpc(self, grpc, call, code, text):
        with self.assertRaises(grpc.RpcError) as e:
            call()
        self.assertEqual(e.exception.code(), code, e.exception.details())
        self.assertIn(text, e.exception.details())

    def _check_bad_grpc(self, grpc):
        p = self.server.predict.Predict
        img = self.images[:2]
        self._expect_grpc(grpc, lambda: p(predict_request(img, name="half"), timeout=5),
                          grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(half)")
        self._expect_grpc(grpc, lambda: p(predict_request(img, version=7), timeout=5),
                          grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(digits, 7)")
        self._expect_grpc(grpc, lambda: p(predict_request(img, label="canary"), timeout=5),
                          grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: canary")
        self._expect_grpc(grpc, lambda: p(predict_request(img, alias="pixels"), timeout=5),
                          grpc.StatusCode.INVALID_ARGUMENT,
                          "input size does not match signature: 1!=1 len({pixels}) != len({image}). "
                          "Sent extra: {pixels}. Missing but required: {image}.")
        extra = predict_request(img)
        extra.inputs["more"].CopyFrom(extra.inputs["image"])
        self._expect_grpc(grpc, lambda: p(extra, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "Sent extra: {more}")
        missing = predict_request(img)
        del missing.inputs["image"]
        self._expect_grpc(grpc, lambda: p(missing, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "Missing but required: {image}")
        wrong_dtype = predict_request(img)
        wrong_dtype.inputs["image"].dtype = pb["types_pb2"].DT_INT64
        wrong_dtype.inputs["image"].ClearField("float_val")
        wrong_dtype.inputs["image"].int64_val.extend([1] * img.size)
        self._expect_grpc(grpc, lambda: p(wrong_dtype, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "input \"image\": expected dtype float32 (DT_FLOAT), got int64 (DT_INT64)")
        wrong_shape = predict_request(img.reshape(2, 1, 4, 16))
        self._expect_grpc(grpc, lambda: p(wrong_shape, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "expected shape [-1,1,8,8] (-1: any size), got [2,1,4,16]")
        empty = predict_request(np.zeros((0, 1, 8, 8), np.float32))
        self._expect_grpc(grpc, lambda: p(empty, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "empty batch")
        short = predict_request(img)
        del short.inputs["image"].float_val[5:]
        self._expect_grpc(grpc, lambda: p(short, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "5 values in float_val for 128 elements")
        bad_content = predict_request(img, content=True)
        bad_content.inputs["image"].tensor_content = b"\x00" * 7
        self._expect_grpc(grpc, lambda: p(bad_content, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "tensor_content has 7 bytes")
        bad_filter = predict_request(img)
        bad_filter.output_filter.append("logits")
        self._expect_grpc(grpc, lambda: p(bad_filter, timeout=5), grpc.StatusCode.INVALID_ARGUMENT,
                          "output tensor alias not found in signature: logits")
        bad_sig = predict_request(img)
        bad_sig.model_spec.signature_name = "classify"
        self._expect_grpc(grpc, lambda: p(bad_sig, timeout=5), grpc.StatusCode.FAILED_PRECONDITION,
                          'Serving signature key "classify" not found.')
        # Truncated and garbage protobuf bytes through a raw method handle.
        raw = self.server.channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
        good_bytes = predict_request(img).SerializeToString()
        for junk in (good_bytes[:len(good_bytes) // 2], b"\xff" * 50, b"\x12\xff\xff\xff\xff\x0f"):
            with self.assertRaises(grpc.RpcError) as e:
                raw(junk, timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("not a valid tensorflow.serving.PredictRequest: its %d bytes" % len(junk),
                          e.exception.details())
        for method, message in (("PredictionService/GetModelMetadata", "GetModelMetadataRequest"),
                                ("ModelService/GetModelStatus", "GetModelStatusRequest"),
                                ("ModelService/HandleReloadConfigRequest", "ReloadConfigRequest")):
            raw = self.server.channel.unary_unary("/tensorflow.serving." + method)
            with self.assertRaises(grpc.RpcError) as e:
                raw(b"\xff" * 20, timeout=5)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, method)
            self.assertIn("not a valid tensorflow.serving.%s" % message, e.exception.details())

    def _expect_rest(self, method, path, body, status, text, headers=None):
        got, data = self.server.http(method, path, body, headers)
        self.assertEqual(got, status, data)
        self.assertIn(text, json.loads(data)["error"])

    def _check_bad_rest(self):
        rows = json.dumps({"instances": self.images[:2].tolist()})
        self._expect_rest("POST", "/v1/models/half:predict", rows, 404,
                          "Servable not found for request: Latest(half)")
        self._expect_rest("POST", "/v1/models/digits/versions/9:predict", rows, 404,
                          "Servable not found for request: Specific(digits, 9)")
        self._expect_rest("POST", "/v1/models/digits/labels/canary:predict", rows, 400,
                          "Unrecognized servable version label: canary")
        self._expect_rest("GET", "/v1/models/half", None, 404, "Could not find any versions of model half")
        self._expect_rest("GET", "/v1/models/digits/versions/3", None, 404,
                          "Could not find version 3 of model digits")
        self._expect_rest("GET", "/v1/models", None, 400, "Missing model name in request.")
        self._expect_rest("POST", "/v1/models/digits:predict", '{"instances": [[1, 2', 400, "")
        self._expect_rest("POST", "/v1/models/digits:predict", "not json", 400, "")
        self._expect_rest("POST", "/v1/models/digits:predict", '{"inputs": {"pixels": [1]}}', 400, "pixels")
        self._expect_rest("POST", "/v1/models/digits:predict", '{"instances": []}', 400, "")
        self._expect_rest("POST", "/v1/models/digits:predict",
                          json.dumps({"instances": [[1.0] * 8]}), 400, "expected shape [-1,1,8,8]")
        self._expect_rest("POST", "/v1/models/digits:predict", rows, 415, "Content-Type",
                          {"Content-Type": "application/x-protobuf"})
        big = json.dumps({"instances": np.zeros((700, 1, 8, 8)).tolist()})
        self.assertGreater(len(big), 200000)
        got, data = self.server.http("POST", "/v1/models/digits:predict", big)
        self.assertEqual(got, 413, data)
        self.assertIn("exceeds the limit", json.loads(data)["error"])
        self._expect_rest("GET", "/v1/models/digits", None, 431,
                          "header fields exceed the limit of 65536 bytes", {"X-Big": "a" * 70000})
        got, _ = self.server.http("GET", "/v1/models/digits:predict")
        self.assertEqual(got, 405)
        got, _ = self.server.http("GET", "/nowhere")
        self.assertEqual(got, 404)


class CallerRunsBatchingTest(unittest.TestCase):
    """Batching of a small model on the request threads: concurrent gRPC requests are merged
    and answered right, REST requests run alone, and the batch limits still hold."""

    def test_concurrent_requests_are_batched_on_request_threads(self):
        tmp = tempfile.mkdtemp(dir=ARGS.out)
        base = make_base(tmp)
        batching = batching_flags(tmp, max_batch_size=16, batch_timeout_micros=0,
                                  max_enqueued_batches=1000, num_batch_threads=1)
        # A limit the 16-row batch surely fits, even on a loaded machine.
        server = Server(base, extra=batching + ["--inline_run_limit_us=20000"])
        try:
            server.wait_ready()
            self.assertRegex(server.read_log(), r"batches \(up to 16 rows: .*\) run on request "
                                                r"threads \(gRPC: 1 at most at once; REST: each "
                                                r"HTTP thread batches its own\)")
            images = digits_images()[:16]
            reference = run_reference(tmp, base, images)
            lock = threading.Lock()
            failures, rows_sent = [], [0]

            def grpc_client(i):
                for n in range(40):
                    k = (i + n) % 16
                    try:
                        resp = server.predict.Predict(predict_request(images[k:k + 1]), timeout=30)
                        np.testing.assert_allclose(output_array(resp.outputs["probabilities"]),
                                                   reference[k:k + 1], rtol=0, atol=1e-6)
                        with lock:
                            rows_sent[0] += 1
                    except Exception as e:  # noqa: BLE001
                        with lock:
                            failures.append(repr(e)[:300])

            def rest_client(i):
                conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
                for n in range(40):
                    k = (i + 2 * n) % 15
                    body = json.dumps({"instances": images[k:k + 2].tolist()})
                    status, data = server.http("POST", "/v1/models/digits:predict", body, conn=conn)
                    try:
                        self.assertEqual(status, 200, data)
                        np.testing.assert_allclose(np.array(json.loads(data)["predictions"]),
                                                   reference[k:k + 2], rtol=0, atol=1e-6)
                        with lock:
                            rows_sent[0] += 2
                    except Exception as e:  # noqa: BLE001
                        with lock:
                            failures.append(repr(e)[:300])

            threads = [threading.Thread(target=grpc_client, args=(i,)) for i in range(8)]
            threads += [threading.Thread(target=rest_client, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(failures, [])
            self.assertEqual(rows_sent[0], 8 * 40 + 2 * 40 * 2)
            # Every row, gRPC or REST, went through a batch: the batch metrics count them all.
            status, text = server.http("GET", "/monitoring/prometheus/metrics")
            self.assertEqual(status, 200)
            text = text.decode()

            def metric(name):
                m = re.search(r"^%s\{model_name=\"digits\"\} (\S+)$" % re.escape(name), text, re.M)
                self.assertIsNotNone(m, name)
                return float(m.group(1))
            prefix = ":tensorflow:serving:batching_session:input_batch_size"
            print("\ncaller-runs batching test: %d rows in %d batches"
                  % (metric(prefix + "_sum"), metric(prefix + "_count")), file=sys.stderr)
            self.assertEqual(metric(prefix + "_sum"), rows_sent[0])
            self.assertLessEqual(metric(prefix + "_count"), 8 * 40 + 2 * 40)
            # A REST request over max_batch_size is refused as a batched gRPC one would be.
            body = json.dumps({"instances": np.concatenate([images, images[:1]]).tolist()})
            status, data = server.http("POST", "/v1/models/digits:predict", body)
            self.assertEqual(status, 400, data)
            self.assertIn("Task size 17 is larger than maximum batch size 16", data.decode())
        finally:
            self.assertEqual(server.stop(), 0)


class VersionSwapTest(unittest.TestCase):
    """Acceptance 2 and 3 through the server: swaps under load, corrupt versions."""

    def test_swaps_under_load_fail_nothing(self):
        tmp = tempfile.mkdtemp(dir=ARGS.out)
        base = make_base(tmp, versions=(1,))
        server = Server(base, extra=["--enable_batching"])
        try:
            server.wait_ready()
            images = digits_images()[:4]
            stop = threading.Event()
            lock = threading.Lock()
            seen, failures, count = [], [], [0]
            per_client = [[] for _ in range(8)]  # each client's versions, in its own order

            def client(i):
                conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
                req = predict_request(images[i % 4:i % 4 + 1] if i % 2 else images)
                body = json.dumps({"instances": images[:1].tolist()})
                while not stop.is_set():
                    try:
                        if i % 4 == 3:
                            status, data = server.http("POST", "/v1/models/digits:predict", body, conn=conn)
                            if status != 200:
                                raise RuntimeError(data)
                            with lock:
                                count[0] += 1
                        else:
                            out = server.predict.Predict(req, timeout=30)
                            v = out.model_spec.version.value
                            if not per_client[i] or per_client[i][-1] != v:
                                per_client[i].append(v)
                            with lock:
                                count[0] += 1
                                if not seen or seen[-1] != out.model_spec.version.value:
                                    seen.append(out.model_spec.version.value)
                    except Exception as e:  # noqa: BLE001
                        with lock:
                            failures.append(repr(e)[:300])

            threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
            start = time.time()
            for t in threads:
                t.start()

            def latest_seen(v):
                with lock:
                    return bool(seen) and seen[-1] == v

            time.sleep(3)
            publish_version(base, 2)
            wait_until(lambda: latest_seen(2), 10, "version 2 to serve")
            time.sleep(3)
            publish_version(base, 3)
            wait_until(lambda: latest_seen(3), 10, "version 3 to serve")
            time.sleep(3)
            shutil.rmtree(os.path.join(base, "3"))
            wait_until(lambda: latest_seen(2), 10, "version 2 to serve again")
            while time.time() - start < 21:
                time.sleep(0.2)
            stop.set()
            for t in threads:
                t.join()
            elapsed = time.time() - start
            print("\nswap test: %d requests in %.1f s by 8 clients, versions per gRPC client %s, %d failures"
                  % (count[0], elapsed, [c for c in per_client if c], len(failures)), file=sys.stderr)
            self.assertEqual(failures, [])
            # Across clients, requests in flight during a swap finish on the old version after
            # others already got the new one; each client on its own must see the versions move
            # 1 -> 2 -> 3 -> 2 without ever going back.
            for versions in per_client:
                if not versions:
                    continue
                it = iter([1, 2, 3, 2])
                self.assertTrue(all(v in it for v in versions), per_client)
            self.assertEqual(seen[0], 1)
            self.assertEqual(seen[-1], 2)
            self.assertEqual(set(seen), {1, 2, 3})
            self.assertGreaterEqual(elapsed, 20)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_corrupt_version_reported_and_previous_serves(self):
        tmp = tempfile.mkdtemp(dir=ARGS.out)
        base = make_base(tmp, versions=(1,))
        server = Server(base)
        try:
            server.wait_ready()
            with open(os.path.join(base, "1", "model.onnx"), "rb") as f:
                data = f.read()
            os.makedirs(os.path.join(base, "2"))
            with open(os.path.join(base, "2", "model.onnx"), "wb") as f:
                f.write(data[:len(data) // 2])  # a half-copied file

            def v2_failed():
                status, body = server.http("GET", "/v1/models/digits/versions/2")
                if status != 200:
                    return False
                s = json.loads(body)["model_version_status"][0]
                return s["state"] == "END" and s["status"]["error_code"] != "OK"
            wait_until(v2_failed, 10, "version 2 to fail")
            req = pb["get_model_status_pb2"].GetModelStatusRequest()
            req.model_spec.name = "digits"
            resp = server.models.GetModelStatus(req, timeout=5)
            states = {s.version: (s.state, s.status.error_message) for s in resp.model_version_status}
            self.assertEqual(states[1][0], 30)
            self.assertEqual(states[2][0], 50)
            self.assertTrue(states[2][1])
            out = server.predict.Predict(predict_request(digits_images()[:1]), timeout=10)
            self.assertEqual(out.model_spec.version.value, 1)
            # Completing the copy makes it load.
            with open(os.path.join(base, "2", "model.onnx"), "wb") as f:
                f.write(data)
            wait_until(lambda: server.predict.Predict(predict_request(digits_images()[:1]),
                                                      timeout=10).model_spec.version.value == 2,
                       10, "version 2 after the copy completed")
        finally:
            self.assertEqual(server.stop(), 0)


class HttpTimeoutTest(unittest.TestCase):
    """REST read and idle timeouts close stalled and idle connections, never busy ones."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(dir=ARGS.out)
        cls.server = Server(make_base(cls.tmp), extra=["--rest_api_read_timeout_ms=300",
                                                       "--rest_api_idle_timeout_ms=400"])
        cls.server.wait_ready()

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.server.rest_port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def seconds_until_closed(self, sock, start):
        """Reads until the server closes; returns the time from `start`."""
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        return time.time() - start

    def test_stalled_request_is_closed_after_read_timeout(self):
        sock = self.connect()
        start = time.time()
        sock.sendall(b"POST /v1/models/digits:predict HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 100\r\n\r\n{\"instances\"")
        took = self.seconds_until_closed(sock, start)
        sock.close()
        self.assertGreaterEqual(took, 0.28)
        self.assertLess(took, 2.0)

    def test_idle_keep_alive_connection_is_closed_after_idle_timeout(self):
        sock = self.connect()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"ok\n" not in answer:
            chunk = sock.recv(4096)
            self.assertTrue(chunk, "closed before answering")
            answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)
        took = self.seconds_until_closed(sock, time.time())
        sock.close()
        self.assertGreaterEqual(took, 0.38)
        self.assertLess(took, 2.0)

    def test_busy_connection_outlives_the_timeouts(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.rest_port, timeout=5)
        start = time.time()
        count = 0
        while time.time() - start < 1.5:  # several idle timeouts, a request every 100 ms
            status, body = self.server.http("GET", "/healthz", conn=conn)
            self.assertEqual((status, body), (200, b"ok\n"))
            count += 1
            time.sleep(0.1)
        conn.close()
        self.assertGreaterEqual(count, 10)


class DrainTest(unittest.TestCase):
    """Acceptance 5: SIGTERM under load answers every accepted request and exits 0."""

    def test_sigterm_during_load(self):
        import grpc
        tmp = tempfile.mkdtemp(dir=ARGS.out)
        base = make_base(tmp)
        # Requests wait up to 300 ms for a batch, so SIGTERM finds many in flight.
        batching = batching_flags(tmp, max_batch_size=64, batch_timeout_micros=300000,
                                  max_enqueued_batches=100, num_batch_threads=1)
        server = Server(base, extra=batching + ["--drain_timeout_seconds=10"])
        server.wait_ready()
        images = digits_images()[:1]
        lock = threading.Lock()
        ok, refused, other = [0], [0], []
        stop = threading.Event()

        def client():
            req = predict_request(images)
            while not stop.is_set():
                try:
                    server.predict.Predict(req, timeout=20)
                    with lock:
                        ok[0] += 1
                except grpc.RpcError as e:
                    with lock:
                        if e.code() == grpc.StatusCode.UNAVAILABLE:
                            refused[0] += 1  # never accepted: the server had stopped listening
                            stop.wait(0.05)
                        else:
                            other.append("%s %s" % (e.code(), e.details()))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        wait_until(lambda: ok[0] >= 20, 20, "requests to flow")
        time.sleep(0.15)  # let a batch fill so requests are in flight
        start = time.time()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(15)
        took = time.time() - start
        stop.set()
        for t in threads:
            t.join()
        log = server.read_log()
        server.stop()
        print("\ndrain test: exit %d after %.2f s; %d OK, %d refused after stop, other errors: %s"
              % (code, took, ok[0], refused[0], other[:3]), file=sys.stderr)
        self.assertEqual(code, 0)
        self.assertLess(took, 10)
        self.assertEqual(other, [])
        self.assertIn("every accepted request was answered", log)
        m = re.search(r"waiting up to \S+ for (\d+) requests in flight", log)
        self.assertIsNotNone(m, log)
        self.assertGreater(int(m.group(1)), 0, "SIGTERM should find requests in flight")


def init(argv, extra=()):
    """Parses the binaries' paths (--server, --run, --src, --out and the `extra` ones, all
    required) into ARGS and generates the Python stubs; returns the unittest arguments."""
    global ARGS
    parser = argparse.ArgumentParser()
    for name in ("server", "run", "src", "out") + tuple(extra):
        parser.add_argument("--" + name, required=True)
    ARGS, rest = parser.parse_known_args(argv)
    os.makedirs(ARGS.out, exist_ok=True)
    warnings.simplefilter("ignore", ResourceWarning)
    generate_stubs(ARGS.src, os.path.join(ARGS.out, "stubs"))
    return rest


def main():
    rest = init(sys.argv[1:])
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
