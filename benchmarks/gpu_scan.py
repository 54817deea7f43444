"""GPU: the chunked PyTorch scan vs mamba-ssm's fused SSD kernel, and one SSM block forward+backward, per path.

    python benchmarks/gpu_scan.py [--batch 8] [--hw 128] [--dim 48]

Prints the median time of 20 runs (CUDA events) and the max relative difference of the outputs. Needs CUDA; the
``cuda`` rows need mamba-ssm (``pip install 'ens-restore[cuda]'``).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from supernet.scan import chunked_scan, cuda_scan, mamba_available  # noqa: E402
from supernet.ssm import SSMBlock  # noqa: E402


def cuda_time(fn, runs: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--hw", type=int, default=128)
    ap.add_argument("--dim", type=int, default=48)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, mamba kernels: {mamba_available()}")
    b, L, p, n = args.batch, args.hw * args.hw, args.dim, 4
    x = torch.randn(b, L, 1, p, device="cuda")
    dt = torch.rand(b, L, 1, device="cuda") * 0.1
    A = -torch.ones(1, device="cuda")
    B, C = torch.randn(b, L, n, device="cuda"), torch.randn(b, L, n, device="cuda")
    impls = {"torch": chunked_scan} | ({"cuda": cuda_scan} if mamba_available() else {})
    ref = chunked_scan(x, dt, A, B, C, None, 32)
    for name, fn in impls.items():
        ms = cuda_time(lambda: fn(x, dt, A, B, C, None, 32))
        err = ((fn(x, dt, A, B, C, None, 32) - ref).abs().max() / ref.abs().max()).item()
        print(f"scan {name:6s} (b={b}, L={L}, p={p}, n={n}): {ms:8.3f} ms  rel diff vs torch {err:.2e}")
    xb = torch.randn(b, args.dim, args.hw, args.hw, device="cuda", requires_grad=True)
    for name in impls:
        torch.manual_seed(0)
        block = SSMBlock(args.dim, scan_impl=name).cuda()

        def step():
            block(xb).square().mean().backward()
        print(f"SSM block fwd+bwd {name:6s} ({b}x{args.dim}x{args.hw}x{args.hw}): {cuda_time(step):8.3f} ms")


if __name__ == "__main__":
    main()
