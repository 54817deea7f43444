"""Time a finished pipeline run's ONNX files again, for longer, and show how much its measured speed-ups move.

    python benchmarks/retime.py --run runs/reproduce/deblur-deep-proxy [--rounds 10] [--repeats 7]
    python benchmarks/retime.py --run RUN_A --run RUN_B   # several runs in the same rounds: their rows compare

The pipeline's measured column (``make demo``, ``benchmarks/reproduce.py``) is one pass of a few round-robin
rounds; on a shared host a burst of load can move a ratio by several percent. This reruns the same timing on the
exported models listed in ``<run>/summary.json`` (same local backend, input shape, and threads unless given): a fresh
onnxruntime process per model and round, the archs in round-robin order. It prints, per arch, the median of the
pooled runs, the speed-up over all-T as the ratio of those medians, and the spread of the per-round speed-ups
(each round's median vs the same round's all-T), so a reader can see whether a ratio near a goal is above it
or within the noise. With several ``--run``, every run's models are timed in the same rounds (so two recipes'
all-S compare directly, not across separate runs' timings), each run gets its own table, and a last column gives
each row's speed-up over the first run's all-T. Nothing is retrained; the summaries are not changed.
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


def input_shape(path: str) -> tuple[int, ...]:
    import onnx as onnx_lib

    dims = onnx_lib.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, action="append",
                    help="a pipeline output folder holding summary.json; repeat it to time several runs together")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per model and round (after 2 warm-ups)")
    ap.add_argument("--threads", type=int, default=None, help="default: the runs' own (they must agree)")
    args = ap.parse_args()
    if args.rounds < 1 or args.repeats < 1:
        ap.error("--rounds and --repeats must be >= 1")
    runs = [Path(r) for r in args.run]
    summaries = [load_run(run) for run in runs]
    own_threads = {s["threads"] for s in summaries}
    if args.threads is None and len(own_threads) > 1:
        ap.error(f"the runs were timed with different threads ({sorted(own_threads)}); pass --threads")
    threads = args.threads or summaries[0]["threads"]

    from supernet.pipeline import time_rounds

    # one model per (run, arch): rows of a run that share an arch (all-S, knee, ...) share its timing
    onnx = {f"{i}:{r['arch']}": r["onnx"] for i, s in enumerate(summaries) for r in s["rows"]}
    # the models were exported at the runs' resolution with a fixed input shape: time them at exactly that
    shapes = {name: input_shape(path) for name, path in onnx.items()}
    shape = next(iter(shapes.values()))
    if any(s != shape for s in shapes.values()):
        raise SystemExit("the runs' ONNX inputs differ, so their latencies do not compare: "
                         + ", ".join(f"{onnx[n]} {s}" for n, s in shapes.items()))
    several = len(runs) > 1

    def short(name: str) -> str:
        i, arch = name.split(":", 1)
        return f"[{i}] {arch}" if several else arch

    def report(i: int, medians: dict[str, float]) -> None:
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{short(a)} {ms:.1f} ms" for a, ms in medians.items()),
              flush=True)

    timed = time_rounds(onnx, shape, threads, args.repeats, args.rounds, on_round=report)
    per_round = {a: [statistics.median(r) for r in v] for a, v in timed.items()}
    medians = {a: statistics.median([t for r in v for t in r]) for a, v in timed.items()}
    bases = [f"{i}:{next(r['arch'] for r in s['rows'] if r['label'] == 'all-T')}" for i, s in enumerate(summaries)]
    for i, (run, summary, base) in enumerate(zip(runs, summaries, bases)):
        print(f"\n{'[%d] ' % i if several else ''}{run}: {args.rounds} round-robin rounds x {args.repeats} runs at "
              f"{shape[2]}x{shape[3]}, {threads} threads, onnxruntime (median of the pooled runs; per-round "
              "speed-ups: median and range over the rounds)" + ("; every run's models timed in the same rounds, so "
                                                               "rows of different runs compare" if several else "")
              + "\n")
        extra = " vs [0]'s all-T |" if several else ""
        print("| | arch | median ms | speed-up vs all-T | per-round speed-up | the run's own measured speed-up |"
              + extra)
        print("|---|---|---|---|---|---|" + ("---|" if several else ""))
        for r in summary["rows"]:
            a = f"{i}:{r['arch']}"
            ratios = [t / s for t, s in zip(per_round[base], per_round[a])]
            print(f"| {r['label']} | `{r['arch']}` | {medians[a]:.1f} | {medians[base] / medians[a]:.2f}x | "
                  f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}..{max(ratios):.2f}) | "
                  f"{r['speedup_vs_all_T']:.2f}x |"
                  + (f" {medians[bases[0]] / medians[a]:.2f}x |" if several else ""))


if __name__ == "__main__":
    main()
