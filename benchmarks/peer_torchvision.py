#!/usr/bin/env python3
"""Peer for `speed.py`: training and inference images/s of torchvision's GoogLeNet.

Measures what `speed.py` measures for our GoogLeNet, on the same machine, in PyTorch:
one training step (SGD, momentum 0.9, loss `main + 0.3 * aux1 + 0.3 * aux2`, the paper's
deep-supervision weights; aux heads and batch normalization as in torchvision's
`googlenet`) and eval-mode inference (no aux heads), on one random batch kept in memory.
Prints one JSON object per configuration on stdout.

Configurations (`--configs`): `bf16_nhwc` (the best CPU configuration: channels_last +
bfloat16 autocast), `fp32_nhwc`, `fp32_nchw`. `--no-train` measures inference only.

`--export-onnx PATH` instead writes the same eval-mode googlenet (no aux heads, seed 0,
dynamic batch) as ONNX with `torch.onnx.export` (TorchScript exporter), for the
ONNX Runtime and OpenVINO peers of `speed.py`, which run it in their own process.

Needs torch and torchvision (a separate venv is fine; `speed.py --peer-python` runs it):
    python -m pip install torch torchvision
    python benchmarks/peer_torchvision.py --batch-size 32 --image-size 224 --steps 8
"""

import argparse
import json
import time

import torch
import torchvision

CONFIGS = {
    "bf16_nhwc": dict(bf16=True, channels_last=True),
    "fp32_nhwc": dict(bf16=False, channels_last=True),
    "fp32_nchw": dict(bf16=False, channels_last=False),
}


def export_onnx(path, image_size, num_classes):
    """Writes torchvision's eval-mode googlenet (no aux heads) as ONNX; input `images` NCHW float32."""
    torch.manual_seed(0)
    model = torchvision.models.googlenet(aux_logits=False, init_weights=True, num_classes=num_classes).eval()
    x = torch.rand(1, 3, image_size, image_size) * 2 - 1
    torch.onnx.export(
        model, (x,), path, input_names=["images"], output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
    )
    return {"peer": "torchvision.models.googlenet", "onnx": path, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "image_size": image_size}


def measure(batch_size, image_size, num_classes, steps, warmup, bf16, channels_last, train=True):
    """`(train_images_per_s or None, infer_images_per_s)` of one configuration."""
    torch.manual_seed(0)
    model = torchvision.models.googlenet(aux_logits=True, init_weights=True, num_classes=num_classes)
    x = torch.rand(batch_size, 3, image_size, image_size) * 2 - 1
    y = torch.randint(0, num_classes, (batch_size,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def train_step():
        with autocast():
            out = model(x)
            loss = loss_fn(out.logits, y) + 0.3 * loss_fn(out.aux_logits1, y) + 0.3 * loss_fn(out.aux_logits2, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train_ips = None
    if train:
        model.train()
        for _ in range(warmup):
            train_step()
        start = time.perf_counter()
        for _ in range(steps):
            train_step()
        train_ips = batch_size * steps / (time.perf_counter() - start)

    model.eval()
    with torch.no_grad(), autocast():
        for _ in range(warmup):
            model(x)
        start = time.perf_counter()
        for _ in range(steps):
            model(x)
        infer_ips = batch_size * steps / (time.perf_counter() - start)
    return train_ips, infer_ips


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=8, help="timed steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--configs", default="bf16_nhwc", help=f"comma-separated, of {list(CONFIGS)}")
    parser.add_argument("--no-train", action="store_true", help="inference only")
    parser.add_argument("--export-onnx", default=None, metavar="PATH", help="only write the eval model as ONNX")
    args = parser.parse_args()
    if args.export_onnx:
        print(json.dumps(export_onnx(args.export_onnx, args.image_size, args.num_classes)), flush=True)
        return
    for name in args.configs.split(","):
        if name not in CONFIGS:
            parser.error(f"unknown configuration {name!r}; choose from {list(CONFIGS)}")
        train_ips, infer_ips = measure(
            args.batch_size, args.image_size, args.num_classes, args.steps, args.warmup, **CONFIGS[name],
            train=not args.no_train,
        )
        record = {
            "peer": "torchvision.models.googlenet",
            "config": name,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
            "image_size": args.image_size,
            "train_images_per_s": train_ips,
            "infer_images_per_s": infer_ips,
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
