#!/usr/bin/python3
"""Export Inception-v3 as a servable model: BASE/inception/<version>/{model.onnx, inferd.json, labels.txt}.

The network is torchvision's inception_v3 with seeded random weights (no pretrained weights can
be downloaded on the build machines; see export_torchvision.py): the serving workflow, the
preprocessing and the top-5 answers are real, the classes it picks are not meaningful. With
pretrained weights at hand, pass --weights FILE (a torchvision state_dict) instead.

model.onnx is export_torchvision.py's inception_v3 export (reused from --zoo when it is already
there) with its final layer scaled down so that softmax scores are spread (a random network's
logits are in the hundreds); a later version N also shifts the final layer's bias by a seeded
offset per class, a stand-in for a retrained model whose answers differ, for rolling updates. The input is renamed "images", as in TF Serving's Inception example. inferd.json declares torchvision's Inception preprocessing: keep the central 87.5 %
(299 of ~342), resize to 299x299, scale to [0,1], normalise with ImageNet's mean and std, NCHW;
and top-5 softmax classes with ImageNet's labels (torchvision's category names).

    models/zoo/export_inception.py --base DIR [--version 1] [--zoo build/zoo] [--weights FILE]
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_torchvision  # noqa: E402

INPUT_NAME = "images"
# Random-weight logits have a standard deviation of ~600-900 on photos; this brings it to ~2-3.
FINAL_LAYER_SCALE = 1.0 / 300.0

PIPELINE = {
    "inputs": {
        "images": {
            "image": {
                "height": 299,
                "width": 299,
                "channels": 3,
                "central_crop": 0.875,
                "scale": 1.0 / 255.0,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
                "layout": "NCHW",
                "max_pixels": 50000000,
            }
        }
    },
    "outputs": {"output": {"top_k": 5, "softmax": True, "labels": "labels.txt"}},
}


def imagenet_labels():
    import torchvision
    return list(torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.meta["categories"])


def export_pretrained(weights, path):
    import torch
    import torchvision
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    model.aux_logits = False
    model.AuxLogits = None
    model.eval()
    x = torch.zeros(1, 3, 299, 299)
    with torch.no_grad():
        torch.onnx.export(model, x, path, opset_version=export_torchvision.OPSET,
                          do_constant_folding=True, input_names=["input"],
                          output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def adjust_final_layer(path, version):
    """Scales the last Gemm of a random-weight network so softmax scores are spread out (its
    logits are in the hundreds, which makes every top-1 score 1.0); version N > 1 also adds a
    seeded per-class offset to the bias, so its answers differ from version 1's."""
    model = onnx.load(path)
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    if not gemms or len(gemms[-1].input) < 3:
        raise RuntimeError("%s: no final Gemm with a bias" % path)
    weight_name, bias_name = gemms[-1].input[1], gemms[-1].input[2]
    found = 0
    for init in model.graph.initializer:
        if init.name not in (weight_name, bias_name):
            continue
        value = numpy_helper.to_array(init) * np.float32(FINAL_LAYER_SCALE)
        if init.name == bias_name and version > 1:
            rng = np.random.default_rng(1000 + version)
            value = value + rng.normal(0.0, 1.0, value.shape).astype(value.dtype)
        init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), init.name))
        found += 1
    if found != 2:
        raise RuntimeError("%s: the final Gemm's weight and bias are not initializers" % path)
    rename_input(model, "input", INPUT_NAME)
    onnx.save(model, path)


def rename_input(model, old, new):
    """Renames graph input `old` to `new` (TF Serving's Inception signature calls it "images")."""
    for value in model.graph.input:
        if value.name == old:
            value.name = new
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def main(argv=None):
    p = argparse.ArgumentParser(description="Export Inception-v3 into BASE/inception/VERSION/.")
    p.add_argument("--base", required=True, help="model base directory; writes BASE/inception/VERSION")
    p.add_argument("--version", type=int, default=1, help="version number (default 1)")
    p.add_argument("--zoo", default=export_torchvision.DEFAULT_OUT,
                   help="export_torchvision.py output directory to reuse (default %(default)s)")
    p.add_argument("--weights", help="torchvision inception_v3 state_dict to export instead")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads")
    args = p.parse_args(argv)
    if args.version < 1:
        p.error("--version must be >= 1")

    out = os.path.join(os.path.abspath(args.base), "inception", str(args.version))
    # Written into a sibling temp dir and renamed, so a polling server never sees half a version.
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    onnx_path = os.path.join(tmp, "model.onnx")
    if args.weights:
        export_pretrained(args.weights, onnx_path)
    else:
        argv = ["--out", args.zoo, "--models", "inception_v3"]
        if args.threads:
            argv += ["--threads", str(args.threads)]
        export_torchvision.main(argv)
        shutil.copyfile(os.path.join(args.zoo, "inception_v3", "model.onnx"), onnx_path)
    if args.weights:
        model = onnx.load(onnx_path)
        rename_input(model, "input", INPUT_NAME)
        onnx.save(model, onnx_path)
    else:
        adjust_final_layer(onnx_path, args.version)
    with open(os.path.join(tmp, "inferd.json"), "w") as f:
        json.dump(PIPELINE, f, indent=2)
        f.write("\n")
    with open(os.path.join(tmp, "labels.txt"), "w") as f:
        f.write("\n".join(imagenet_labels()) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    os.rename(tmp, out)
    print("wrote %s (model.onnx %d bytes, inferd.json, labels.txt)"
          % (out, os.path.getsize(os.path.join(out, "model.onnx"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
