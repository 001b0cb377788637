#!/usr/bin/python3
"""A TF Serving gRPC client for the bundled digits model, the way TF Serving users write one.

Sends held-out 8x8 digit images to tensorflow.serving.PredictionService/Predict and prints the
predicted digit next to the true label. Stubs are generated from proto/ with Debian's protoc the
first time (into build/python).

  examples/digits_client.py --server 127.0.0.1:8500 [--count 8] [--check_against OUTPUT.pb]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving_stubs import ROOT, load_stubs, read_onnx_tensor  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1:8500")
    parser.add_argument("--model", default="digits")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--data", default=os.path.join(ROOT, "models/zoo/digits/heldout"))
    parser.add_argument("--check_against", help="inferd-run output_0.pb for the same images: "
                        "fail unless the served probabilities equal it")
    args = parser.parse_args()
    load_stubs()
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    images = read_onnx_tensor(os.path.join(args.data, "input_0.pb")).astype(np.float32)
    labels = read_onnx_tensor(os.path.join(args.data, "labels.pb"))
    batch = images[:args.count]

    request = predict_pb2.PredictRequest()
    request.model_spec.name = args.model
    request.model_spec.signature_name = "serving_default"
    tensor = request.inputs["image"]
    tensor.dtype = 1  # DT_FLOAT
    for d in batch.shape:
        tensor.tensor_shape.dim.add().size = d
    tensor.float_val.extend(batch.ravel().tolist())

    with grpc.insecure_channel(args.server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=10.0)
    out = response.outputs["probabilities"]
    probs = np.array(out.float_val, dtype=np.float32).reshape([d.size for d in out.tensor_shape.dim])
    print("model %s version %d answered %d images:" % (response.model_spec.name,
                                                       response.model_spec.version.value, len(probs)))
    for i, p in enumerate(probs):
        print("  image %2d: predicted %d (p=%.3f), label %d" % (i, p.argmax(), p.max(), labels[i]))
    if args.check_against:
        ref = read_onnx_tensor(args.check_against)[:args.count]
        diff = float(np.abs(ref - probs).max())
        print("max |served - inferd-run| = %.3g" % diff)
        if diff > 1e-6:
            sys.exit("served probabilities differ from inferd-run's")


if __name__ == "__main__":
    main()
