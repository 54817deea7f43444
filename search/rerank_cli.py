"""``rerank.py`` arguments -> :class:`RerankSettings` -> :func:`run_rerank`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from search.rerank import RerankSettings, format_rerank, run_rerank


def build_parser() -> argparse.ArgumentParser:
    d = RerankSettings(supernet=Path(), config="", search_dir=Path(), out=Path())
    p = argparse.ArgumentParser(
        prog="rerank.py", description="Re-rank the archs a search scored by short fine-tunings from the supernet "
        "(successive halving) and write <out>/reranked.json with the best.")
    p.add_argument("--search-dir", type=Path, required=True, help="search.py's output folder (all_evaluated.csv, "
                   "chosen.json)")
    p.add_argument("--supernet", type=Path, help="supernet checkpoint (default: the one chosen.json names)")
    p.add_argument("--config", required=True, help="training config the fine-tunings use (configs/<task>.yaml)")
    p.add_argument("--out", type=Path, help="output folder (default: <search-dir>/rerank)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"fine-tuning steps of the first rung (default "
                   f"{d.steps})")
    p.add_argument("--eta", type=int, default=d.eta, help=f"keep the best 1/eta of each rung and train them eta x "
                   f"longer (default {d.eta})")
    p.add_argument("--rungs", type=int, default=d.rungs, help=f"default {d.rungs}")
    p.add_argument("--slack", type=float, default=d.slack, help="candidates: predicted latency <= budget x "
                   f"(1 + slack) (default {d.slack:g}: the LUT's whole-network error)")
    p.add_argument("--budget-ms", type=float, help="latency budget (default: chosen.json's)")
    p.add_argument("--max-candidates", type=int, default=d.max_candidates,
                   help=f"at most this many, best supernet score first (default {d.max_candidates})")
    p.add_argument("--min-speedup", type=float, metavar="X",
                   help="also time every candidate and all-T on this host (onnxruntime, the LUT's threads, repeats "
                        "and rounds) and fine-tune only those measured >= X times faster than all-T (default: off)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every fine-tuning (e.g. subnet.distill_weight=3)")
    return p


def settings_from_args(argv: Sequence[str] | None = None) -> RerankSettings:
    p = build_parser()
    a = p.parse_args(argv)
    supernet = a.supernet
    if supernet is None:
        import json

        chosen = a.search_dir / "chosen.json"
        try:
            supernet = Path(json.loads(chosen.read_text())["supernet"])
        except (OSError, ValueError, KeyError) as e:
            p.error(f"--supernet: not given, and {chosen} names none ({e})")
    if not supernet.is_file():
        p.error(f"--supernet: {supernet} is not a file (expected a supernet.pt)")
    try:
        return RerankSettings(supernet=supernet, config=a.config, search_dir=a.search_dir,
                              out=a.out or a.search_dir / "rerank", steps=a.steps, eta=a.eta, rungs=a.rungs,
                              slack=a.slack, budget_ms=a.budget_ms, max_candidates=a.max_candidates,
                              min_speedup=a.min_speedup,
                              overrides=a.set)
    except ValueError as e:  # RerankSettings names the field first: "eta: expected >= 2, got 1"
        field_name, message = str(e).split(": ", 1)
        p.error(f"--{field_name.replace('_', '-')}: {message}")


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_from_args(argv)
    try:
        summary = run_rerank(settings)
    except (OSError, ValueError) as e:
        raise SystemExit(f"rerank.py: {e}") from None
    print(format_rerank(summary))
    print(f"results in {settings.out}")
    return 0
