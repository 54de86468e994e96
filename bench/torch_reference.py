"""PyTorch reference trainer: the recipe of our TensorFlow.js trainer (train/train-loop.ts) written independently in
PyTorch, so that "our trainer learns as well as PyTorch does with the same recipe" is a measured statement.

Same as ours: the shards read through `datasets.load_from_disk` (our HF save_to_disk layout), the per-pixel mean
(`shards/mean.arrow`) subtracted, inputs (pixel - mean) / 255, random crops of `train.crop` pixels with random
horizontal mirroring, the architecture of `train.modelParams` (ConvNet family: conv -> [batch norm] -> ReLU -> [max
pool] ... -> flatten -> dense -> [batch norm] -> ReLU -> dropout ... -> dense logits; He-uniform kernels, Glorot-uniform
logits, zero biases), mean cross-entropy plus `train.weightDecay`/2 * sum of squared kernels, Adam or Nesterov momentum,
the learning-rate schedule of `train.schedule` (a port of train/schedule.ts), the best checkpoint restored at the end,
and `eval.crops` test crops (centre + four corners, each mirrored, softmax averaged).
Different, on purpose: the random streams (numpy/torch generators instead of our mulberry32), so the two trainers share
the recipe, not the random draws.

Usage:
  python3 bench/torch_reference.py --data-dir DATA_DIR --config docs/real-covers.config.json \
      [--seeds 0,1,2] [--epochs N] [--threads 1] [--out result.json]

Writes (stdout, or --out) JSON: {"seeds": [{"seed", "accuracy", "correct", "n", "interval95", "finalTrainLoss",
"bestEpoch", "epochs": [...per-epoch metrics...], "seconds"}], "mean", "std" (sample, n - 1), "config": {...}}.
Exit status 2 with a message for a configuration this reference does not implement.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.ipc
import torch
import torch.nn as nn
import torch.nn.functional as F

# The defaults of pipeline/config.ts for the keys the recipe reads.
DEFAULTS = {
    "seed": 0,
    "train": {
        "architecture": "AlexNet", "modelParams": "", "crop": 224, "mirror": True, "subtractMean": True,
        "optimizer": "nesterov", "learningRate": 0.01, "momentum": 0.9,
        "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}, "batchSize": 128, "epochs": 30,
        "schedule": "plateau", "patience": 3,
        "plateau": {"factor": 0.1, "patience": 5, "minDelta": 0.001, "cooldown": 2, "minLearningRate": 1e-6},
        "cosine": {"warmupEpochs": 3, "minLearningRate": 0},
        "weightDecay": 0, "repeats": 1,
    },
    "eval": {"crops": 10},
}
STUDY_MIN_LEARNING_RATE = 1e-10


class ConfigProblem(Exception):
    pass


def merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_value(raw):
    v = raw.strip()
    if v in ("True", "true"):
        return True
    if v in ("False", "false"):
        return False
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def parse_model_params(text):
    """`key=value` pairs joined by ':' (train/model-params.ts), ConvNet defaults applied."""
    p = {"num_conv_layers": 1, "num_dense_layers": 1}
    for part in filter(None, (s.strip() for s in text.split(":"))):
        k, _, v = part.partition("=")
        p[k.strip()] = parse_value(v)
    return p


def pool_out(n, size, stride):
    return (n - size) // stride + 1


class ConvNet(nn.Module):
    """The ConvNet family of train/models.ts in PyTorch (NCHW)."""

    def __init__(self, p, crop, classes):
        super().__init__()
        layers = []
        ch, side = 3, crop
        for i in range(p["num_conv_layers"]):
            k = lambda s: p.get(f"lc{i}_{s}")
            filters, size = k("num_filters"), k("filter_size") or 3
            stride = k("stride") or 1
            border = k("border_mode") or "same"
            bn = bool(k("bn"))
            if border == "same":
                # TensorFlow's 'same' (what tfjs-layers does): output side ceil(side / stride), the total padding
                # max((out - 1) * stride + size - side, 0) split with the odd pixel after (bottom/right).
                out = -(-side // stride)
                total = max((out - 1) * stride + size - side, 0)
                layers.append(nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2)))
            conv = nn.Conv2d(ch, filters, size, stride=stride, padding=0, bias=not bn)
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")  # He uniform: U(-sqrt(6/fan_in), +)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
            layers.append(conv)
            side = -(-side // stride) if border == "same" else (side - size) // stride + 1
            if bn:
                # tfjs-layers' BatchNormalization defaults: momentum 0.99 (PyTorch's 0.01), epsilon 1e-3.
                layers.append(nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01))
            layers.append(nn.ReLU())
            if k("mp"):
                ps = p.get(f"lm{i}_pool_size", 2)
                pst = p.get(f"lm{i}_stride", ps)
                layers.append(nn.MaxPool2d(ps, pst))
                side = pool_out(side, ps, pst)
            ch = filters
        self.features = nn.Sequential(*layers)
        dense = []
        width = ch * side * side
        for i in range(p["num_dense_layers"]):
            units = p[f"ld{i}_num_units"]
            bn = bool(p.get(f"ld{i}_bn"))
            lin = nn.Linear(width, units, bias=not bn)
            nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
            dense.append(lin)
            if bn:
                dense.append(nn.BatchNorm1d(units, eps=1e-3, momentum=0.01))
            dense.append(nn.ReLU())
            rate = p.get(f"ld{i}_dropout", 0.5) if p.get(f"ld{i}_hd", True) else 0
            if rate > 0:
                dense.append(nn.Dropout(rate))
            width = units
        logits = nn.Linear(width, classes)
        nn.init.xavier_uniform_(logits.weight)
        nn.init.zeros_(logits.bias)
        dense.append(logits)
        self.head = nn.Sequential(*dense)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))

    def kernels(self):
        return [m.weight for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# ---- the schedules: a port of train/schedule.ts ----

def epoch_learning_rate(t, epoch):
    if t["schedule"] != "cosine":
        return None
    base, epochs = t["learningRate"], t["epochs"]
    w = min(t["cosine"]["warmupEpochs"], epochs)
    if epoch <= w:
        return base * epoch / w
    span = max(1, epochs - w)
    p = min(1.0, (epoch - w - 1) / span)
    lo = min(t["cosine"]["minLearningRate"], base)
    return lo + (base - lo) * (1 + math.cos(math.pi * p)) / 2


class Schedule:
    def __init__(self, t):
        self.t = t
        self.lr = epoch_learning_rate(t, 1) or t["learningRate"]
        self.best_acc, self.best_loss, self.best_epoch = -1.0, None, 0
        self.since_best, self.monitor_best, self.cooldown = 0, None, 0

    def after_epoch(self, epoch, loss, acc):
        """Returns (new_best, changed_lr_or_None, reason, restore_best, stop)."""
        t = self.t
        if t["schedule"] == "study":
            if acc > self.best_acc:
                self.best_acc, self.best_epoch, self.since_best = acc, epoch, 0
                return True, None, None, False, None
            self.since_best += 1
            if self.since_best >= t["patience"]:
                self.lr = float(f"{self.lr / 10:.12g}")
                self.since_best = 0
                stop = f"learning rate below {STUDY_MIN_LEARNING_RATE}" if self.lr < STUDY_MIN_LEARNING_RATE else None
                return False, self.lr, f"study: ÷10, weights of epoch {self.best_epoch} restored", True, stop
            return False, None, None, False, None
        new_best = False
        if self.best_loss is None or loss < self.best_loss or (loss == self.best_loss and acc > self.best_acc):
            self.best_loss, self.best_acc, self.best_epoch, new_best = loss, acc, epoch, True
        if t["schedule"] != "plateau":
            return new_best, None, None, False, None
        p = t["plateau"]
        if self.monitor_best is None or loss < self.monitor_best - p["minDelta"]:
            self.monitor_best, self.since_best = loss, 0
        else:
            self.since_best += 1
        if self.cooldown > 0:
            self.cooldown -= 1
            self.since_best = 0
        if self.since_best >= p["patience"]:
            self.since_best = 0
            nxt = float(f"{max(self.lr * p['factor'], p['minLearningRate']):.12g}")
            if nxt < self.lr:
                self.lr, self.cooldown = nxt, p["cooldown"]
                return new_best, nxt, f"plateau: validation loss not below {self.monitor_best:.4f} - {p['minDelta']} for {p['patience']} epochs", False, None
        return new_best, None, None, False, None


# ---- data ----

def load(data_dir):
    dd = datasets.load_from_disk(os.path.join(data_dir, "shards"))
    out = {}
    for split in ("train", "validation", "test"):
        ds = dd[split]
        images = ds.with_format("numpy", dtype=np.uint8)[:]["image"]
        size = int(round(math.sqrt(images.shape[1] / 3))) if images.ndim == 2 else images.shape[1]
        out[split] = (images.reshape(-1, size, size, 3), np.asarray(ds["label"][:], dtype=np.int64))
    names = dd["train"].features["label"].names
    with pa.ipc.open_stream(os.path.join(data_dir, "shards", "mean.arrow")) as reader:
        t = reader.read_all()
    mean = t.column("mean").combine_chunks().values.to_numpy().astype(np.float32)
    size = out["train"][0].shape[1]
    return out, mean.reshape(size, size, 3), names


def make_batch(images, mean, idx, oy, ox, mirror, crop):
    """(crop(image) - crop(mean)) / 255, mirrored where asked; NHWC uint8 -> NCHW float32."""
    x = np.empty((len(idx), crop, crop, 3), dtype=np.float32)
    for j, i in enumerate(idx):
        v = images[i, oy[j]:oy[j] + crop, ox[j]:ox[j] + crop].astype(np.float32)
        if mean is not None:
            v -= mean[oy[j]:oy[j] + crop, ox[j]:ox[j] + crop]
        x[j] = v[:, ::-1] if mirror[j] else v
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)) / np.float32(255))


def eval_crops(size, crop, count):
    c, m = (size - crop) // 2, size - crop
    if count == 1:
        return [(c, c, 0)]
    pos = [(c, c), (0, 0), (0, m), (m, 0), (m, m)]
    return [(y, x, 0) for y, x in pos] + [(y, x, 1) for y, x in pos]


def wilson(k, n, z=1.959963984540054):
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [max(0.0, c - h), min(1.0, c + h)]


@torch.no_grad()
def evaluate(model, images, labels, mean, crop, crops, batch):
    """Mean cross-entropy, accuracy and predictions; softmax averaged over the crops."""
    model.eval()
    size = images.shape[1]
    cs = eval_crops(size, crop, crops)
    probs = []
    for s in range(0, len(images), batch):
        idx = np.arange(s, min(len(images), s + batch))
        p = 0
        for (y, x, m) in cs:
            xb = make_batch(images, mean, idx, [y] * len(idx), [x] * len(idx), [m] * len(idx), crop)
            p = p + F.softmax(model(xb), dim=1)
        probs.append(p / len(cs))
    probs = torch.cat(probs)
    y = torch.from_numpy(labels)
    loss = F.nll_loss(torch.log(probs.clamp_min(1e-12)), y).item()
    pred = probs.argmax(1).numpy()
    return loss, float((pred == labels).mean()), pred


def make_optimizer(t, params, lr):
    if t["optimizer"] == "adam":
        a = t["adam"]
        return torch.optim.Adam(params, lr=lr, betas=(a["beta1"], a["beta2"]), eps=a["epsilon"])
    return torch.optim.SGD(params, lr=lr, momentum=t["momentum"], nesterov=True)


def train_one(cfg, data, mean, names, seed, log):
    t = cfg["train"]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    (xtr, ytr), (xva, yva), (xte, yte) = data["train"], data["validation"], data["test"]
    size, crop = xtr.shape[1], t["crop"]
    model = ConvNet(parse_model_params(t["modelParams"]), crop, len(names))
    sched = Schedule(t)
    opt = make_optimizer(t, model.parameters(), sched.lr)
    best = copy.deepcopy(model.state_dict())
    epochs_out = []
    t0 = time.time()
    for epoch in range(1, t["epochs"] + 1):
        lr = epoch_learning_rate(t, epoch)
        if lr is not None and lr != sched.lr:
            sched.lr = lr
            for g in opt.param_groups:
                g["lr"] = lr
        model.train()
        te = time.time()
        n = len(xtr)
        order = rng.permutation(n)
        oy = rng.integers(0, size - crop + 1, n)
        ox = rng.integers(0, size - crop + 1, n)
        mir = (rng.random(n) < 0.5) if t["mirror"] else np.zeros(n, dtype=bool)
        loss_sum, correct = 0.0, 0
        for s in range(0, n, t["batchSize"]):
            b = order[s:s + t["batchSize"]]
            xb = make_batch(xtr, mean, b, oy[b], ox[b], mir[b], crop)
            yb = torch.from_numpy(ytr[b])
            out = model(xb)
            ce = F.cross_entropy(out, yb)
            loss = ce
            if t["weightDecay"] > 0:
                loss = ce + t["weightDecay"] / 2 * sum((w * w).sum() for w in model.kernels())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if not math.isfinite(ce.item()):
                raise SystemExit(f"training diverged at epoch {epoch} (seed {seed})")
            loss_sum += ce.item() * len(b)
            correct += int((out.argmax(1) == yb).sum())
        vloss, vacc, _ = evaluate(model, xva, yva, mean, crop, 1, 256)
        m = {"epoch": epoch, "trainLoss": loss_sum / n, "trainAccuracy": correct / n, "validationLoss": vloss,
             "validationAccuracy": vacc, "learningRate": sched.lr, "seconds": time.time() - te}
        epochs_out.append(m)
        log(f"seed {seed} epoch {epoch}/{t['epochs']}: train loss {m['trainLoss']:.4f} acc {m['trainAccuracy']:.3f}, "
            f"validation loss {vloss:.4f} acc {vacc:.3f}, lr {sched.lr:.3g}, {m['seconds']:.1f} s")
        new_best, changed, reason, restore, stop = sched.after_epoch(epoch, vloss, vacc)
        if new_best:
            best = copy.deepcopy(model.state_dict())
        if changed is not None:
            if restore:
                model.load_state_dict(best)
                opt = make_optimizer(t, model.parameters(), changed)
            else:
                for g in opt.param_groups:
                    g["lr"] = changed
            m["scheduleEvent"] = reason
            log(f"  {reason}: learning rate -> {changed:.3g}")
        if stop:
            break
    model.load_state_dict(best)
    _, _, pred = evaluate(model, xte, yte, mean, crop, cfg["eval"]["crops"], 64)
    k = int((pred == yte).sum())
    return {
        "seed": seed, "correct": k, "n": int(len(yte)), "accuracy": k / len(yte), "interval95": wilson(k, len(yte)),
        "finalTrainLoss": epochs_out[-1]["trainLoss"], "bestEpoch": sched.best_epoch, "epochs": epochs_out,
        "seconds": time.time() - t0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True, help="a data directory with shards/ and shards/mean.arrow")
    ap.add_argument("--config", required=True, help="the pipeline config JSON (e.g. docs/real-covers.config.json)")
    ap.add_argument("--seeds", help="comma-separated seeds (default: seed … seed + train.repeats - 1)")
    ap.add_argument("--epochs", type=int, help="override train.epochs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", help="write the JSON here instead of stdout")
    a = ap.parse_args()
    with open(a.config) as f:
        cfg = merge(DEFAULTS, json.load(f))
    t = cfg["train"]
    if a.epochs:
        t["epochs"] = a.epochs
    try:
        if t["architecture"] != "ConvNet":
            raise ConfigProblem(f"train.architecture {t['architecture']}: only ConvNet (with train.modelParams) is implemented here")
        torch.set_num_threads(a.threads)
        data, mean, names = load(a.data_dir)
        if not t["subtractMean"]:
            mean = None
        seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else [cfg["seed"] + k for k in range(t["repeats"])]
        log = lambda line: print(line, file=sys.stderr, flush=True)
        runs = [train_one(cfg, data, mean, names, s, log) for s in seeds]
    except ConfigProblem as e:
        print(f"torch_reference: {e}", file=sys.stderr)
        sys.exit(2)
    accs = np.array([r["accuracy"] for r in runs])
    result = {
        "seeds": runs, "mean": float(accs.mean()), "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
        "labels": names, "torch": torch.__version__, "threads": a.threads, "config": t,
    }
    text = json.dumps(result, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
