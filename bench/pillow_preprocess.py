"""Pillow baseline for bench/preprocess.bench.ts: decode each image to 256x256 RGB bytes with N processes.

Per image: Image.open, draft('RGB', (S, S)) (JPEG DCT scaling on load), convert('RGB'), resize((S, S)), tobytes().
Usage: python3 pillow_preprocess.py LIST_FILE SIZE PROCESSES  (LIST_FILE: one image path per line)
Prints one JSON line: {"images": n, "seconds": t, "bytes": total_bytes, "cpu_seconds": c, "cpu_total_seconds": ct}; the
timing covers only the work, after the worker processes have started; cpu_seconds is the workers' CPU time inside
work() (process_time), summed; cpu_total_seconds is all CPU of this process and its workers for the whole run
(interpreter start-up, imports, the pool's pickling and the warm-up included: an upper bound).
"""
import json
import resource
import sys
import time
from multiprocessing import Pool

from PIL import Image

SIZE = 256


def work(path):
    c0 = time.process_time()
    with Image.open(path) as im:
        im.draft('RGB', (SIZE, SIZE))
        im = im.convert('RGB').resize((SIZE, SIZE))
        n = len(im.tobytes())
    return n, time.process_time() - c0


def init(size):
    global SIZE
    SIZE = size


def main():
    list_file, size, procs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(list_file) as f:
        paths = [line.strip() for line in f if line.strip()]
    with Pool(procs, initializer=init, initargs=(size,)) as pool:
        pool.map(work, paths[: procs * 2], chunksize=1)  # warm-up: start the workers, import PIL plugins
        t0 = time.perf_counter()
        results = list(pool.imap(work, paths, chunksize=16))
        t = time.perf_counter() - t0
    total = sum(n for n, _ in results)
    cpu = sum(c for _, c in results)
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_total = sum(r.ru_utime + r.ru_stime for r in ru)
    print(json.dumps({"images": len(paths), "seconds": t, "bytes": total, "cpu_seconds": cpu, "cpu_total_seconds": cpu_total}))


if __name__ == '__main__':
    main()
