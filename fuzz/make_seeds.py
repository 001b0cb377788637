#!/usr/bin/python3
"""Writes the seed inputs of the fuzz targets into fuzz/corpus/<target>/seed-*.

Seeds are small valid inputs (and a few near misses) that give libFuzzer a start in every
format: REST :predict bodies, PredictRequest messages, JPEG and PNG images, warmup TFRecords,
ONNX models, DNS responses and Kubernetes EndpointSlice JSON. Run it again after changing it;
it replaces only the seed-* files, not inputs that scripts/fuzz --merge added.

Needs Debian's /usr/bin/python3 (python3-onnx, python3-protobuf, python3-numpy), protoc.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def clear_seeds():
    if not os.path.isdir(CORPUS):
        return
    for target in os.listdir(CORPUS):
        d = os.path.join(CORPUS, target)
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))


def proto_modules(work):
    proto_dir = os.path.join(ROOT, "proto")
    protos = []
    for dirpath, _, files in os.walk(proto_dir):
        protos += [os.path.relpath(os.path.join(dirpath, f), proto_dir)
                   for f in files if f.endswith(".proto")]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", work] + sorted(protos), check=True)
    sys.path.insert(0, work)
    from tensorflow.core.framework import tensor_pb2, types_pb2  # noqa: F401
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    return types_pb2, predict_pb2, prediction_log_pb2


def json_seeds():
    image = [[0.5] * 8 for _ in range(8)]
    t = "json_predict_fuzzer"
    write(t, "row", json.dumps({"instances": [image]}))
    write(t, "row-named", json.dumps({"signature_name": "serving_default",
                                      "instances": [{"image": image}, {"image": image}]}))
    write(t, "columnar", json.dumps({"inputs": {"image": [image]}}))
    write(t, "columnar-one", json.dumps({"inputs": [image, image]}))
    write(t, "types", json.dumps({"inputs": {
        "f32": [[1.5, -2e-3], [3e38, 1e-45]], "f64": [1e308, -0.0], "f16": [65504, 1e-7],
        "i8": [-128, 127], "i64": [9223372036854775807, -9223372036854775808],
        "u8": [[0, 255]], "u64": [18446744073709551615], "b": [True, False],
        "s": ["a\u00e9\\\"", {"b64": "aGVsbG8="}]}}))
    write(t, "nonfinite", '{"instances": [NaN, Infinity, -Infinity, -NaN, Inf, -Inf, 1e400]}')
    write(t, "escapes", '{"inputs": {"s": ["\\u0041\\ud83d\\ude00\\n\\t\\/"]}}')
    write(t, "ragged", '{"instances": [[1, 2], [3]]}')
    write(t, "deep", "[" * 120 + "]" * 120)
    write(t, "truncated", '{"instances": [[0.5, 0.')


def tensor_proto_seeds(types_pb2, predict_pb2):
    t = "tensor_proto_fuzzer"

    def request(fill):
        r = predict_pb2.PredictRequest()
        r.model_spec.name = "digits"
        fill(r)
        return r.SerializeToString()

    def content(r):
        x = r.inputs["image"]
        x.dtype = types_pb2.DT_FLOAT
        for d in (1, 1, 8, 8):
            x.tensor_shape.dim.add().size = d
        x.tensor_content = np.full(64, 0.5, np.float32).tobytes()

    def typed(r):
        x = r.inputs["x"]
        x.dtype = types_pb2.DT_INT64
        for d in (2, 3):
            x.tensor_shape.dim.add().size = d
        x.int64_val.extend([1, -2, 3, 4, 5, 6])

    def broadcast(r):
        x = r.inputs["x"]
        x.dtype = types_pb2.DT_HALF
        for d in (4, 4):
            x.tensor_shape.dim.add().size = d
        x.half_val.append(0x3C00)

    def several(r):
        s = r.inputs["s"]
        s.dtype = types_pb2.DT_STRING
        s.tensor_shape.dim.add().size = 2
        s.string_val.extend([b"a", b"\xff\x00"])
        b = r.inputs["b"]
        b.dtype = types_pb2.DT_BOOL
        b.tensor_shape.dim.add().size = 3
        b.tensor_content = b"\x00\x01\x01"
        u = r.inputs["u"]
        u.dtype = types_pb2.DT_UINT8
        u.tensor_shape.dim.add().size = 2
        u.int_val.extend([0, 255])
        d = r.inputs["d"]
        d.dtype = types_pb2.DT_DOUBLE
        d.tensor_shape.unknown_rank = True
        d.double_val.append(1.0)

    for name, fill in (("content", content), ("typed", typed), ("broadcast", broadcast),
                       ("several", several)):
        write(t, name, request(fill))
    return request(content)


def image_seeds():
    src = os.path.join(ROOT, "tests", "serving", "testdata")
    for f in sorted(os.listdir(src)):
        if f.endswith((".jpg", ".png")):
            with open(os.path.join(src, f), "rb") as fh:
                write("image_decode_fuzzer", f, fh.read())


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecords(records):
    out = b""
    for r in records:
        length = struct.pack("<Q", len(r))
        out += length + struct.pack("<I", masked_crc(length)) + r + struct.pack("<I", masked_crc(r))
    return out


def warmup_seeds(prediction_log_pb2, predict_pb2, request_bytes):
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.ParseFromString(request_bytes)
    t = "warmup_fuzzer"
    write(t, "one", tfrecords([log.SerializeToString()]))
    write(t, "three", tfrecords([log.SerializeToString(), b"", b"not a log"]))
    write(t, "empty", b"")


def onnx_seeds():
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    t = "onnx_model_fuzzer"
    with open(os.path.join(ROOT, "models", "zoo", "digits", "1", "model.onnx"), "rb") as f:
        write(t, "digits", f.read())

    def model(nodes, inputs, outputs, inits=(), opset=13):
        g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        return m.SerializeToString()

    f32 = TensorProto.FLOAT
    x = helper.make_tensor_value_info("x", f32, ["N", 3])
    y = helper.make_tensor_value_info("y", f32, ["N", 2])
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "w")
    b = numpy_helper.from_array(np.zeros((2,), np.float32), "b")
    write(t, "gemm", model([helper.make_node("Gemm", ["x", "w", "b"], ["y"])], [x], [y], [w, b]))
    img = helper.make_tensor_value_info("img", f32, ["N", 2, 5, 5])
    out = helper.make_tensor_value_info("out", f32, None)
    k = numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "k")
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    write(t, "conv", model([
        helper.make_node("Conv", ["img", "k"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("Reshape", ["p", "shape"], ["q"]),
        helper.make_node("Softmax", ["q"], ["out"], axis=1),
    ], [img], [out], [k, shape]))
    a = helper.make_tensor_value_info("a", f32, [2, 3])
    c = helper.make_tensor_value_info("c", f32, [3, 2])
    write(t, "transpose", model([
        helper.make_node("Transpose", ["a"], ["t"], perm=[1, 0]),
        helper.make_node("Concat", ["t", "t"], ["u"], axis=0),
        helper.make_node("Slice", ["u", "st", "en"], ["c"]),
    ], [a], [c], [numpy_helper.from_array(np.array([0], np.int64), "st"),
                  numpy_helper.from_array(np.array([3], np.int64), "en")]))


def dns_seeds():
    def name(n):
        out = b""
        for label in n.strip(".").split("."):
            out += bytes([len(label)]) + label.encode()
        return out + b"\x00"

    def packet(qid, qname, qtype, answers, flags=0x8180, rcode=0):
        header = struct.pack(">HHHHHH", qid, flags | rcode, 1, len(answers), 0, 0)
        body = name(qname) + struct.pack(">HH", qtype, 1)
        for owner, rtype, rdata in answers:
            body += owner + struct.pack(">HHIH", rtype, 1, 30, len(rdata)) + rdata
        return header + body

    t = "dns_response_fuzzer"
    svc = "inferd.default.svc.cluster.local"
    ptr = b"\xc0\x0c"  # the question's name
    # Prefix: byte 0 picks A (even) or AAAA (odd); byte 1 the name (odd: svc, even: "a.b").
    write(t, "a", b"\x00\x01" + packet(0x1234, svc, 1, [
        (ptr, 1, bytes([10, 0, 0, 1])), (ptr, 1, bytes([10, 0, 0, 2]))]))
    write(t, "aaaa", b"\x01\x01" + packet(0x4321, svc, 28, [
        (ptr, 28, bytes(15) + b"\x01")]))
    cname_target = name("x.example")
    write(t, "cname", b"\x00\x00" + packet(7, "a.b", 1, [
        (ptr, 5, cname_target), (cname_target, 1, bytes([192, 168, 1, 9]))]))
    write(t, "nxdomain", b"\x00\x01" + packet(9, svc, 1, [], rcode=3))
    write(t, "truncated", b"\x00\x01" + packet(9, svc, 1, [], flags=0x8380))


def slice_seeds():
    t = "endpoint_slice_fuzzer"
    slice_ = {
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": "inferd-abc", "resourceVersion": "42",
                     "labels": {"kubernetes.io/service-name": "inferd"}},
        "addressType": "IPv4",
        "ports": [{"name": "grpc", "port": 8500, "protocol": "TCP"},
                  {"name": "http", "port": 8501, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.1.0.5"], "conditions": {"ready": True, "serving": True,
                                                       "terminating": False}},
            {"addresses": ["10.1.0.6"], "conditions": {"ready": False, "serving": True,
                                                       "terminating": True}},
            {"addresses": ["10.1.0.7"], "conditions": {"ready": False}},
        ],
    }
    write(t, "slice", json.dumps(slice_))
    write(t, "list", json.dumps({"kind": "EndpointSliceList", "metadata": {"resourceVersion": "43"},
                                 "items": [slice_]}))
    write(t, "added", json.dumps({"type": "ADDED", "object": slice_}))
    write(t, "deleted", json.dumps({"type": "DELETED", "object": slice_}))
    write(t, "bookmark", json.dumps({"type": "BOOKMARK", "object": {
        "kind": "EndpointSlice", "metadata": {"resourceVersion": "44"}}}))
    write(t, "error", json.dumps({"type": "ERROR", "object": {
        "kind": "Status", "code": 410, "message": "too old resource version"}}))
    v6 = dict(slice_, addressType="IPv6",
              endpoints=[{"addresses": ["fd00::5"], "conditions": {"ready": True}}])
    write(t, "ipv6", json.dumps(v6))


def rest_seeds():
    t = "rest_handler_fuzzer"
    image = [[0.5] * 8 for _ in range(8)]
    row = json.dumps({"instances": [image]})

    def req(name, method, target, body="", content_type="application/json"):
        write(t, name, f"{method}\n{target}\n{content_type}\n{body}")

    req("predict", "POST", "/v1/models/digits:predict", row)
    req("predict-version", "POST", "/v1/models/digits/versions/1:predict", row)
    req("predict-label", "POST", "/v1/models/digits/labels/stable:predict", row)
    req("predict-columnar", "POST", "/v1/models/digits:predict",
        json.dumps({"signature_name": "serving_default", "inputs": {"image": [image]}}))
    req("predict-text-plain", "POST", "/v1/models/digits:predict", row, "text/plain")
    req("predict-unknown-model", "POST", "/v1/models/nope:predict", row)
    req("classify", "POST", "/v1/models/digits:classify", row)
    req("status", "GET", "/v1/models/digits")
    req("status-version", "GET", "/v1/models/digits/versions/1")
    req("metadata", "GET", "/v1/models/digits/metadata")
    req("metadata-label", "GET", "/v1/models/digits/labels/stable/metadata")
    req("healthz", "GET", "/healthz")
    req("readyz", "GET", "/readyz")
    req("metrics", "GET", "/monitoring/prometheus/metrics")
    req("options", "OPTIONS", "/v1/models/digits:predict")
    req("delete", "DELETE", "/v1/models/digits")
    req("query", "GET", "/v1/models/digits?x=1%20")


def main():
    clear_seeds()
    work = tempfile.mkdtemp(prefix="inferd-seeds-")
    try:
        types_pb2, predict_pb2, prediction_log_pb2 = proto_modules(work)
        json_seeds()
        request_bytes = tensor_proto_seeds(types_pb2, predict_pb2)
        image_seeds()
        warmup_seeds(prediction_log_pb2, predict_pb2, request_bytes)
        onnx_seeds()
        dns_seeds()
        slice_seeds()
        rest_seeds()
    finally:
        shutil.rmtree(work)
    for target in sorted(os.listdir(CORPUS)):
        print(f"{target}: {len(os.listdir(os.path.join(CORPUS, target)))} files")


if __name__ == "__main__":
    main()
