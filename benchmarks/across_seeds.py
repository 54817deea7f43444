"""Compare pipeline runs (seeds, recipes) from their stored benchmark records: per arch, the PSNR difference to each
run's own all-T, the PSNR itself (with its standard deviation: runs of one supernet fine-tuned with different
``--finetune-seed`` measure the fine-tuning's noise) and the measured speed-up, with the mean and range over the runs.

    python benchmarks/across_seeds.py RECORD... [--retime RECORD...]

A RECORD is a name in ``benchmarks/results`` (or a path to one) written by ``report.py run`` around
``benchmarks/reproduce.py``; its table is read back from the stored output, so the comparison needs no run folder
and anyone can rerun it on the committed records. ``--retime`` adds the speed-ups of ``benchmarks/retime.py``
records (e.g. at one thread), matched to the reproduce records by the run folder (``--out``). An arch whose
fine-tuning diverged shows ``diverged`` and is left out of its mean; ``n`` counts the runs that finished it.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

RETIME_TITLE = re.compile(r"^(?:\[\d+\] )?(\S+): \d+ round-robin rounds x \d+ runs at \S+, (\d+) threads")


def load_record(name: str) -> dict:
    path = Path(name) if name.endswith(".json") else RESULTS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path}: no such benchmark record (names are files of {RESULTS}, without .json)")
    record = json.loads(path.read_text())
    if "output" not in record or "command" not in record:
        raise SystemExit(f"{path}: not a report.py record (expected the keys command and output)")
    return record


def option(command: str, flag: str) -> str | None:
    """The value of ``flag`` in a recorded command line (``--set seed=N`` is looked up as flag ``seed``)."""
    args = shlex.split(command)
    for i, a in enumerate(args[:-1]):
        if flag.startswith("--") and a == flag:
            return args[i + 1]
        if a == "--set" and args[i + 1].startswith(flag + "="):
            return args[i + 1].split("=", 1)[1]
    return None


def retime_speedups(record: dict) -> dict[str, tuple[int, dict[str, float]]]:
    """{run folder: (threads, {arch: speed-up vs that run's all-T})} from a retime.py record's tables."""
    out: dict[str, tuple[int, dict[str, float]]] = {}
    current = None
    for line in record["output"].splitlines():
        m = RETIME_TITLE.match(line)
        if m:
            current = m.group(1).rstrip("/")
            out[current] = (int(m.group(2)), {})
        elif current and line.startswith("| ") and "`" in line:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            out[current][1][cells[1].strip("`")] = float(cells[3].rstrip("x"))
    if not out:
        raise SystemExit(f"record {record.get('name')}: no retime.py table in its output")
    return out


def summarise(values: list[float]) -> str:
    if not values:
        return "| | |"
    return f"| {statistics.mean(values):+.2f} | {min(values):+.2f}..{max(values):+.2f} |"


def spread(values: list[float]) -> str:
    """Mean, range and sample standard deviation (blank below two values) of absolute PSNRs, as table cells."""
    if not values:
        return "| | | |"
    sd = f"{statistics.stdev(values):.2f}" if len(values) > 1 else ""
    return f"| {statistics.mean(values):.2f} | {min(values):.2f}..{max(values):.2f} | {sd} |"


def psnr_cells(runs: list[dict], arch: str, key: str, fmt: str) -> tuple[list[str], list[float]]:
    """One table line's cells (blank: not in the run; ``diverged``) and the values that count, for ``key``."""
    cells, values = [], []
    for run in runs:
        row = next((r for r in run["rows"] if r["arch"] == arch), None)
        if row is None:
            cells.append("")
        elif "diverged" in row:
            cells.append("diverged")
        else:
            cells.append(format(row[key], fmt))
            values.append(row[key])
    return cells, values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="+", help="reproduce.py records (names in benchmarks/results)")
    ap.add_argument("--retime", action="append", default=[], help="retime.py records of the same runs")
    args = ap.parse_args()
    from supernet.pipeline import parse_table

    runs = []
    for name in args.records:
        record = load_record(name)
        try:
            rows = parse_table(record["output"])
        except ValueError as e:
            raise SystemExit(f"record {name}: {e}; expected a benchmarks/reproduce.py record") from None
        out = (option(record["command"], "--out") or "").rstrip("/")
        runs.append({"name": Path(name).stem if name.endswith(".json") else name, "out": out, "rows": rows,
                     "seed": option(record["command"], "seed") or "0",
                     "finetune_seed": option(record["command"], "--finetune-seed")})
    timed: dict[str, tuple[int, dict[str, float]]] = {}
    for name in args.retime:
        timed.update(retime_speedups(load_record(name)))
    archs: list[str] = []
    for run in runs:  # first seen first; the knee and best-under-budget rows often repeat an arch
        for r in run["rows"]:
            if r["arch"] not in archs:
                archs.append(r["arch"])
    print("runs:")
    for i, run in enumerate(runs):
        t = timed.get(run["out"])
        ft = f", fine-tuning seed {run['finetune_seed']}" if run["finetune_seed"] is not None else ""
        print(f"  [{i}] {run['name']} (seed {run['seed']}{ft}; {run['out'] or 'no --out'}"
              + (f"; retimed at {t[0]} thread{'s' if t[0] != 1 else ''})" if t else ")"))
    cols = " | ".join(f"[{i}]" for i in range(len(runs)))
    print(f"\ndPSNR vs each run's own all-T (dB)\n\n| arch | {cols} | mean | range | n |\n"
          f"|---|{'---|' * len(runs)}---|---|---|")
    for arch in archs:
        cells, values = psnr_cells(runs, arch, "dpsnr", "+.2f")
        print(f"| `{arch}` | {' | '.join(cells)} {summarise(values)} {len(values)} |")
    print(f"\nPSNR (dB)\n\n| arch | {cols} | mean | range | sd | n |\n|---|{'---|' * len(runs)}---|---|---|---|")
    for arch in archs:
        cells, values = psnr_cells(runs, arch, "psnr", ".2f")
        print(f"| `{arch}` | {' | '.join(cells)} {spread(values)} {len(values)} |")
    for title, lookup in (("measured in the run (its own threads)", lambda run, arch: next(
            (r.get("speedup") for r in run["rows"] if r["arch"] == arch), None)),
                          ("retimed (retime.py)", lambda run, arch: timed.get(run["out"], (0, {}))[1].get(arch))):
        if title.startswith("retimed") and not timed:
            continue
        print(f"\nspeed-up over the run's all-T, {title}\n\n| arch | {cols} | median |\n|---|{'---|' * len(runs)}---|")
        for arch in archs:
            vals = [lookup(run, arch) for run in runs]
            got = [v for v in vals if v is not None]
            print(f"| `{arch}` | {' | '.join('' if v is None else f'{v:.2f}x' for v in vals)} | "
                  f"{f'{statistics.median(got):.2f}x' if got else ''} |")


if __name__ == "__main__":
    main()
