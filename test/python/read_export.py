"""Reads one format of `covers make export` with that ecosystem's own readers and checks it against the Arrow shards.

usage: read_export.py FORMAT EXPORT_DIR EXPECTED_JSON

FORMAT is parquet (datasets.load_dataset("parquet"), pyarrow, polars, duckdb), webdataset (Python's tarfile following
the WebDataset conventions, into a torch DataLoader: the `webdataset` package is not on our local index) or tfrecord
(tensorflow's tf.data.TFRecordDataset + tf.io.parse_single_example). EXPECTED_JSON holds, per split, the item ids,
labels and sha256 of each image's raw [S, S, 3] uint8 pixels in shard order, the label names, S and the mean's sha256.
Every image must decode to exactly the shard's pixels (PNG is lossless). Prints one JSON line {"ok": true, ...};
exits 3 (printing the module) when a module is missing, 1 on a mismatch.
"""
import glob
import hashlib
import io
import json
import os
import sys

FORMAT, ROOT, EXPECTED = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    import numpy as np
    if FORMAT == "parquet":
        import datasets
        import duckdb
        import polars as pl
        import pyarrow.parquet as pq
        from PIL import Image
    elif FORMAT == "webdataset":
        import tarfile
        import torch
        from torch.utils.data import DataLoader, IterableDataset
        from PIL import Image
    elif FORMAT == "tfrecord":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
except ImportError as e:
    print(e.name)
    sys.exit(3)

exp = json.load(open(EXPECTED))
S, NAMES, SPLITS = exp["size"], exp["labelNames"], exp["splits"]
DIR = os.path.join(ROOT, FORMAT)
desc = json.load(open(os.path.join(DIR, "dataset.json")))
checked = {}


def sha(pixels):
    a = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8))
    assert a.shape == (S, S, 3), a.shape
    return hashlib.sha256(a.tobytes()).hexdigest()


def same(what, got, want):
    if list(got) != list(want):
        raise AssertionError(f"{what}: got {list(got)[:5]}… ({len(got)}), expected {list(want)[:5]}… ({len(want)})")


assert desc["labelNames"] == NAMES, desc["labelNames"]
mean = np.load(os.path.join(DIR, "mean.npy"))
assert mean.dtype == np.float32 and mean.shape == (S, S, 3), (mean.dtype, mean.shape)
assert hashlib.sha256(mean.tobytes()).hexdigest() == exp["meanSha256"], "mean.npy differs from mean.arrow"
files = {s: [os.path.join(DIR, f) for f in desc["splits"][s]["files"]] for s in SPLITS}

if FORMAT == "parquet":
    dd = datasets.load_dataset("parquet", data_dir=DIR)
    for s, e in SPLITS.items():
        if not e["item_ids"]:
            continue
        ds = dd[s]
        assert isinstance(ds.features["label"], datasets.ClassLabel) and ds.features["label"].names == NAMES, ds.features
        assert isinstance(ds.features["image"], datasets.Image), ds.features
        same(f"datasets {s} item_id", ds["item_id"], e["item_ids"])
        same(f"datasets {s} label", ds["label"], e["labels"])
        same(f"datasets {s} pixels", [sha(row["image"].convert("RGB")) for row in ds], e["image_sha256"])
        table = pq.read_table(files[s])
        assert json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]["label"]["names"] == NAMES
        same(f"pyarrow {s} item_id", table.column("item_id").to_pylist(), e["item_ids"])
        same(f"pyarrow {s} pixels", [sha(Image.open(io.BytesIO(b["bytes"]))) for b in table.column("image").to_pylist()], e["image_sha256"])
        df = pl.read_parquet(files[s])
        same(f"polars {s} label", df["label"].to_list(), e["labels"])
        same(f"polars {s} genre", df["genre"].to_list(), [NAMES[l] for l in e["labels"]])
        con = duckdb.connect()
        rows = con.execute("SELECT item_id, label, image.bytes AS b FROM read_parquet(?, filename = true, file_row_number = true) ORDER BY filename, file_row_number", [files[s]]).fetchall()
        same(f"duckdb {s} item_id", [r[0] for r in rows], e["item_ids"])
        same(f"duckdb {s} pixels", [sha(Image.open(io.BytesIO(r[2]))) for r in rows], e["image_sha256"])
        counts = dict(con.execute("SELECT label, count(*) FROM read_parquet(?) GROUP BY label", [files[s]]).fetchall())
        assert counts == {l: e["labels"].count(l) for l in set(e["labels"])}, counts
        checked[s] = len(ds)

