#!/usr/bin/python3
"""Runs the torchvision exports through inferd-run and compares them with PyTorch.

For each model under --zoo (made by models/zoo/export_torchvision.py): batch 1 and batch 8
outputs must match PyTorch's within max|diff| <= --rel * max|reference|, and each row of the
batch-8 output must match the batch-1 output of the same image (row 0 is that image) within the
same tolerance. Prints one line per check and 'N passed, M failed'.

With --device cuda[:N] the models run there (inferd-run --device); with --precision fp16 the
tolerance becomes 2e-2 x max|reference| and every row must also have PyTorch's top-1 class.
Without a usable device it says why and exits 77 (nothing checked).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper


def load(path):
    t = onnx.TensorProto()
    with open(path, 'rb') as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def run(inferd_run, model, data_dir, out_dir, threads, device_args):
    subprocess.run([inferd_run, '--model', model, '--input_dir', data_dir, '--output_dir', out_dir,
                    '--threads', str(threads)] + device_args, check=True, stderr=subprocess.DEVNULL)
    return load(os.path.join(out_dir, 'output_0.pb'))


def device_unavailable(inferd_run, model, device_args):
    """Why the device cannot run anything, or None."""
    proc = subprocess.run([inferd_run, '--model', model, '--bench', '1', '--warmup', '0']
                          + device_args, capture_output=True, text=True)
    for marker in ('no usable CUDA device', 'is not available', 'no CUDA device'):
        if proc.returncode != 0 and marker in proc.stderr:
            return proc.stderr.strip().splitlines()[-1]
    return None


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--zoo', default=os.path.join(root, 'build', 'zoo'))
    p.add_argument('--inferd-run', default=os.path.join(root, 'build', 'bin', 'inferd-run'))
    p.add_argument('--models', default='resnet50,inception_v3,mobilenet_v2')
    p.add_argument('--rel', type=float, default=1e-4)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    p.add_argument('--precision', default='fp32', help='fp32, tf32 or fp16 (device only)')
    args = p.parse_args()
    device_args = ['--device', args.device, '--precision', args.precision]
    fp16 = args.precision == 'fp16'
    if fp16 and args.rel == 1e-4:
        args.rel = 2e-2
    if args.device != 'cpu':
        first = os.path.join(args.zoo, args.models.split(',')[0], 'model.onnx')
        reason = device_unavailable(args.inferd_run, first, device_args) if os.path.exists(first) else None
        if reason:
            print(f'SKIP every check on {args.device}: {reason}')
            return 77
    passed = failed = 0

    def check(name, ok, detail):
        nonlocal passed, failed
        print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
        if ok:
            passed += 1
        else:
            failed += 1

    for name in args.models.split(','):
        model = os.path.join(args.zoo, name, 'model.onnx')
        if not os.path.exists(model):
            check(name, False, f'{model} is missing (run models/zoo/export_torchvision.py)')
            continue
        outs = {}
        with tempfile.TemporaryDirectory() as tmp:
            for b in (1, 8):
                data = os.path.join(args.zoo, name, f'test_data_set_b{b}')
                got = run(args.inferd_run, model, data, os.path.join(tmp, f'b{b}'), args.threads,
                          device_args)
                ref = load(os.path.join(data, 'output_0.pb'))
                outs[b] = (got, ref)
                err = float(np.max(np.abs(got - ref)))
                bound = args.rel * float(np.max(np.abs(ref)))
                check(f'{name} batch {b} on {args.device} {args.precision} vs PyTorch',
                      got.shape == ref.shape and err <= bound,
                      f'max|diff| {err:.3e} <= {bound:.3e}')
                if fp16 and got.shape == ref.shape:
                    same = np.argmax(got, axis=1) == np.argmax(ref, axis=1)
                    check(f'{name} batch {b} fp16 top-1 class', bool(same.all()),
                          f'{int(same.sum())}/{len(same)} rows agree with PyTorch')
        got1, ref1 = outs[1]
        got8, _ = outs[8]
        inputs1 = load(os.path.join(args.zoo, name, 'test_data_set_b1', 'input_0.pb'))
        inputs8 = load(os.path.join(args.zoo, name, 'test_data_set_b8', 'input_0.pb'))
        same_image = np.array_equal(inputs1[0], inputs8[0])
        err = float(np.max(np.abs(got8[0] - got1[0])))
        bound = args.rel * float(np.max(np.abs(ref1)))
        check(f'{name} batch-8 row 0 vs batch 1', same_image and err <= bound,
              f'max|diff| {err:.3e} <= {bound:.3e}')
    print(f'{passed} passed, {failed} failed')
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
