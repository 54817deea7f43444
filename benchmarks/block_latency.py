"""Per-stage transformer vs SSM block latency, and whole all-T vs all-S network latency, on this CPU.

    python benchmarks/block_latency.py [--size 256] [--threads 2] [--repeats 7] [--runtimes torch,ort]
                                       [--config configs/denoise.yaml] [--set model.ssm.norm=none] [--json out.json]

Each runtime is measured in its own process with the same allocator settings (glibc heap reuse, so page faults
from returning buffers to the OS do not slow one side; see shared notes). Within a process the T and S
candidates of a stage are timed in alternating rounds so both see the same machine load (onnxruntime sessions with
idle-thread spinning off, else one session's spinning pool steals the cores from the other); we report the median of
``--repeats`` runs after ``--warmup`` runs, and ratios of those medians. Inputs are contiguous NCHW for both
blocks (the SSM block pays its layout change). Batch 1, float32.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ALLOCATOR_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "-1", "MALLOC_TOP_PAD_": "268435456"}


def timer(fn, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def worker(runtime: str, size: int, threads: int, warmup: int, repeats: int, model_args: dict) -> dict:
    import torch

    from supernet import STAGES, Arch, HybridUNet
    from supernet.export import export_onnx, ort_session

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    net = HybridUNet(**model_args).eval()
    tmp = Path(tempfile.mkdtemp(prefix="ens_bench_"))

    def runner(module, x, name):
        if runtime == "torch":
            def run():
                with torch.inference_mode():
                    module(x)
            return run
        # no spinning: the T and S sessions alternate, and one's busy-waiting pool would slow the other
        sess = ort_session(export_onnx(module, x, tmp / f"{name}.onnx"), threads, spin=False)
        feed = {sess.get_inputs()[0].name: x.numpy()}
        return lambda: sess.run(None, feed)

    rows, seen = [], {}
    for si, stage in enumerate(STAGES):
        c, s = net.stage_dims[si], size // net.stage_scales[si]
        key = (c, s, net.stage_heads[si])
        if key not in seen:
            slot = net.slots()[sum(net.stage_sizes[:si])][2]
            x = torch.randn(1, c, s, s)
            fns = {op: runner(slot.candidates[op], x, f"{op}_{c}_{s}") for op in ("transformer", "ssm")}
            for fn in fns.values():
                timer(fn, warmup, 0)
            times = {op: [] for op in fns}
            for _ in range(repeats):  # alternate so both candidates see the same load
                for op, fn in fns.items():
                    times[op] += timer(fn, 0, 1)
            seen[key] = {op: statistics.median(t) for op, t in times.items()}
        m = seen[key]
        rows.append({"stage": stage, "channels": c, "hw": s, "heads": net.stage_heads[si],
                     "transformer_ms": m["transformer"], "ssm_ms": m["ssm"], "ratio": m["ssm"] / m["transformer"]})
        print(f"[{runtime}] {stage:10s} {c:4d}ch {s:4d}x{s:<4d} T {m['transformer']:8.1f} ms  S {m['ssm']:7.1f} ms"
              f"  ratio {m['ssm'] / m['transformer']:.3f}", file=sys.stderr, flush=True)
    nets = {}
    x = torch.rand(1, model_args.get("inp_channels", 3), size, size)
    for letter in ("T", "S"):
        sub = net.extract(Arch.uniform(net, letter)).eval()
        nets[letter] = runner(sub, x, f"net_{letter}")
        timer(nets[letter], warmup, 0)
    whole = {"T": [], "S": []}
    for _ in range(repeats):
        for letter, fn in nets.items():
            whole[letter] += timer(fn, 0, 1)
    med = {k: statistics.median(v) for k, v in whole.items()}
    print(f"[{runtime}] whole network all-T {med['T']:.0f} ms  all-S {med['S']:.0f} ms  speed-up "
          f"{med['T'] / med['S']:.2f}x", file=sys.stderr, flush=True)
    return {"runtime": runtime, "stages": rows, "all_T_ms": med["T"], "all_S_ms": med["S"],
            "speedup": med["T"] / med["S"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--runtimes", default="torch,ort")
    ap.add_argument("--config", default=None, help="YAML whose model: mapping sets the network (default: Restormer)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. model.ssm.norm=none (repeatable)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.repeats < 5:
        ap.error("--repeats must be >= 5 (medians of at least 5 runs)")
    from latency_lut.cli import load_model_config  # config + overrides -> HybridUNet args (Restormer by default)

    model_args = load_model_config(args.config, args.overrides)
    if args.worker:
        print(json.dumps(worker(args.worker, args.size, args.threads, args.warmup, args.repeats, model_args)))
        return
    results = []
    env = {**os.environ, **ALLOCATOR_ENV, "OMP_NUM_THREADS": str(args.threads)}
    for runtime in args.runtimes.split(","):
        cmd = [sys.executable, __file__, "--worker", runtime, "--size", str(args.size), "--threads",
               str(args.threads), "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
        if args.config:
            cmd += ["--config", args.config]
        for assignment in args.overrides:
            cmd += ["--set", assignment]
        out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"\nBlock latency at {args.size}x{args.size}, batch 1, {args.threads} threads, median of {args.repeats} "
          f"runs after {args.warmup} warm-up; ratio = SSM / transformer\n")
    head = "| stage | channels | input | " + " | ".join(
        f"{r['runtime']} T ms | {r['runtime']} S ms | {r['runtime']} ratio" for r in results) + " |"
    print(head)
    print("|" + "---|" * (3 + 3 * len(results)))
    for i, row in enumerate(results[0]["stages"]):
        cells = [f"{r['stages'][i]['transformer_ms']:.1f} | {r['stages'][i]['ssm_ms']:.1f} | "
                 f"{r['stages'][i]['ratio']:.3f}" for r in results]
        print(f"| {row['stage']} | {row['channels']} | {row['hw']}x{row['hw']} | " + " | ".join(cells) + " |")
    print()
    for r in results:
        worst = max(s["ratio"] for s in r["stages"])
        print(f"{r['runtime']}: whole network all-T {r['all_T_ms']:.0f} ms, all-S {r['all_S_ms']:.0f} ms -> "
              f"all-S is {r['speedup']:.2f}x faster; worst block ratio {worst:.3f} "
              f"(targets: <= 0.25 per block, >= 4x whole)")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "threads": args.threads,
                                               "repeats": args.repeats, "results": results}, indent=2))


if __name__ == "__main__":
    main()
