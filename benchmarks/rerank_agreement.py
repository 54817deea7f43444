#!/usr/bin/env python3
"""How well the supernet's score and each re-ranking rung predict the fine-tuned archs: no new training.

  python benchmarks/rerank_agreement.py runs/reproduce/<run>   (a reproduce.py --rerank run)

From ``<run>/search/rerank/reranked.json`` (rerank.py's rungs) and ``<run>/summary.json`` (the full fine-tunings of
the table) it prints, per rung, Kendall tau and Spearman rho between the supernet's score and the rung's fine-tuned
PSNR over the rung's archs; between consecutive rungs over the archs both trained; and a table of every arch the run
fine-tuned in full that a rung also trained, with each of its PSNRs.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy.stats import kendalltau, spearmanr


def agreement(a: list[float], b: list[float]) -> str:
    if len(a) < 3:
        return f"n/a (n={len(a)})"
    return f"Kendall tau {kendalltau(a, b).statistic:+.3f}, Spearman {spearmanr(a, b).statistic:+.3f} (n={len(a)})"


def report(run: Path) -> list[str]:
    rerank_file, summary_file = run / "search" / "rerank" / "reranked.json", run / "summary.json"
    for f in (rerank_file, summary_file):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (expected a finished reproduce.py --rerank run)")
    rerank, summary = json.loads(rerank_file.read_text()), json.loads(summary_file.read_text())
    rungs = [{x["arch"]: x for x in r["results"] if x["psnr"] is not None} for r in rerank["rungs"]]
    steps = [r["steps"] for r in rerank["rungs"]]
    lines = [f"{run}: {rerank['candidates']} candidates within {rerank['budget_ms']:.1f} ms x "
             f"{1 + rerank['slack']:g}, rungs of {', '.join(map(str, steps))} steps; re-ranked choice "
             f"{rerank['arch']}"]
    for r, res in zip(steps, rungs):
        archs = list(res)
        lines.append(f"supernet score vs {r}-step fine-tuning: "
                     + agreement([res[a]["supernet_psnr"] for a in archs], [res[a]["psnr"] for a in archs]))
    for (s0, r0), (s1, r1) in zip(zip(steps, rungs), zip(steps[1:], rungs[1:])):
        both = [a for a in r1 if a in r0]
        lines.append(f"{s0}-step vs {s1}-step fine-tuning: "
                     + agreement([r0[a]["psnr"] for a in both], [r1[a]["psnr"] for a in both]))
    full = {row["arch"]: row["psnr"] for row in summary["rows"]}
    trained = [a for a in full if any(a in res for res in rungs)]
    final_steps = summary["finetune_steps"]
    lines += ["", "| arch | supernet | " + " | ".join(f"{s} steps" for s in steps)
              + f" | {final_steps} steps (table) |",
              "|---|---|" + "---|" * len(steps) + "---|"]
    for a in sorted(trained, key=lambda a: -full[a]):
        sup = next(res[a]["supernet_psnr"] for res in rungs if a in res)
        cells = [f"{res[a]['psnr']:.2f}" if a in res else "" for res in rungs]
        lines.append(f"| `{a}` | {sup:.2f} | " + " | ".join(cells) + f" | {full[a]:.2f} |")
    for r, res in zip(steps, rungs):
        both = [a for a in trained if a in res]
        lines.append(f"{r}-step fine-tuning vs the table's {final_steps}-step one: "
                     + agreement([res[a]["psnr"] for a in both], [full[a] for a in both]))
    both = [a for a in trained if a in rungs[0]]
    lines.append(f"supernet score vs the table's {final_steps}-step fine-tuning: "
                 + agreement([rungs[0][a]["supernet_psnr"] for a in both], [full[a] for a in both]))
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="reproduce.py --rerank output folders")
    args = ap.parse_args()
    for i, run in enumerate(args.runs):
        try:
            lines = report(run)
        except (OSError, ValueError, KeyError) as e:
            print(f"rerank_agreement.py: {run}: {e}", file=sys.stderr)
            return 2
        print(("\n" if i else "") + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
