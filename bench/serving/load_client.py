#!/usr/bin/python3
"""gRPC side helpers of bench/serving/run (Debian's /usr/bin/python3, python3-grpcio, numpy).

Needs the Python stubs of proto/tensorflow and proto/tensorflow_serving on PYTHONPATH (`run`
generates them with protoc into its work directory).

  load_client.py request --model digits --input image --shape 1,1,8,8 --out BODY [--rest-out J]
      Writes one PredictRequest (tensor_content, constant 0.5) framed as a gRPC message
      (0x00, 4-byte big-endian length, message) for h2load; prints its size. --rest-out also
      writes the same request as TF Serving REST JSON ({"instances": [...]}) for wrk.
  load_client.py check --target HOST:PORT --body BODY --output probabilities --count 10
      Sends the framed request once with a real gRPC client and checks that the answer is a
      prediction (the output holds `count` finite floats summing to ~1 when --softmax).
      Prints one JSON line with the serialized response size h2load must see per request.
  load_client.py rest-check --url URL --body J --count 10
      POSTs the JSON request once and checks the answer is {"predictions": [[count floats]]}
      summing to ~1; prints one JSON line with the body size.
  load_client.py load --target HOST:PORT --model resnet50 --input input --shape 1,3,224,224
                      --output output --clients 16 --warmup 5 --seconds 20
      Closed-loop load: `clients` threads each send one request and wait for its answer, over
      one channel, for warmup + seconds. Requests are serialized once, so the client's cost is
      a memcpy and gRPC's own work. Prints one JSON line: images/s over the measured window
      (answers completed in it / its length), p50/p99 latency of those answers, errors.
"""

import argparse
import os
import json
import sys
import threading
import time
import urllib.request

import grpc
import numpy as np

from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from benchlib import percentile, frame  # noqa: E402


PREDICT = "/tensorflow.serving.PredictionService/Predict"


def make_request(model, input_name, shape, random):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    t = req.inputs[input_name]
    t.dtype = types_pb2.DT_FLOAT
    for d in shape:
        t.tensor_shape.dim.add().size = d
    if random:
        data = np.random.default_rng(1).uniform(-1, 1, size=shape).astype(np.float32)
    else:
        data = np.full(shape, 0.5, np.float32)
    t.tensor_content = data.tobytes()
    return req.SerializeToString()


def unframe(body):
    if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
        raise ValueError("not one uncompressed gRPC message")
    return body[5:]


def output_values(resp, name):
    if name not in resp.outputs:
        raise ValueError("response has no output %r (has %s)" % (name, sorted(resp.outputs)))
    t = resp.outputs[name]
    if t.dtype != types_pb2.DT_FLOAT:
        raise ValueError("output %r has dtype %d, want DT_FLOAT" % (name, t.dtype))
    if t.tensor_content:
        return np.frombuffer(t.tensor_content, np.float32)
    return np.array(t.float_val, np.float32)


def stub(channel):
    return channel.unary_unary(PREDICT, request_serializer=None,
                               response_deserializer=predict_pb2.PredictResponse.FromString)


def cmd_request(a):
    message = make_request(a.model, a.input, a.shape, a.random)
    with open(a.out, "wb") as f:
        f.write(frame(message))
    if a.rest_out:
        values = np.full(a.shape, 0.5, np.float32)
        with open(a.rest_out, "w") as f:
            json.dump({"instances": values.tolist()}, f, separators=(",", ":"))
    print(json.dumps({"request_bytes": len(message), "framed_bytes": len(message) + 5}))


def cmd_check(a):
    with open(a.body, "rb") as f:
        message = unframe(f.read())
    with grpc.insecure_channel(a.target) as channel:
        resp = stub(channel)(message, timeout=a.timeout)
    values = output_values(resp, a.output)
    if values.size != a.count or not np.all(np.isfinite(values)):
        raise ValueError("output %r has %d values (want %d finite)" % (a.output, values.size, a.count))
    if a.softmax and (abs(float(values.sum()) - 1) > 1e-3 or values.min() < 0):
        raise ValueError("output %r is not a probability vector: %s" % (a.output, values))
    size = len(resp.SerializeToString())
    print(json.dumps({"target": a.target, "model_spec": resp.model_spec.name,
                      "version": resp.model_spec.version.value, "argmax": int(values.argmax()),
                      "response_bytes": size, "framed_bytes": size + 5}))


