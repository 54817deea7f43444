"""GPU: how long the AMP training cases of tests/supernet/test_train_gpu.py take, per scan implementation.

    python benchmarks/gpu_amp_train.py [--case all|bfloat16|float16|bfloat16-conv-gate-pooled] [--scan-impl torch|auto]
                                       [--print-autotuning] [--dump-every S]

Each case trains the test's tiny supernet (3 steps per phase under autocast) and prints its wall time, the all-T
PSNR and whether every checkpoint weight is finite. ``--scan-impl auto`` uses mamba-ssm's Triton kernels where they
import; their first use autotunes every kernel per shape and dtype key, which ``--print-autotuning`` lists
(``TRITON_PRINT_AUTOTUNING=1``) and ``--dump-every`` follows with all threads' stacks every S seconds (on an H200
two runs with that dump died of a segmentation fault exactly at a dump time, so leave it off unless you need it).
"""
from __future__ import annotations

import argparse
import faulthandler
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_test_module():
    spec = importlib.util.spec_from_file_location("test_train_gpu", ROOT / "tests" / "supernet" / "test_train_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", default="all", help="a case id of test_amp_phases_on_cuda, or all")
    p.add_argument("--scan-impl", default="torch", choices=["torch", "auto"])
    p.add_argument("--print-autotuning", action="store_true", help="set TRITON_PRINT_AUTOTUNING=1")
    p.add_argument("--dump-every", type=int, default=0, help="dump all stacks every S seconds (0: off)")
    args = p.parse_args(argv)
    if args.print_autotuning:
        os.environ["TRITON_PRINT_AUTOTUNING"] = "1"  # read when Triton is first imported
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_amp_train.py needs CUDA (torch.cuda.is_available() is False)")
    tests = load_test_module()
    cases = list(tests.CASES) if args.case == "all" else [args.case]
    if any(case not in tests.CASES for case in cases):
        p.error(f"--case must be all or one of {sorted(tests.CASES)}, got {args.case!r}")
    if args.dump_every > 0:
        faulthandler.enable()
        faulthandler.dump_traceback_later(args.dump_every, repeat=True)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, scan {args.scan_impl}", flush=True)
    rows = []
    for case in cases:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            metrics, ckpt = tests.train_case(case, args.scan_impl, Path(tmp) / "run")
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append((case, seconds, metrics["supernet"]["all_T"]["psnr"], tests.finite_weights(ckpt)))
    print(f"{'case':28s} {'wall s':>7s} {'all-T dB':>9s} finite")
    for case, seconds, psnr, finite in rows:
        print(f"{case:28s} {seconds:7.1f} {psnr:9.2f} {finite}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
