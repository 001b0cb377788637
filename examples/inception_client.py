#!/usr/bin/python3
"""Sends JPEG/PNG images to an Inception model over gRPC and prints the top 5 classes, like TF
Serving's inception_client.py.

The image bytes go as they are, one DT_STRING element per image (tensorflow.make_tensor_proto of
the file's contents in TF Serving's example); the server decodes and preprocesses them as the
version's inferd.json declares and answers with "classes" (class indices), "scores" and
"labels". Works against inferd-server directly or through inferd-gateway.

  examples/inception_client.py --server 127.0.0.1:8500 --image photo.jpg [--image other.png]
      [--model inception] [--version N] [--json]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving_stubs import load_stubs  # noqa: E402

SAMPLE = "/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1:8500", help="host:port of the gRPC API")
    parser.add_argument("--model", default="inception")
    parser.add_argument("--version", type=int, help="a specific version (default: the latest)")
    parser.add_argument("--image", action="append",
                        help="JPEG or PNG file; repeat for a batch (default: %s)" % SAMPLE)
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    parser.add_argument("--json", action="store_true",
                        help="print the answer as one JSON object instead of a table")
    args = parser.parse_args()
    load_stubs()
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    images = args.image or [SAMPLE]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = args.model
    request.model_spec.signature_name = "serving_default"
    if args.version is not None:
        request.model_spec.version.value = args.version
    tensor = request.inputs["images"]
    tensor.dtype = 7  # DT_STRING
    tensor.tensor_shape.dim.add().size = len(images)
    for path in images:
        with open(path, "rb") as f:
            tensor.string_val.append(f.read())

    with grpc.insecure_channel(args.server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout=args.timeout)
        except grpc.RpcError as e:
            sys.exit("Predict failed: %s: %s" % (e.code().name, e.details()))
    k = response.outputs["classes"].tensor_shape.dim[1].size
    classes = list(response.outputs["classes"].int64_val)
    scores = list(response.outputs["scores"].float_val)
    labels = [s.decode() for s in response.outputs["labels"].string_val]
    answer = {"model": response.model_spec.name, "version": response.model_spec.version.value,
              "images": []}
    for i, path in enumerate(images):
        rows = range(i * k, (i + 1) * k)
        answer["images"].append({"image": path, "classes": [classes[j] for j in rows],
                                 "scores": [scores[j] for j in rows],
                                 "labels": [labels[j] for j in rows] if labels else []})
    if args.json:
        print(json.dumps(answer))
        return
    print("model %s version %d:" % (answer["model"], answer["version"]))
    for image in answer["images"]:
        print("  %s" % image["image"])
        for j in range(k):
            label = image["labels"][j] if image["labels"] else ""
            print("    %5d  %.4f  %s" % (image["classes"][j], image["scores"][j], label))


if __name__ == "__main__":
    main()
