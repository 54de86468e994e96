#!/usr/bin/env python3
"""scikit-learn's RandomForestClassifier on a data set written by bench/baseline.bench.ts or test/baseline.test.ts.

Usage: sklearn_forest.py DIR [--trees 100] [--seed 0] [--jobs 1] [--max-features sqrt|log2|all|SHARE]

DIR holds meta.json ({"n_train", "n_test", "d", "classes"}) and raw files train_x.u8 ([n_train, d] uint8,
row-major), train_y.u8 ([n_train] uint8 labels), test_x.u8, test_y.u8. The forest is the study's:
RandomForestClassifier(n_estimators=trees) with scikit-learn's defaults (bootstrap samples of size n, Gini,
max_features='sqrt', grown until leaves are pure, min_samples_split=2).

Prints one JSON line: fit_seconds, predict_seconds, accuracy, mean_nodes, mean_depth, n_jobs, sklearn version.
Exits 3 (with a message) when numpy or scikit-learn is missing.
"""
import argparse
import json
import os
import sys
import time

try:
    import numpy as np
    import sklearn
    from sklearn.ensemble import RandomForestClassifier
except ImportError as e:  # the callers skip with this reason
    print(f"missing python module: {e.name}", file=sys.stderr)
    sys.exit(3)


def load(directory, split, n, d):
    x = np.fromfile(os.path.join(directory, f"{split}_x.u8"), dtype=np.uint8)
    y = np.fromfile(os.path.join(directory, f"{split}_y.u8"), dtype=np.uint8)
    if x.size != n * d or y.size != n:
        raise SystemExit(f"{directory}/{split}: expected {n} x {d} values and {n} labels, got {x.size} and {y.size}")
    return x.reshape(n, d), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--max-features", default="sqrt")
    a = ap.parse_args()
    with open(os.path.join(a.dir, "meta.json")) as f:
        meta = json.load(f)
    d = meta["d"]
    x_train, y_train = load(a.dir, "train", meta["n_train"], d)
    x_test, y_test = load(a.dir, "test", meta["n_test"], d)
    mf = a.max_features
    max_features = None if mf == "all" else mf if mf in ("sqrt", "log2") else float(mf)
    rf = RandomForestClassifier(n_estimators=a.trees, max_features=max_features, random_state=a.seed, n_jobs=a.jobs)
    t0 = time.perf_counter()
    rf.fit(x_train, y_train)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    predicted = rf.predict(x_test)
    pred = time.perf_counter() - t0
    print(json.dumps({
        "fit_seconds": fit,
        "predict_seconds": pred,
        "accuracy": float((predicted == y_test).mean()) if len(y_test) else 0.0,
        "mean_nodes": float(np.mean([e.tree_.node_count for e in rf.estimators_])),
        "mean_depth": float(np.mean([e.tree_.max_depth for e in rf.estimators_])),
        "n_jobs": a.jobs,
        "sklearn": sklearn.__version__,
    }))


if __name__ == "__main__":
    main()