def cmd_rest_check(a):
    with open(a.body, "rb") as f:
        body = f.read()
    req = urllib.request.Request(a.url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=a.timeout) as r:
        answer = r.read()
    preds = json.loads(answer).get("predictions")
    if not (isinstance(preds, list) and len(preds) == 1 and len(preds[0]) == a.count):
        raise ValueError("answer is not {\"predictions\": [[%d values]]}: %.200s" % (a.count, answer))
    values = np.array(preds[0], np.float64)
    if abs(values.sum() - 1) > 1e-3 or values.min() < 0:
        raise ValueError("predictions are not a probability vector: %s" % values)
    print(json.dumps({"url": a.url, "argmax": int(values.argmax()), "body_bytes": len(answer)}))


def cmd_load(a):
    message = make_request(a.model, a.input, a.shape, True)
    images = a.shape[0]
    channel = grpc.insecure_channel(a.target, options=[
        ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
    call = stub(channel)
    # Validate one answer before timing.
    first = call(message, timeout=a.timeout)
    values = output_values(first, a.output)
    if values.size == 0 or values.size % images or not np.all(np.isfinite(values)):
        raise ValueError("bad first answer: output %r has %d values" % (a.output, values.size))
    per_image = values.size // images

    start = time.perf_counter()
    window_start = start + a.warmup
    end = window_start + a.seconds
    lock = threading.Lock()
    done = []    # (start, finish) of answers, all threads
    errors = []

    def worker():
        mine = []
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                break
            try:
                resp = call(message, timeout=a.timeout)
                if resp.outputs[a.output].ByteSize() == 0:
                    raise ValueError("empty output")
            except Exception as e:  # noqa: BLE001 - report, keep loading
                with lock:
                    errors.append(repr(e)[:200])
                continue
            mine.append((t0, time.perf_counter()))
        with lock:
            done.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    in_window = [(s, f) for s, f in done if window_start <= f < end]
    lat_ms = sorted((f - s) * 1000 for s, f in in_window)
    print(json.dumps({
        "target": a.target, "model": a.model, "clients": a.clients, "images_per_request": images,
        "warmup_s": a.warmup, "seconds": a.seconds, "requests": len(in_window),
        "images_per_s": round(len(in_window) * images / a.seconds, 3),
        "p50_ms": round(percentile(lat_ms, 0.5), 2), "p99_ms": round(percentile(lat_ms, 0.99), 2),
        "mean_ms": round(sum(lat_ms) / len(lat_ms), 2) if lat_ms else None,
        "outputs_per_image": per_image, "errors": len(errors), "first_errors": errors[:3]}))
    return 1 if errors else 0


def shape_arg(s):
    dims = [int(x) for x in s.split(",")]
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError("positive comma-separated dims expected")
    return dims


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("request")
    r.add_argument("--model", required=True)
    r.add_argument("--input", required=True)
    r.add_argument("--shape", type=shape_arg, required=True)
    r.add_argument("--random", action="store_true", help="uniform [-1,1) instead of 0.5")
    r.add_argument("--out", required=True)
    r.add_argument("--rest-out", help="also write the request as REST JSON here")
    c = sub.add_parser("check")
    c.add_argument("--target", required=True)
    c.add_argument("--body", required=True)
    c.add_argument("--output", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--softmax", action="store_true")
    c.add_argument("--timeout", type=float, default=10)
    h = sub.add_parser("rest-check")
    h.add_argument("--url", required=True)
    h.add_argument("--body", required=True)
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--timeout", type=float, default=10)
    g = sub.add_parser("load")
    g.add_argument("--target", required=True)
    g.add_argument("--model", required=True)
    g.add_argument("--input", required=True)
    g.add_argument("--shape", type=shape_arg, required=True)
    g.add_argument("--output", required=True)
    g.add_argument("--clients", type=int, default=16)
    g.add_argument("--warmup", type=float, default=5)
    g.add_argument("--seconds", type=float, default=20)
    g.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    try:
        return {"request": cmd_request, "check": cmd_check, "rest-check": cmd_rest_check,
                "load": cmd_load}[a.cmd](a) or 0
    except (ValueError, grpc.RpcError, OSError) as e:
        print("load_client.py %s: error: %s" % (a.cmd, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
