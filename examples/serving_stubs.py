"""Shared by the example clients: TF Serving's Python stubs, generated from proto/ with Debian's
protoc the first time (into build/python), and reading ONNX TensorProto files."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_stubs():
    out = os.path.join(ROOT, "build", "python")
    marker = os.path.join(out, "tensorflow_serving", "apis", "prediction_service_pb2_grpc.py")
    if not os.path.exists(marker):
        os.makedirs(out, exist_ok=True)
        proto_dir = os.path.join(ROOT, "proto")
        protos = [os.path.relpath(os.path.join(r, f), proto_dir)
                  for r, _, fs in os.walk(proto_dir) for f in fs
                  if f.endswith(".proto") and "grpc/health" not in r]
        subprocess.run(["/usr/bin/protoc", "-I", proto_dir, "--python_out", out, "--grpc_out", out,
                        "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + sorted(protos),
                       check=True)
    sys.path.insert(0, out)


def read_onnx_tensor(path):
    from onnx import TensorProto, numpy_helper
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)
