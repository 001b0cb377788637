#!/usr/bin/python3
"""Train a small CNN on scikit-learn's 8x8 digits and export it to ONNX.

Real data for a small, trained model that the server can load and whose
accuracy tests can check. Writes (versioned model layout + held-out split):

    OUT/1/model.onnx            opset 13; input "image" float32 [batch,1,8,8] in [0,1],
                                output "probabilities" float32 [batch,10] (softmax)
    OUT/heldout/input_0.pb      float32 TensorProto [N,1,8,8]  (held-out images)
    OUT/heldout/labels.pb       int64 TensorProto [N]          (true digits)
    OUT/heldout/output_0.pb     float32 TensorProto [N,10]     (PyTorch reference output)

The split is fixed (stratified, test_size=0.25, random_state=0) and training is
seeded and deterministic. Runs in seconds on a CPU. Must run with Debian's
/usr/bin/python3 (python3-torch, python3-sklearn, python3-onnx).
"""

import argparse
import os
import sys
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "digits")
OPSET = 13


class DigitsNet(torch.nn.Module):
    """Conv(1->16) ReLU, Conv(16->32) ReLU, MaxPool 2, Flatten, Gemm 512->64 ReLU, Gemm 64->10."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Flatten(),
        )
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(32 * 4 * 4, 64), torch.nn.ReLU(),
            torch.nn.Linear(64, 10),
        )

    def forward(self, x):  # logits
        return self.classifier(self.features(x))


class WithSoftmax(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


def load_split():
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def accuracy(model, x, y):
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean()), int((pred == y).sum())


def save_tensor(array, path):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.ascontiguousarray(array)).SerializeToString())


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Train a small CNN on the sklearn 8x8 digits, export ONNX opset %d to "
                    "OUT/1/model.onnx and the held-out split to OUT/heldout/." % OPSET)
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=40, help="training epochs (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--min-accuracy", type=float, default=0.97,
                   help="fail (exit 1) if held-out accuracy is below this (default: %(default)s)")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # bit-reproducible and cheap: the model is tiny
    try:
        torch.use_deterministic_algorithms(True)
    except Exception as e:  # pragma: no cover - depends on the torch build
        print("note: deterministic algorithms unavailable: %s" % e)

    x_train, x_test, y_train, y_test = load_split()
    print("digits: %d train, %d held-out" % (len(y_train), len(y_test)))

    net = DigitsNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(args.seed)
    batch = 32
    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(yt), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        if (epoch + 1) % 10 == 0 or epoch == args.epochs - 1:
            net.eval()
            print("epoch %3d  loss %.4f  train acc %.4f  test acc %.4f"
                  % (epoch + 1, total / len(yt), accuracy(net, x_train, y_train)[0],
                     accuracy(net, x_test, y_test)[0]))
    net.eval()
    train_acc, train_ok = accuracy(net, x_train, y_train)
    test_acc, test_ok = accuracy(net, x_test, y_test)
    print("trained in %.1fs" % (time.time() - t0))
    print("train accuracy: %.4f (%d/%d)" % (train_acc, train_ok, len(y_train)))
    print("test accuracy: %.4f (%d/%d)" % (test_acc, test_ok, len(y_test)))

    model = WithSoftmax(net).eval()
    out = os.path.abspath(args.out)
    model_dir = os.path.join(out, "1")
    heldout = os.path.join(out, "heldout")
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(heldout, exist_ok=True)

    onnx_path = os.path.join(model_dir, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model, torch.from_numpy(x_test[:1]), onnx_path,
            export_params=True, opset_version=OPSET, do_constant_folding=True,
            input_names=["image"], output_names=["probabilities"],
            dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
        )
    onnx.checker.check_model(onnx_path)

    with torch.no_grad():
        probs = model(torch.from_numpy(x_test)).numpy()
    save_tensor(x_test, os.path.join(heldout, "input_0.pb"))
    save_tensor(y_test, os.path.join(heldout, "labels.pb"))
    save_tensor(probs, os.path.join(heldout, "output_0.pb"))
    ref_acc = float((probs.argmax(axis=1) == y_test).mean())
    print("reference output accuracy: %.4f" % ref_acc)

    for f in (onnx_path, os.path.join(heldout, "input_0.pb"),
              os.path.join(heldout, "labels.pb"), os.path.join(heldout, "output_0.pb")):
        print("wrote %s (%d bytes)" % (f, os.path.getsize(f)))

    if test_acc < args.min_accuracy:
        print("error: held-out accuracy %.4f below --min-accuracy %.4f"
              % (test_acc, args.min_accuracy), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
