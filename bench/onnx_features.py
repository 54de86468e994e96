"""onnxruntime's CPU feature extraction speed on an ONNX file, for bench/features.bench.ts.

    python3 onnx_features.py MODEL.onnx FEATURE_TENSOR BATCH SIZE ROUNDS THREADS

Runs MODEL.onnx up to FEATURE_TENSOR (added as a graph output) on a seeded [BATCH, 3, SIZE, SIZE] float32 input with
intra_op_num_threads = inter_op_num_threads = THREADS, two warm-up runs, then ROUNDS timed runs; prints JSON
{"onnxruntime": version, "images_per_s": best round's images/s, "rounds": [...]}.
"""
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort


def main():
    path, feature, batch, size, rounds, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    m = onnx.load(path)
    if feature not in {o.name for o in m.graph.output}:
        m.graph.output.append(onnx.helper.make_empty_tensor_value_info(feature))
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "m.onnx")
        onnx.save(m, p)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = threads
        sess = ort.InferenceSession(p, opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    name = sess.get_inputs()[0].name
    for _ in range(2):
        sess.run([feature], {name: x})
    speeds = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        sess.run([feature], {name: x})
        speeds.append(batch / (time.perf_counter() - t0))
    print(json.dumps({"onnxruntime": ort.__version__, "images_per_s": max(speeds), "rounds": speeds}))


if __name__ == "__main__":
    main()
