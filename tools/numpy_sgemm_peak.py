#!/usr/bin/env python3
"""Single-thread float32 matrix-multiply peak of numpy's BLAS, to compare with torchlet's gemm.

Prints GFLOP/s (2 * n^3 / best time) for square sgemm at a few sizes, and for the three matrix
products of the tutorial network's conv2 (as im2col + gemm computes them). The thread count is
pinned to 1 before numpy is imported (torchlet's core has no threads).

Run: python3 tools/numpy_sgemm_peak.py
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402


def gflops(m, n, k, repeat_s=1.0):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = a @ b  # warm up
    best = float("inf")
    start = time.perf_counter()
    runs = 0
    while runs < 3 or time.perf_counter() - start < repeat_s:
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return 2.0 * m * n * k / best / 1e9


def main():
    try:
        from threadpoolctl import threadpool_info

        libs = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} thread)" for i in threadpool_info())
        print(f"BLAS: {libs}")
    except ImportError:
        pass
    for n in (1024, 512, 256):
        print(f"sgemm {n}x{n}x{n}: {gflops(n, n, n):7.1f} GFLOP/s")
    # conv2 of the tutorial network, per sample: W[32, 800] . col[800, 256]
    print(f"sgemm 32x256x800 (conv2 forward, one sample): {gflops(32, 256, 800):7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
