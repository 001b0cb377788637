#!/usr/bin/python3
"""Compute argmax accuracy of a predicted output tensor against integer labels.

Both files are serialized onnx.TensorProto (ONNX test-data layout), e.g. the
server's output for models/zoo/digits/heldout/input_0.pb checked against
models/zoo/digits/heldout/labels.pb:

    check_digits_accuracy.py --outputs OUT/output_0.pb \\
        --labels models/zoo/digits/heldout/labels.pb --min 0.95

Prints "accuracy: 0.xxx (correct/total)". Exit status: 0 if accuracy >= --min,
1 if below, 2 if a file is missing, malformed or of the wrong shape/type.
Must run with Debian's /usr/bin/python3 (python3-onnx).
"""

import argparse
import sys
import warnings

import numpy as np
from onnx import TensorProto, numpy_helper


class InputError(Exception):
    pass


def load_tensor(path, what):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError("cannot read %s file %s: %s" % (what, path, e.strerror or e))
    if not data:
        raise InputError("%s file %s is empty" % (what, path))
    t = TensorProto()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # protobuf warns (not raises) on some junk
            t.ParseFromString(data)
    except Exception:
        raise InputError("%s file %s is not a serialized onnx.TensorProto (protobuf parse failed)"
                         % (what, path))
    if t.data_type == TensorProto.UNDEFINED or not t.dims:
        raise InputError("%s file %s is not a valid TensorProto (no data type or no dims)"
                         % (what, path))
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:
        raise InputError("%s file %s: cannot decode tensor data: %s" % (what, path, e))
    if arr.size != int(np.prod(list(t.dims))):
        raise InputError("%s file %s: element count %d does not match dims %s"
                         % (what, path, arr.size, list(t.dims)))
    return arr


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Argmax accuracy of a predicted output TensorProto [N,C] against "
                    "an integer label TensorProto [N].")
    p.add_argument("--outputs", required=True, help="predicted output TensorProto, shape [N,C]")
    p.add_argument("--labels", required=True, help="label TensorProto (integer), shape [N]")
    p.add_argument("--min", type=float, default=0.95,
                   help="minimum accuracy; exit 1 below it (default: %(default)s)")
    p.add_argument("--show", type=int, default=0,
                   help="also print the first SHOW predictions with their labels")
    args = p.parse_args(argv)

    try:
        out = load_tensor(args.outputs, "outputs")
        labels = load_tensor(args.labels, "labels")
        if out.ndim != 2 or out.shape[1] < 1:
            raise InputError("outputs must have shape [N,C], got %s" % (list(out.shape),))
        if not np.issubdtype(out.dtype, np.floating) and not np.issubdtype(out.dtype, np.integer):
            raise InputError("outputs must be numeric, got %s" % out.dtype)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise InputError("labels must be an integer tensor of shape [N], got %s %s"
                             % (labels.dtype, list(labels.shape)))
        if out.shape[0] != labels.shape[0]:
            raise InputError("outputs have %d rows but labels have %d entries"
                             % (out.shape[0], labels.shape[0]))
        if out.shape[0] == 0:
            raise InputError("no samples (N = 0)")
        if labels.min() < 0 or labels.max() >= out.shape[1]:
            raise InputError("labels out of range [0,%d)" % out.shape[1])
        if np.issubdtype(out.dtype, np.floating) and not np.isfinite(out).all():
            raise InputError("outputs contain NaN or Inf")
    except InputError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2

    predicted = out.argmax(axis=1)
    for i in range(min(args.show, out.shape[0])):
        print("sample %3d: predicted %d (score %.3f), label %d %s"
              % (i, predicted[i], out[i, predicted[i]], labels[i],
                 "ok" if predicted[i] == labels[i] else "WRONG"))
    correct = int((predicted == labels).sum())
    total = int(labels.shape[0])
    acc = correct / total
    print("accuracy: %.3f (%d/%d)" % (acc, correct, total))
    if acc < args.min:
        print("FAIL: accuracy %.4f below --min %.4f" % (acc, args.min), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