elif FORMAT == "webdataset":

    class TarSamples(IterableDataset):
        """WebDataset conventions with tarfile: members in order; a sample is the run of members sharing a key (the
        path up to the first dot of the file name); the extension is the rest."""

        def __init__(self, paths):
            self.paths = paths

        def __iter__(self):
            for p in self.paths:
                with tarfile.open(p) as tf_:
                    cur = None
                    for m in tf_:
                        base = os.path.basename(m.name)
                        key = os.path.join(os.path.dirname(m.name), base.split(".", 1)[0])
                        ext = base.split(".", 1)[1]
                        if cur is not None and cur["__key__"] != key:
                            yield self.decode(cur)
                            cur = None
                        cur = cur or {"__key__": key}
                        cur[ext] = tf_.extractfile(m).read()
                    if cur is not None:
                        yield self.decode(cur)

        @staticmethod
        def decode(sample):
            img = sample.get("png", sample.get("jpg"))
            meta = json.loads(sample["json"])
            assert int(sample["cls"]) == meta["label"] and sample["__key__"] == str(meta["item_id"]), sample["__key__"]
            pixels = torch.from_numpy(np.asarray(Image.open(io.BytesIO(img)).convert("RGB"), dtype=np.uint8).copy())
            return pixels, int(sample["cls"]), meta["item_id"]

    for s, e in SPLITS.items():
        if not e["item_ids"]:
            continue
        loader = DataLoader(TarSamples(files[s]), batch_size=4)
        got_ids, got_labels, got_sha = [], [], []
        for images, labels, ids in loader:
            assert images.dtype == torch.uint8 and tuple(images.shape[1:]) == (S, S, 3), images.shape
            got_ids += ids.tolist()
            got_labels += labels.tolist()
            got_sha += [sha(im.numpy()) for im in images]
        same(f"webdataset {s} item_id", got_ids, e["item_ids"])
        same(f"webdataset {s} label", got_labels, e["labels"])
        same(f"webdataset {s} pixels", got_sha, e["image_sha256"])
        checked[s] = len(got_ids)

elif FORMAT == "tfrecord":
    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
        "image/class/text": tf.io.FixedLenFeature([], tf.string),
        "bandcamp/item_id": tf.io.FixedLenFeature([], tf.int64),
    }
    for s, e in SPLITS.items():
        if not e["item_ids"]:
            continue
        ds = tf.data.TFRecordDataset(files[s]).map(lambda r: tf.io.parse_single_example(r, spec))
        got_ids, got_labels, got_sha = [], [], []
        for ex in ds:
            assert int(ex["image/height"]) == S and int(ex["image/width"]) == S
            label = int(ex["image/class/label"])
            assert ex["image/class/text"].numpy().decode() == NAMES[label]
            img = tf.io.decode_image(ex["image/encoded"], channels=3, expand_animations=False)
            got_ids.append(int(ex["bandcamp/item_id"]))
            got_labels.append(label)
            got_sha.append(sha(img.numpy()))
        same(f"tfrecord {s} item_id", got_ids, e["item_ids"])
        same(f"tfrecord {s} label", got_labels, e["labels"])
        same(f"tfrecord {s} pixels", got_sha, e["image_sha256"])
        checked[s] = len(got_ids)
else:
    raise SystemExit(f"unknown format {FORMAT}")

print(json.dumps({"ok": True, "format": FORMAT, "rows": checked}))
