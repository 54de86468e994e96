#!/usr/bin/env python3
"""scikit-learn's RandomForestClassifier on a data set written by bench/baseline.bench.ts or test/baseline.test.ts.

Usage: sklearn_forest.py DIR [--trees 100] [--seed 0] [--jobs 1] [--max-features sqrt|log2|all|SHARE]

DIR is the layout of bench/baseline_data.py (meta.json + raw uint8 files). The forest is the study's:
RandomForestClassifier(n_estimators=trees) with scikit-learn's defaults (bootstrap samples of size n, Gini,
max_features='sqrt', grown until leaves are pure, min_samples_split=2).

Prints one JSON line: fit_seconds, predict_seconds, accuracy, mean_nodes, mean_depth, n_jobs, sklearn version.
Exits 3 (with a message) when numpy or scikit-learn is missing.
"""
import argparse
import json
import time

from baseline_data import load_dataset, np, sklearn  # exits 3 when numpy or scikit-learn is missing
from sklearn.ensemble import RandomForestClassifier


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--max-features", default="sqrt")
    a = ap.parse_args()
    x_train, y_train, x_test, y_test = load_dataset(a.dir)
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
