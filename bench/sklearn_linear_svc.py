#!/usr/bin/env python3
"""scikit-learn's LinearSVC (the study's second baseline) on a data set written by bench/baseline.bench.ts or
test/linear-svm.test.ts (the layout of bench/baseline_data.py: meta.json + raw uint8 files).

Usage: sklearn_linear_svc.py DIR [--C 1] [--seed 0] [--max-iter 1000] [--tol 1e-4]

Each feature is scaled to [0, 1] by MinMaxScaler fitted on the training set (the study), then
LinearSVC(C, tol, max_iter, random_state=seed) with scikit-learn's other defaults (squared hinge, L2, one-vs-rest,
intercept as a regularised constant feature; the dual problem, as liblinear solves it, since n < d here).

Prints one JSON line: fit_seconds, predict_seconds, accuracy, n_iter, predicted (test labels), sklearn version.
Exits 3 (with a message) when numpy or scikit-learn is missing.
"""
import argparse
import json
import time
import warnings

from baseline_data import load_dataset, np, sklearn  # exits 3 when numpy or scikit-learn is missing
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import LinearSVC


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    x_train, y_train, x_test, y_test = load_dataset(a.dir)
    t0 = time.perf_counter()
    scaler = MinMaxScaler().fit(x_train.astype(np.float64))
    svc = LinearSVC(C=a.C, tol=a.tol, max_iter=a.max_iter, random_state=a.seed, dual=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svc.fit(scaler.transform(x_train.astype(np.float64)), y_train)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    predicted = svc.predict(scaler.transform(x_test.astype(np.float64)))
    pred = time.perf_counter() - t0
    print(json.dumps({
        "fit_seconds": fit,
        "predict_seconds": pred,
        "accuracy": float((predicted == y_test).mean()),
        "n_iter": int(np.max(svc.n_iter_)),
        "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        "predicted": predicted.tolist(),
        "sklearn": sklearn.__version__,
    }))


if __name__ == "__main__":
    main()
