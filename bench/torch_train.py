"""PyTorch reference for the training benchmarks (bench/train.bench.ts, bench/gpu/run.sh).

Builds the same network as train/models.ts from a resolved ModelSpec (JSON, as `resolveModelSpec` returns it):
convs with TensorFlow's 'same'/'valid' padding (asymmetric zero padding where TensorFlow pads more at the bottom
and right), ReLU, max-pools ('valid'), flatten, dense + ReLU + dropout, logits; cross-entropy; SGD with Nesterov
momentum 0.9 (or Adam). Times `--steps` training steps (forward, backward, update) or inference forward passes
after `--warmup` untimed ones, on random inputs of `--batch` × 3 × `--size`², and prints one JSON line:
{"imagesPerSecond": …, "threads": …, "device": …, "torch": …}.

With `--pairs K` (CPU, training) it measures thread scaling instead: K pairs of 1 thread and `--threads` threads
(`torch.set_num_threads` in this process, one model; the order alternates per pair, 1 thread first in the first),
`--steps` steps each after one warm-up step per change of thread count, and prints
{"pairs": [[images/s on 1 thread, images/s on --threads], …], …}.

Usage: python3 bench/torch_train.py --spec spec.json --size 224 --batch 32 --steps 3 --threads 1 [--mode infer]
       [--device cuda] [--optimizer nesterov|adam] [--pairs K]
"""
import argparse
import json
import math
import time

import torch
from torch import nn


def same_pad(size: int, k: int, s: int) -> tuple[int, int, int]:
    """TensorFlow 'same' padding of one dimension: (before, after, output size)."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


def build(spec: dict, size: int, classes: int) -> nn.Module:
    layers: list[nn.Module] = []
    ch, h, w = 3, size, size
    for c in spec["convs"]:
        (kh, kw), (sh, sw) = c["kernelSize"], c["strides"]
        if c["padding"] == "same":
            t, b, h = same_pad(h, kh, sh)
            l, r, w = same_pad(w, kw, sw)
            if t or b or l or r:
                layers.append(nn.ZeroPad2d((l, r, t, b)))
        else:
            h, w = (h - kh) // sh + 1, (w - kw) // sw + 1
        layers += [nn.Conv2d(ch, c["filters"], (kh, kw), (sh, sw)), nn.ReLU(inplace=True)]
        ch = c["filters"]
        if c.get("pool"):
            (ph, pw), (qh, qw) = c["pool"]["poolSize"], c["pool"]["strides"]
            layers.append(nn.MaxPool2d((ph, pw), (qh, qw)))
            h, w = (h - ph) // qh + 1, (w - pw) // qw + 1
    layers.append(nn.Flatten())
    n = ch * h * w
    for d in spec["denses"]:
        layers += [nn.Linear(n, d["units"]), nn.ReLU(inplace=True)]
        if d["dropout"] > 0:
            layers.append(nn.Dropout(d["dropout"]))
        n = d["units"]
    layers.append(nn.Linear(n, classes))
    return nn.Sequential(*layers)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, or auto (cuda when available)")
    ap.add_argument("--optimizer", choices=["nesterov", "adam"], default="nesterov")
    ap.add_argument("--pairs", type=int, default=0, help="thread scaling: pairs of 1 thread and --threads threads")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    with open(a.spec) as f:
        spec = json.load(f)
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(a.device)
    if a.pairs > 0 and (dev.type != "cpu" or a.mode != "train" or a.threads < 2):
        ap.error("--pairs measures CPU thread scaling: it needs --device cpu, --mode train and --threads 2 or more")
    model = build(spec, a.size, a.classes).to(dev)
    x = torch.rand(a.batch, 3, a.size, a.size, device=dev) * 2 - 1
    y = torch.arange(a.batch, device=dev) % a.classes
    loss_fn = nn.CrossEntropyLoss()
    if a.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        loss.item()

    def infer_step() -> None:
        with torch.no_grad():
            model(x).argmax(1).cpu()

    if a.mode == "infer":
        model.eval()
        step = infer_step
    else:
        model.train()
        step = train_step
    if a.pairs > 0:
        def rate(threads: int) -> float:
            torch.set_num_threads(threads)
            step()  # warm-up after a change of thread count
            t = time.perf_counter()
            for _ in range(a.steps):
                step()
            return a.batch * a.steps / (time.perf_counter() - t)

        for _ in range(a.warmup):
            step()
        pairs = []
        for k in range(a.pairs):
            order = [1, a.threads] if k % 2 == 0 else [a.threads, 1]
            got = {n: rate(n) for n in order}
            pairs.append([got[1], got[a.threads]])
        print(json.dumps({"pairs": pairs, "threads": a.threads, "torch": torch.__version__, "batch": a.batch, "size": a.size}))
        return
    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    s = time.perf_counter() - t0
    print(json.dumps({
        "imagesPerSecond": a.batch * a.steps / s, "threads": torch.get_num_threads(), "device": str(dev),
        "torch": torch.__version__, "mode": a.mode, "batch": a.batch, "size": a.size,
        **({"gpu": torch.cuda.get_device_name(dev)} if dev.type == "cuda" else {}),
    }))


if __name__ == "__main__":
    main()
