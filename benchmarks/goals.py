"""Where the proxy-scale speed/quality goal stands, read from the stored pipeline records (no new training).

    python benchmarks/goals.py [RECORD...] [--tolerance 0.1] [--speedup 3] [--scale proxy]

The goal (issue 6): per task, an arch that ENS chose (a table row labelled ``ENS ...``: the search's knee, its best
arch under the budget, or the re-ranked choice) measured end to end at least ``--speedup`` times faster than all-T
with a PSNR at most ``--tolerance`` dB below all-T trained with the same budget in the same run. Rows a user named
(``--arch``) and all-S show what the recipe can reach but are not the pipeline's choice; they are reported apart.

Without RECORD arguments every ``reproduce_*`` record in ``benchmarks/results`` whose command ran
``benchmarks/reproduce.py`` at ``--scale`` is read. For each record it prints the best ENS-chosen row at or past the
speed-up (the smallest PSNR loss), the fastest ENS-chosen row within the tolerance, and the best row of any kind past
the speed-up; then, per task, which records meet the goal, else the closest ENS choice on each of the two axes.
dPSNR and speed-up are read as the record's table prints them (two decimals; the speed-up is the run's own end-to-end
measurement); an arch whose fine-tuning diverged counts as reaching nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from across_seeds import load_record, option  # noqa: E402  (this folder is on the path of a script run from it)
from supernet.pipeline import parse_table  # noqa: E402


def default_records(scale: str) -> dict[str, dict]:
    """Every stored ``benchmarks/reproduce.py`` record at ``scale``, by path (each file read once)."""
    records = {str(path): load_record(str(path)) for path in sorted(RESULTS.glob("reproduce_*.json"))}
    return {path: r for path, r in records.items()
            if "benchmarks/reproduce.py" in r["command"] and (option(r["command"], "--scale") or "proxy") == scale}


def best_row(rows: list[dict], speedup: float) -> dict | None:
    """The row with the highest dPSNR among those measured at least ``speedup`` x faster (None if none is)."""
    fast = [r for r in rows if "diverged" not in r and r["speedup"] >= speedup]
    return max(fast, key=lambda r: (r["dpsnr"], r["speedup"]), default=None)


def describe(row: dict | None) -> str:
    if row is None:
        return "none"
    return f"{row['label']} `{row['arch']}` {row['dpsnr']:+.2f} dB at {row['speedup']:.2f}x"


def within(row: dict, tolerance: float) -> bool:
    """Whether the row's PSNR is at most ``tolerance`` dB below all-T (as printed, so -0.10 is within 0.1)."""
    return row["dpsnr"] >= -tolerance - 1e-9


def fastest_within(rows: list[dict], tolerance: float) -> dict | None:
    """The fastest row at most ``tolerance`` dB below all-T (None if none is)."""
    close = [r for r in rows if "diverged" not in r and within(r, tolerance)]
    return max(close, key=lambda r: (r["speedup"], r["dpsnr"]), default=None)


def assess(name: str, record: dict, tolerance: float, speedup: float) -> dict:
    try:
        rows = parse_table(record["output"])
    except ValueError as e:
        raise SystemExit(f"record {name}: {e}; expected a benchmarks/reproduce.py record") from None
    chosen = [r for r in rows if r["label"].startswith("ENS ")]
    ens = best_row(chosen, speedup)
    return {"name": name, "task": option(record["command"], "--task") or "?",
            "seed": option(record["command"], "seed") or "0", "ens": ens,
            "ens_close": fastest_within(chosen, tolerance),
            "any": best_row([r for r in rows if r["label"] != "all-T"], speedup),
            "met": ens is not None and within(ens, tolerance)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="*", help="reproduce.py records (names in benchmarks/results or paths); "
                                               "default: all of them at --scale")
    ap.add_argument("--tolerance", type=float, default=0.1, help="largest PSNR loss to all-T, dB (default 0.1)")
    ap.add_argument("--speedup", type=float, default=3.0, help="smallest measured speed-up over all-T (default 3)")
    ap.add_argument("--scale", default="proxy", choices=("proxy", "full"), help="which records to read by default")
    args = ap.parse_args()
    if args.tolerance < 0:
        ap.error(f"--tolerance must be >= 0 dB, got {args.tolerance}")
    if args.speedup <= 0:
        ap.error(f"--speedup must be > 0, got {args.speedup}")
    records = {n: load_record(n) for n in args.records} if args.records else default_records(args.scale)
    if not records:
        raise SystemExit(f"no benchmarks/reproduce.py records at --scale {args.scale} in {RESULTS}")
    results = [assess(Path(n).stem if n.endswith(".json") else n, record, args.tolerance, args.speedup)
               for n, record in records.items()]
    goal = f"an ENS-chosen arch >= {args.speedup:g}x measured, within {args.tolerance:g} dB of all-T"
    print(f"goal: {goal}\n\n| task | seed | record | best ENS choice >= {args.speedup:g}x | met | "
          f"fastest ENS choice within {args.tolerance:g} dB | best row of any kind >= {args.speedup:g}x |\n"
          "|---|---|---|---|---|---|---|")
    tasks = sorted({r["task"] for r in results})
    closeness = lambda r: r["ens"]["dpsnr"] if r["ens"] else float("-inf")  # noqa: E731
    for task in tasks:  # within a task the closest records come last
        for r in sorted((r for r in results if r["task"] == task), key=closeness):
            print(f"| {task} | {r['seed']} | {r['name']} | {describe(r['ens'])} | {'yes' if r['met'] else 'no'} | "
                  f"{describe(r['ens_close'])} | {describe(r['any'])} |")
    print(f"\nper task ({len(results)} records; goal: {goal})")
    for task in tasks:
        mine = [r for r in results if r["task"] == task]
        met = [r for r in mine if r["met"]]
        print(f"  {task}: {len(met)} of {len(mine)} records meet it"
              + "".join(f"\n    met: seed {r['seed']}, {describe(r['ens'])} ({r['name']})" for r in met))
        closest = max((r for r in mine if r["ens"]), key=closeness, default=None)
        if closest and not closest["met"]:
            print(f"    closest at >= {args.speedup:g}x: seed {closest['seed']}, {describe(closest['ens'])} "
                  f"({closest['name']})")
        fastest = max((r for r in mine if r["ens_close"] and not r["met"]),
                      key=lambda r: r["ens_close"]["speedup"], default=None)
        if fastest:
            print(f"    fastest within {args.tolerance:g} dB (not meeting it): seed {fastest['seed']}, "
                  f"{describe(fastest['ens_close'])} ({fastest['name']})")


if __name__ == "__main__":
    main()
