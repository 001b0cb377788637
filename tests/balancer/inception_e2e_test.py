#!/usr/bin/python3
"""The Inception-serving workflow on loopback: JPEG/PNG images into inferd-server replicas behind
inferd-gateway, bad images, and a rolling model-version update plus a replica-by-replica restart
under continuous load.

The model is models/zoo/export_inception.py's Inception-v3 (random weights, the preprocessing
and top-5 labels it declares in inferd.json). Answers are checked against inferd-run --images on
the same files, and the server's preprocessing against an independent NumPy implementation.
Clients are Debian's python3-grpcio with stubs generated from proto/.

  inception_e2e_test.py --gateway G --server S --run R --src SRC --out OUT --zoo build/zoo
"""
import base64
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_testing as gt  # noqa: E402
from gateway_testing import Gateway, channel, replicas  # noqa: E402

ZOO = None
LOAD_SECONDS = float(os.environ.get("INFERD_INCEPTION_LOAD_SECONDS", "36"))
IMAGES = "/usr/lib/python3/dist-packages/sklearn/datasets/images"
CHINA = os.path.join(IMAGES, "china.jpg")
FLOWER = os.path.join(IMAGES, "flower.jpg")


def export(base, version):
    subprocess.run(["/usr/bin/python3", os.path.join(gt.ARGS.src, "models/zoo/export_inception.py"),
                    "--base", base, "--version", str(version), "--zoo", ZOO, "--threads", "2"],
                   check=True, stdout=subprocess.DEVNULL)


def read_tensor(path):
    from onnx import TensorProto, numpy_helper
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def reference(base, version, files, out):
    """inferd-run --images on `files`: (preprocessed input, top-5 classes, top-5 scores)."""
    model = os.path.join(base, "inception", str(version), "model.onnx")
    subprocess.run([gt.ARGS.run, "--model", model, "--images", ",".join(files), "--output_dir", out],
                   check=True, stderr=subprocess.DEVNULL)
    logits = read_tensor(os.path.join(out, "output_0.pb")).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    order = np.argsort(-p, axis=1, kind="stable")[:, :5]
    return read_tensor(os.path.join(out, "input_0.pb")), order, np.take_along_axis(p, order, 1)


def numpy_preprocess(path, spec):
    """The preprocessing inferd.json declares, written independently: PIL decodes, NumPy crops
    (tf.image.central_crop's margins), resizes bilinearly with half-pixel centres, normalises."""
    from PIL import Image
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    h, w = img.shape[:2]
    cy, cx = int((h - h * spec["central_crop"]) / 2), int((w - w * spec["central_crop"]) / 2)
    img = img[cy:h - cy, cx:w - cx]
    ih, iw = img.shape[:2]

    def axis(n_out, n_in):
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, wy = axis(spec["height"], ih)
    x0, x1, wx = axis(spec["width"], iw)
    wx = wx[None, :, None]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bottom = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    out = top * (1 - wy[:, None, None]) + bottom * wy[:, None, None]
    out = (out * spec["scale"] - np.array(spec["mean"])) / np.array(spec["std"])
    return out.transpose(2, 0, 1)[None].astype(np.float32)


