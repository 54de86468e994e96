"""Reads bandcamp-covers shards from Python the three ways users will, and checks them against what Node wrote.

Usage: python3 read_shards.py SHARDS_DIR EXPECTED_JSON

EXPECTED_JSON (written by test/shards-python.test.ts): {"size": S, "labelNames": [...], "splits": {split:
{"item_ids": [...], "labels": [...], "image_sha256": [...]}}}.

Checks: datasets.load_from_disk (features, rows, labels, pixels reshaped to [N, S, S, 3]); pyarrow.ipc.open_stream of
every shard file listed in state.json (NOT open_file: the shards are IPC streams); a PyTorch DataLoader over the
dataset with format "torch"; shards/mean.arrow against numpy's mean of the training images.
Exit status: 0 all good, 3 a module is missing (prints "MISSING <name>"), 1 a check failed.
"""
import hashlib
import json
import os
import sys

try:
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc
    import datasets
    import torch
    from torch.utils.data import DataLoader
except ImportError as e:  # the test skips with this reason
    print(f"MISSING {e.name}")
    sys.exit(3)


def check(cond, message):
    if not cond:
        print(f"FAIL {message}")
        sys.exit(1)


def main():
    shards_dir, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    size = expected["size"]
    names = expected["labelNames"]
    shape = (size, size, 3)

    # 1. datasets.load_from_disk
    dd = datasets.load_from_disk(shards_dir)
    check(list(dd.keys()) == ["train", "validation", "test"], f"splits {list(dd.keys())}")
    train_images = None
    for split, exp in expected["splits"].items():
        ds = dd[split]
        check(ds.num_rows == len(exp["item_ids"]), f"{split}: {ds.num_rows} rows, expected {len(exp['item_ids'])}")
        check(ds.features["label"].names == names, f"{split}: label names {ds.features['label'].names}")
        check(ds.column_names == ["image", "label", "genre", "item_id", "art_id", "sha256"], f"{split}: columns {ds.column_names}")
        check(ds["item_id"][:] == exp["item_ids"], f"{split}: item_ids differ")
        check(ds["label"][:] == exp["labels"], f"{split}: labels differ")
        check([names[l] for l in ds["label"][:]] == ds["genre"][:], f"{split}: genre column disagrees with label")
        if ds.num_rows == 0:
            continue
        # datasets' numpy and torch formatters widen integers to int64 unless given a dtype.
        images = ds.with_format("numpy", dtype=np.uint8)[:]["image"].reshape((-1,) + shape)
        widened = ds.with_format("numpy")[:]["image"]
        check(widened.dtype == np.int64 and np.array_equal(widened.reshape((-1,) + shape), images), f"{split}: default numpy format")
        check(images.dtype == np.uint8 and images.shape == (ds.num_rows,) + shape, f"{split}: images {images.dtype} {images.shape}")
        digests = [hashlib.sha256(im.tobytes()).hexdigest() for im in images]
        check(digests == exp["image_sha256"], f"{split}: pixels differ from what Node wrote")
        if split == "train":
            train_images = images

        # 2. pyarrow.ipc.open_stream, file by file, as state.json lists them
        with open(os.path.join(shards_dir, split, "state.json")) as f:
            state = json.load(f)
        for key in ("_data_files", "_fingerprint", "_format_columns", "_format_kwargs", "_format_type", "_output_all_columns", "_split"):
            check(key in state, f"{split}: state.json lacks {key}")
        tables = []
        for entry in state["_data_files"]:
            with pa.ipc.open_stream(os.path.join(shards_dir, split, entry["filename"])) as reader:
                meta = json.loads(reader.schema.metadata[b"bandcamp_covers"])
                check(meta["shape"] == list(shape) and meta["layout"] == "HWC", f"{split}: layout metadata {meta}")
                tables.append(reader.read_all())
        table = pa.concat_tables(tables)
        col = table.column("image").combine_chunks()
        check(pa.types.is_fixed_size_list(col.type) and col.type.list_size == size * size * 3, f"{split}: image type {col.type}")
        flat = col.values.to_numpy(zero_copy_only=False).reshape((-1,) + shape)
        check(np.array_equal(flat, images), f"{split}: pyarrow pixels differ from datasets'")
        check(table.column("item_id").to_pylist() == exp["item_ids"], f"{split}: pyarrow item_ids differ")

        # 3. PyTorch DataLoader
        loader = DataLoader(ds.with_format("torch", columns=["image", "label"], dtype=torch.uint8), batch_size=4, shuffle=False)
        seen = 0
        for batch in loader:
            x = batch["image"].reshape((-1,) + shape)
            check(x.dtype == torch.uint8, f"{split}: torch dtype {x.dtype}")
            check(torch.equal(x, torch.from_numpy(images[seen:seen + len(x)])), f"{split}: torch batch at {seen} differs")
            check(batch["label"].long().tolist() == exp["labels"][seen:seen + len(x)], f"{split}: torch labels at {seen}")
            seen += len(x)
        check(seen == ds.num_rows, f"{split}: DataLoader gave {seen} rows")

    # 4. the per-pixel mean
    mean_path = os.path.join(shards_dir, "mean.arrow")
    if os.path.exists(mean_path):
        with pa.ipc.open_stream(mean_path) as reader:
            t = reader.read_all()
        mean = t.column("mean").combine_chunks().values.to_numpy().reshape(shape)
        want = train_images.astype(np.float64).mean(axis=0)
        check(np.allclose(mean, want, atol=1e-3), f"mean differs by {np.abs(mean - want).max()}")
        cm = np.array(t.column("channel_mean")[0].as_py())
        cs = np.array(t.column("channel_std")[0].as_py())
        px = train_images.reshape(-1, 3).astype(np.float64)
        check(np.allclose(cm, px.mean(axis=0), atol=1e-6), f"channel mean {cm} vs {px.mean(axis=0)}")
        check(np.allclose(cs, px.std(axis=0), atol=1e-6), f"channel std {cs} vs {px.std(axis=0)}")
        check(t.column("count")[0].as_py() == len(train_images), "mean count")

    print(json.dumps({"ok": True, "datasets": datasets.__version__, "pyarrow": pa.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
