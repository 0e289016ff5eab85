"""This machine's float32 matrix-multiply speed: the practical limit the speed benchmarks
(``bench-predict``, ``bench-train``) report their GFLOP/s against."""
from __future__ import annotations

import statistics
import time

import numpy as np


def timed(fn, iterations: int) -> tuple[float, float]:
    """(best, median) seconds of ``fn()`` over ``iterations`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(max(1, iterations)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def matmul_gflops(n: int, threads: int, repeats: int = 5) -> dict:
    """GFLOP/s (2 n^3 FLOPs per product) of float32 n x n matrix products, best of ``repeats``
    after one warm-up: ``torch.mm`` and numpy's matmul, each on ``threads`` threads.
    Returns {"n", "torch_gflops", "numpy_gflops"}."""
    import torch  # lazy: torch only where a matmul is timed; kept out of `fhbiometry --help`
    from threadpoolctl import threadpool_limits  # lazy: threadpoolctl (scikit-learn's dependency) only where a matmul is timed

    torch.set_num_threads(int(threads))
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    flops = 2.0 * n ** 3
    best_torch, _ = timed(lambda: torch.mm(ta, tb), repeats)
    with threadpool_limits(limits=threads):
        best_numpy, _ = timed(lambda: a @ b, repeats)
    return {"n": n, "torch_gflops": flops / best_torch / 1e9, "numpy_gflops": flops / best_numpy / 1e9}


def cuda_matmul_gflops(n: int, repeats: int = 5) -> dict:
    """GFLOP/s of float32 n x n ``torch.mm`` on the current CUDA device (best of ``repeats`` after
    one warm-up, each product waited for), with the TF32 setting torch has for matmuls (off by
    default: IEEE float32). Returns {"n", "torch_gflops", "tf32"}."""
    import torch  # lazy: torch only where a matmul is timed

    gen = torch.Generator(device="cuda").manual_seed(0)
    a, b = (torch.randn((n, n), device="cuda", generator=gen) for _ in range(2))

    def product():
        torch.mm(a, b)
        torch.cuda.synchronize()

    best, _ = timed(product, repeats)
    return {"n": n, "torch_gflops": 2.0 * n ** 3 / best / 1e9,
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32)}