def png_with_size(width, height):
    """A PNG header claiming width x height with a valid CRC, and one tiny IDAT."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def image_request(images, version=None):
    pb = replicas.pb
    req = pb["predict_pb2"].PredictRequest()
    req.model_spec.name = "inception"
    if version is not None:
        req.model_spec.version.value = version
    t = req.inputs["images"]
    t.dtype = pb["types_pb2"].DT_STRING
    t.tensor_shape.dim.add().size = len(images)
    t.string_val.extend(images)
    return req


def top5(resp):
    classes = np.array(resp.outputs["classes"].int64_val).reshape(-1, 5)
    scores = np.array(resp.outputs["scores"].float_val).reshape(-1, 5)
    labels = [s.decode() for s in resp.outputs["labels"].string_val]
    return classes, scores, labels


def start_replicas(base, ports=None, n=3):
    servers = []
    for i in range(n):
        extra = ["--port=%d" % ports[i][0], "--rest_api_port=%d" % ports[i][1]] if ports else []
        servers.append(replicas.Server(os.path.join(base, "inception"), model_name="inception",
                                       extra=extra))
    for s in servers:
        s.wait_ready(timeout=120)
    return servers


def read(path):
    with open(path, "rb") as f:
        return f.read()


class ImageApiTest(unittest.TestCase):
    """One replica behind the gateway: answers, preprocessing, bad images."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(dir=gt.ARGS.out)
        cls.base = os.path.join(cls.tmp, "models")
        export(cls.base, 1)
        cls.server = start_replicas(cls.base, n=1)[0]
        cls.gateway = Gateway([cls.server])
        cls.ref_input, cls.ref_classes, cls.ref_scores = reference(
            cls.base, 1, [CHINA, FLOWER], os.path.join(cls.tmp, "ref"))
        with open(os.path.join(cls.base, "inception/1/labels.txt")) as f:
            cls.labels = f.read().splitlines()

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        cls.server.stop()

    def check_answer(self, classes, scores, labels, rows=(0, 1)):
        for i, r in enumerate(rows):
            np.testing.assert_array_equal(classes[i], self.ref_classes[r])
            np.testing.assert_allclose(scores[i], self.ref_scores[r], rtol=1e-5, atol=1e-6)
            self.assertEqual(labels[5 * i:5 * i + 5], [self.labels[c] for c in self.ref_classes[r]])

    def test_grpc_jpeg_batch_through_the_gateway_equals_inferd_run(self):
        stub = replicas.pb["prediction_service_pb2_grpc"].PredictionServiceStub(
            channel(self.gateway.port))
        resp = stub.Predict(image_request([read(CHINA), read(FLOWER)]), timeout=60)
        self.assertEqual(resp.model_spec.version.value, 1)
        self.check_answer(*top5(resp))
        # Directly to the replica, one image: the same answer as row 1 of the batch.
        resp = self.server.predict.Predict(image_request([read(FLOWER)]), timeout=60)
        self.check_answer(*top5(resp), rows=(1,))

    def test_rest_b64_through_the_gateway_equals_inferd_run(self):
        body = json.dumps({"instances": [{"b64": base64.b64encode(read(p)).decode()}
                                         for p in (CHINA, FLOWER)]})
        status, data = gt.http_call(self.gateway.rest_port, "POST",
                                    "/v1/models/inception:predict", body)
        self.assertEqual(status, 200, data)
        rows = json.loads(data)["predictions"]
        self.check_answer(np.array([r["classes"] for r in rows]),
                          np.array([r["scores"] for r in rows]),
                          [label for r in rows for label in r["labels"]])
        # Columnar form with the input named.
        body = json.dumps({"inputs": {"images": [{"b64": base64.b64encode(read(CHINA)).decode()}]}})
        status, data = gt.http_call(self.gateway.rest_port, "POST",
                                    "/v1/models/inception/versions/1:predict", body)
        self.assertEqual(status, 200, data)
        out = json.loads(data)["outputs"]
        self.check_answer(np.array(out["classes"]), np.array(out["scores"]),
                          [label for row in out["labels"] for label in row], rows=(0,))

    def test_preprocessing_matches_an_independent_implementation(self):
        with open(os.path.join(self.base, "inception/1/inferd.json")) as f:
            spec = json.load(f)["inputs"]["images"]["image"]
        # PNG: the same pixels for both decoders, so only arithmetic differs.
        from PIL import Image
        png = os.path.join(self.tmp, "china.png")
        Image.open(CHINA).save(png)
        mine, _, _ = reference(self.base, 1, [png], os.path.join(self.tmp, "ref_png"))
        theirs = numpy_preprocess(png, spec)
        self.assertEqual(mine.shape, (1, 3, 299, 299))
        np.testing.assert_allclose(mine, theirs, atol=2e-5)
        # JPEG: PIL and the server both decode with libjpeg-turbo; allow one level of rounding.
        jpeg_diff = np.abs(self.ref_input[:1] - numpy_preprocess(CHINA, spec))
        self.assertLess(float(jpeg_diff.max()), 1.5 / 255 / 0.224, "JPEG pixels differ")

    def test_metadata_shows_the_served_signature(self):
        status, data = gt.http_call(self.gateway.rest_port, "GET", "/v1/models/inception/metadata")
        self.assertEqual(status, 200, data)
        sig = json.loads(data)["metadata"]["signature_def"]["signature_def"]["serving_default"]
        self.assertEqual(sig["inputs"]["images"]["dtype"], "DT_STRING")
        self.assertEqual(sorted(sig["outputs"]), ["classes", "labels", "scores"])
        self.assertEqual(sig["outputs"]["classes"]["dtype"], "DT_INT64")

    def test_bad_images_are_invalid_argument_and_the_server_stays_up(self):
        grpc = __import__("grpc")
        stub = replicas.pb["prediction_service_pb2_grpc"].PredictionServiceStub(
            channel(self.gateway.port))
        jpeg = read(CHINA)
        cases = [
            ([jpeg[:len(jpeg) // 2]], "JPEG data is invalid, corrupt or truncated"),
            ([b"GIF89a not supported"], "not a JPEG or PNG image"),
            ([b""], "image bytes are empty"),
            ([png_with_size(0, 10)], "PNG data is invalid"),
            ([png_with_size(70000, 70000)], "above the limit of 50000000 pixels"),
            ([jpeg, b"\x89PNG\r\n\x1a\n" + b"\0" * 40], "image 1: PNG data is invalid"),
        ]
        for images, text in cases:
            with self.assertRaises(grpc.RpcError) as ctx:
                stub.Predict(image_request(images), timeout=60)
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, text)
            self.assertIn(text, ctx.exception.details())
        # A float tensor where encoded images are expected.
        req = image_request([jpeg])
        req.inputs["images"].dtype = replicas.pb["types_pb2"].DT_FLOAT
        del req.inputs["images"].string_val[:]
        req.inputs["images"].float_val.append(1.0)
        with self.assertRaises(grpc.RpcError) as ctx:
            stub.Predict(req, timeout=60)
        self.assertIn("expected dtype string (DT_STRING)", ctx.exception.details())
        # REST: 400 with the message; b64 that is not base64 and raw strings that are not images.
        for body, text in [
                ({"instances": [{"b64": "!!!"}]}, "not valid base64"),
                ({"instances": ["not an image"]}, "not a JPEG or PNG image"),
                ({"instances": [{"b64": base64.b64encode(png_with_size(70000, 70000)).decode()}]},
                 "above the limit")]:
            status, data = gt.http_call(self.gateway.rest_port, "POST",
                                        "/v1/models/inception:predict", json.dumps(body))
            self.assertEqual(status, 400, data)
            self.assertIn(text, json.loads(data)["error"])
        # Still up and right; the failures are counted.
        self.assertIsNone(self.server.proc.poll())
        self.check_answer(*top5(stub.Predict(image_request([read(CHINA), read(FLOWER)]),
                                             timeout=60)))
        _, metrics = self.server.http("GET", "/monitoring/prometheus/metrics")
        metrics = metrics.decode()
        self.assertRegex(metrics, r'inferd_images_total\{model="inception",status="INVALID_ARGUMENT"\} \d')
        self.assertRegex(metrics, r'inferd_image_preprocess_seconds_count\{model="inception"\} \d')


class RolloutTest(unittest.TestCase):
    """3 replicas sharing a base path behind the gateway, 8 clients for LOAD_SECONDS: version 2 is
    published (every replica picks it up), then the replicas are restarted one by one."""

    def test_new_version_then_replica_restarts_fail_no_request(self):
        tmp = tempfile.mkdtemp(dir=gt.ARGS.out)
        base = os.path.join(tmp, "models")
        export(base, 1)
        # Version 2 is prepared aside (its answers are checked below) and published by rename.
        staging = os.path.join(tmp, "staging")
        export(staging, 2)
        refs = {v: reference(b, v, [CHINA], os.path.join(tmp, "ref%d" % v))[1][0]
                for v, b in ((1, base), (2, staging))}
        self.assertFalse(np.array_equal(refs[1], refs[2]), "versions 1 and 2 answer alike")

        servers = start_replicas(base)
        ports = [(s.grpc_port, s.rest_port) for s in servers]
        gateway = Gateway(servers)
        image = read(CHINA)
        stats = {"ok": 0, "errors": [], "answers": []}  # answers: (start time, version)
        lock = threading.Lock()
        done = threading.Event()

        def client():
            ch = channel(gateway.port)
            stub = replicas.pb["prediction_service_pb2_grpc"].PredictionServiceStub(ch)
            req = image_request([image])
            while not done.is_set():
                start = time.time()
                try:
                    resp = stub.Predict(req, timeout=30)
                    version = resp.model_spec.version.value
                    classes = top5(resp)[0][0]
                    with lock:
                        if not np.array_equal(classes, refs.get(version)):
                            stats["errors"].append("version %d answered %s" % (version, classes))
                        stats["ok"] += 1
                        stats["answers"].append((start, version))
                except Exception as e:  # noqa: BLE001 - every failure is a finding
                    with lock:
                        stats["errors"].append(repr(e)[:300])
            ch.close()

        threads = [threading.Thread(target=client) for _ in range(8)]
        started = time.time()
        for t in threads:
            t.start()
        try:
            time.sleep(4)
            os.rename(os.path.join(staging, "inception", "2"), os.path.join(base, "inception", "2"))
            replicas.wait_until(lambda: all(self.serves_only(s, 2) for s in servers), 60,
                                "every replica serves version 2 alone")
            all_on_v2 = time.time()
            time.sleep(2)
            for i in range(len(servers)):
                self.assertEqual(servers[i].stop(), 0, servers[i].read_log())
                servers[i] = start_replicas(base, ports=[ports[i]], n=1)[0]
                replicas.wait_until(
                    lambda: gateway.endpoints().get("127.0.0.1:%d" % ports[i][0]) == "ready"
                    and self.replica_healthy(gateway, ports[i][0]), 30, "gateway re-admits")
                time.sleep(2)
            remaining = LOAD_SECONDS - (time.time() - started)
            if remaining > 0:
                time.sleep(remaining)
        finally:
            done.set()
            for t in threads:
                t.join(60)
            elapsed = time.time() - started
            gateway_log = gateway.read_log()
            self.assertEqual(gateway.stop(), 0, gateway_log)
            for s in servers:
                s.stop()
        v1 = sum(1 for _, v in stats["answers"] if v == 1)
        v2 = sum(1 for _, v in stats["answers"] if v == 2)
        late_v1 = sum(1 for t, v in stats["answers"] if v == 1 and t > all_on_v2)
        print("\nrollout: %d calls in %.1f s by 8 clients, %d errors; version 1: %d, version 2: %d"
              % (stats["ok"], elapsed, len(stats["errors"]), v1, v2), file=sys.stderr)
        self.assertGreaterEqual(elapsed, 30)
        self.assertEqual(stats["errors"], [], gateway_log[-3000:])
        self.assertGreater(v1, 0)
        self.assertGreater(v2, v1 // 4)
        self.assertEqual(late_v1, 0, "version 1 answered after every replica had moved to 2")

    @staticmethod
    def serves_only(server, version):
        pb = replicas.pb
        req = pb["get_model_status_pb2"].GetModelStatusRequest()
        req.model_spec.name = "inception"
        states = {s.version: s.state for s in server.models.GetModelStatus(req, timeout=10)
                  .model_version_status}
        available = pb["get_model_status_pb2"].ModelVersionStatus.AVAILABLE
        return [v for v, s in states.items() if s == available] == [version]

    @staticmethod
    def replica_healthy(gateway, grpc_port):
        rows = json.loads(gateway.admin("/endpoints")[1])["endpoints"]
        return any(r["grpc_port"] == grpc_port and r["healthy"] and not r["ejected"] for r in rows)


def main():
    global ZOO
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--zoo", required=True)
    args, rest = parser.parse_known_args()
    ZOO = os.path.abspath(args.zoo)
    sys.argv = [sys.argv[0]] + rest
    gt.main()


if __name__ == "__main__":
    main()
