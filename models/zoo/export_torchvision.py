#!/usr/bin/python3
"""Export torchvision CNNs (random weights) to ONNX with reference input/output data.

For each requested model this builds the torchvision network with seeded random
weights, re-estimates the BatchNorm running statistics on a few random batches
(so that outputs are O(1) instead of degenerate), exports it to ONNX (opset 13,
input "input", output "output", dynamic batch axis) and writes reference data in
the ONNX backend test-data layout:

    OUT/<name>/model.onnx
    OUT/<name>/test_data_set_b1/{input_0.pb,output_0.pb}   batch 1
    OUT/<name>/test_data_set_b8/{input_0.pb,output_0.pb}   batch 8 (row 0 == b1 input)

The exports are large (14-102 MB) and are never committed: the default output
directory is <repo>/build/zoo, which git ignores.

Must run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision,
python3-onnx).
"""

import argparse
import os
import sys
import time

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "build", "zoo")

OPSET = 13
BN_BATCHES = 4
BN_BATCH_SIZE = 8
DATA_BATCHES = (1, 8)


def _resnet50():
    return torchvision.models.resnet50(weights=None)


def _inception_v3():
    return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)


def _mobilenet_v2():
    return torchvision.models.mobilenet_v2(weights=None)


# name -> (constructor, input height/width)
MODELS = {
    "resnet50": (_resnet50, 224),
    "inception_v3": (_inception_v3, 299),
    "mobilenet_v2": (_mobilenet_v2, 224),
}


def paths_for(out_dir, name):
    d = os.path.join(out_dir, name)
    files = [os.path.join(d, "model.onnx")]
    for b in DATA_BATCHES:
        ds = os.path.join(d, "test_data_set_b%d" % b)
        files += [os.path.join(ds, "input_0.pb"), os.path.join(ds, "output_0.pb")]
    return d, files


def recalibrate_batchnorm(model, size, gen):
    """Re-estimate BN running stats as a cumulative average over random batches."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = None  # cumulative moving average
        m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for _ in range(BN_BATCHES):
            x = torch.randn(BN_BATCH_SIZE, 3, size, size, generator=gen)
            model(x)
    model.eval()
    return len(bns)


def save_tensor(array, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tensor = numpy_helper.from_array(np.ascontiguousarray(array))
    with open(path, "wb") as f:
        f.write(tensor.SerializeToString())


def export_one(name, out_dir, seed):
    ctor, size = MODELS[name]
    model_dir, _ = paths_for(out_dir, name)
    os.makedirs(model_dir, exist_ok=True)
    t0 = time.time()

    torch.manual_seed(seed)
    model = ctor()
    gen = torch.Generator().manual_seed(seed + 1)
    nbn = recalibrate_batchnorm(model, size, gen)
    t_build = time.time() - t0

    # Reference inputs: batch 8 from a seeded normal; batch 1 is its first row.
    rng = np.random.default_rng(seed + 2)
    x8 = rng.standard_normal((8, 3, size, size), dtype=np.float32)
    x1 = x8[:1].copy()

    t1 = time.time()
    with torch.no_grad():
        y1 = model(torch.from_numpy(x1)).numpy()
        y8 = model(torch.from_numpy(x8)).numpy()
    t_ref = time.time() - t1
    if not (np.isfinite(y1).all() and np.isfinite(y8).all()):
        raise RuntimeError("%s: non-finite reference outputs" % name)
    row0_diff = float(np.abs(y8[0] - y1[0]).max())
    print("%s: %d BatchNorm layers recalibrated; max|output| b1=%.4g b8=%.4g; "
          "|b8[0]-b1[0]|max=%.3g" % (name, nbn, np.abs(y1).max(), np.abs(y8).max(), row0_diff))

    onnx_path = os.path.join(model_dir, "model.onnx")
    t2 = time.time()
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.from_numpy(x1),
            onnx_path,
            export_params=True,
            opset_version=OPSET,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    onnx.checker.check_model(onnx_path)
    t_export = time.time() - t2

    for b, x, y in ((1, x1, y1), (8, x8, y8)):
        ds = os.path.join(model_dir, "test_data_set_b%d" % b)
        save_tensor(x, os.path.join(ds, "input_0.pb"))
        save_tensor(y, os.path.join(ds, "output_0.pb"))

    _, files = paths_for(out_dir, name)
    for f in files:
        print("  wrote %s (%d bytes)" % (f, os.path.getsize(f)))
    print("  %s timings: build+BN %.1fs, reference %.1fs, export %.1fs, total %.1fs"
          % (name, t_build, t_ref, t_export, time.time() - t0))


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Export torchvision models (random weights, recalibrated BatchNorm) "
                    "to ONNX opset %d with batch-1 and batch-8 reference data." % OPSET)
    p.add_argument("--out", default=DEFAULT_OUT,
                   help="output directory (default: %(default)s)")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated list from: %s (default: all)" % ", ".join(MODELS))
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--force", action="store_true",
                   help="re-export even if model.onnx and both data sets exist")
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (default: torch's choice)")
    args = p.parse_args(argv)

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        p.error("unknown model(s): %s (choose from %s)" % (", ".join(unknown) or "<none>",
                                                          ", ".join(MODELS)))

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out_dir = os.path.abspath(args.out)
    for name in names:
        _, files = paths_for(out_dir, name)
        if not args.force and all(os.path.isfile(f) for f in files):
            print("%s: up to date in %s (use --force to re-export)" % (name, os.path.dirname(files[0])))
            continue
        export_one(name, out_dir, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
