"""The data-set layout that bench/baseline.bench.ts, test/baseline.test.ts and test/linear-svm.test.ts write for the
scikit-learn baselines (bench/sklearn_forest.py, bench/sklearn_linear_svc.py). Importing it exits 3 with a message
when numpy or scikit-learn is missing.

DIR holds meta.json ({"n_train", "n_test", "d", "classes"}) and raw files train_x.u8 ([n_train, d] uint8, row-major),
train_y.u8 ([n_train] uint8 labels), test_x.u8 and test_y.u8.
"""
import json
import os
import sys

try:
    import numpy as np
    import sklearn  # noqa: F401 (the callers' dependency, checked here once)
except ImportError as e:  # the callers (benches, tests) skip with this reason
    print(f"missing python module: {e.name}", file=sys.stderr)
    sys.exit(3)


def load(directory, split, n, d):
    """[n, d] uint8 features and [n] uint8 labels of one split; exits with a message when the sizes are off."""
    x = np.fromfile(os.path.join(directory, f"{split}_x.u8"), dtype=np.uint8)
    y = np.fromfile(os.path.join(directory, f"{split}_y.u8"), dtype=np.uint8)
    if x.size != n * d or y.size != n:
        raise SystemExit(f"{directory}/{split}: expected {n} x {d} values and {n} labels, got {x.size} and {y.size}")
    return x.reshape(n, d), y


def load_dataset(directory):
    """(x_train, y_train, x_test, y_test) of DIR."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    d = meta["d"]
    return (*load(directory, "train", meta["n_train"], d), *load(directory, "test", meta["n_test"], d))
