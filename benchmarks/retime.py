"""Time a finished pipeline run's ONNX files again, for longer, and show how much its measured speed-ups move.

    python benchmarks/retime.py --run runs/reproduce/deblur-deep-proxy [--rounds 10] [--repeats 7]

The pipeline's measured column (``make demo``, ``benchmarks/reproduce.py``) is one pass of a few round-robin
rounds; on a shared host a burst of load can move a ratio by several percent. This reruns the same timing on the
exported models listed in ``<run>/summary.json`` (same local backend, input shape, and threads unless given): a fresh
onnxruntime process per model and round, the archs in round-robin order. It prints, per arch, the median of the
pooled runs, the speed-up over all-T as the ratio of those medians, and the spread of the per-round speed-ups
(each round's median vs the same round's all-T), so a reader can see whether a ratio near a goal is above it
or within the noise. Nothing is retrained; the summary is not changed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_run(run: Path) -> dict:
    path = run / "summary.json"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; --run must be a finished pipeline run (make demo, reproduce.py)")
    summary = json.loads(path.read_text())
    rows = summary.get("rows") or []
    missing = [r["arch"] for r in rows if not Path(r.get("onnx", "")).is_file()]
    if not rows or missing or not any(r["label"] == "all-T" for r in rows):
        raise SystemExit(f"{path}: expected rows with an all-T row and existing ONNX files; missing: {missing}")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a pipeline output folder holding summary.json")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per model and round (after 2 warm-ups)")
    ap.add_argument("--threads", type=int, default=None, help="default: the run's own")
    args = ap.parse_args()
    if args.rounds < 1 or args.repeats < 1:
        ap.error("--rounds and --repeats must be >= 1")
    run = Path(args.run)
    summary = load_run(run)
    threads = args.threads or summary["threads"]

    import onnx as onnx_lib

    from supernet.pipeline import time_rounds

    onnx = {r["arch"]: r["onnx"] for r in summary["rows"]}
    base = next(r["arch"] for r in summary["rows"] if r["label"] == "all-T")
    # the models were exported at the run's resolution with a fixed input shape: time them at exactly that
    dims = onnx_lib.load(next(iter(onnx.values())), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value for d in dims)

    def report(i: int, medians: dict[str, float]) -> None:
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{a} {ms:.1f} ms" for a, ms in medians.items()), flush=True)

    runs = time_rounds(onnx, shape, threads, args.repeats, args.rounds, on_round=report)
    pooled = {a: [t for r in v for t in r] for a, v in runs.items()}
    per_round = {a: [statistics.median(r) for r in v] for a, v in runs.items()}
    medians = {a: statistics.median(v) for a, v in pooled.items()}
    print(f"\n{run}: {args.rounds} round-robin rounds x {args.repeats} runs at {shape[2]}x{shape[3]}, "
          f"{threads} threads, onnxruntime (median of the pooled runs; per-round speed-ups: median and range over "
          "the rounds)\n")
    print("| | arch | median ms | speed-up vs all-T | per-round speed-up | the run's own measured speed-up |")
    print("|---|---|---|---|---|---|")
    for r in summary["rows"]:
        a = r["arch"]
        ratios = [t / s for t, s in zip(per_round[base], per_round[a])]
        print(f"| {r['label']} | `{a}` | {medians[a]:.1f} | {medians[base] / medians[a]:.2f}x | "
              f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}..{max(ratios):.2f}) | "
              f"{r['speedup_vs_all_T']:.2f}x |")


if __name__ == "__main__":
    main()
