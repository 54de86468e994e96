"""Checks DATA_DIR/features against PyTorch and onnxruntime (test/features-stage.test.ts).

    python3 check_features.py DATA_DIR MODEL.onnx ARCH BN WIDTH SIZE SEED

Reads DATA_DIR/features with datasets.load_from_disk (and one features file with pyarrow and polars) and
DATA_DIR/shards with pyarrow, checks that the features have one row per shard row in the same order (item_id, label, genre), the
ClassLabel names, then recomputes every row's features from the shard image: the centre SIZE×SIZE crop, ImageNet
preprocessing (RGB / 255, torchvision's mean and std), through the PyTorch network export_pretrained.py built with
the same seed (its last Linear layer's input) and through onnxruntime on MODEL.onnx. Prints a JSON summary;
exits 1 when the largest error relative to the features' scale exceeds 1e-3.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_pretrained import build, feature_tensor_name, ort_outputs  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def read_shards(split_dir):
    """A shard split as one pyarrow table, files in state.json order (or sorted)."""
    import pyarrow as pa
    state = os.path.join(split_dir, "state.json")
    if os.path.exists(state):
        files = [d["filename"] for d in json.load(open(state))["_data_files"]]
    else:
        files = sorted(f for f in os.listdir(split_dir) if f.startswith("data-") and f.endswith(".arrow"))
    return pa.concat_tables([pa.ipc.open_stream(os.path.join(split_dir, f)).read_all() for f in files])


def main():
    data_dir, onnx_path, arch, bn, width, size, seed = sys.argv[1:8]
    width, size, seed = float(width), int(size), int(seed)
    from datasets import load_from_disk
    import pyarrow as pa
    import polars as pl

    feats = load_from_disk(os.path.join(data_dir, "features"))
    model = build(arch, width, seed, 1000)
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    captured = {}
    last_linear.register_forward_hook(lambda m, inp, out: captured.update(f=inp[0].detach().numpy()))
    feature_name, _ = feature_tensor_name(onnx_path)
    summary = {"splits": {}, "ok": True}
    for split in ["train", "validation", "test"]:
        f, s = feats[split], read_shards(os.path.join(data_dir, "shards", split))
        names = json.loads(s.schema.metadata[b"bandcamp_covers"])["labelNames"]
        assert f.features["label"].names == names, "ClassLabel names differ"
        assert f["item_id"] == s["item_id"].to_pylist() and f["label"] == s["label"].to_pylist() and f["genre"] == s["genre"].to_pylist(), f"{split}: rows differ"
        n = s.num_rows
        if n == 0:
            summary["splits"][split] = {"rows": 0}
            continue
        flat = s["image"].combine_chunks().flatten().to_numpy()
        S = int(round((len(flat) / n / 3) ** 0.5))
        images = flat.astype(np.uint8).reshape(n, S, S, 3)
        c = (S - size) // 2
        crop = images[:, c:c + size, c:c + size, :].astype(np.float32) / 255.0
        x = np.ascontiguousarray(((crop - MEAN) / STD).transpose(0, 3, 1, 2), dtype=np.float32)
        with torch.no_grad():
            model(torch.from_numpy(x))
        ref_torch = captured["f"].reshape(n, -1)
        ref_ort = ort_outputs(onnx_path, [feature_name], x)[0].reshape(n, -1)
        ours = np.asarray(f["features"], dtype=np.float32)
        err = {name: float(np.abs(ours - ref).max() / np.abs(ref).max()) for name, ref in [("torch", ref_torch), ("ort", ref_ort)]}
        summary["splits"][split] = {"rows": n, "dim": int(ours.shape[1]), "relative_error": err}
        if max(err.values()) > 1e-3:
            summary["ok"] = False
    split_dir = os.path.join(data_dir, "features", "train")
    first = json.load(open(os.path.join(split_dir, "state.json")))["_data_files"][0]["filename"]
    table = pa.ipc.open_stream(os.path.join(split_dir, first)).read_all()
    frame = pl.read_ipc_stream(os.path.join(split_dir, first))
    summary["pyarrow_rows"] = table.num_rows
    summary["polars_rows"] = frame.height
    summary["columns"] = table.column_names
    print(json.dumps(summary))
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
