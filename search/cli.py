"""``search.py`` arguments -> :class:`SearchSettings` -> :func:`run_search`."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from search.nsga import NSGAConfig
from search.runner import SearchSettings, run_search


def build_parser() -> argparse.ArgumentParser:
    d, n = SearchSettings(), NSGAConfig()
    p = argparse.ArgumentParser(
        prog="search.py", description="NSGA-II over hybrid Transformer/SSM archs: supernet PSNR vs LUT latency "
        "(or, without --lut, the transformer-cost penalty). Writes the Pareto front and chosen archs to --out.")
    p.add_argument("--task", help="restoration task (default: the supernet checkpoint's)")
    p.add_argument("--supernet", type=Path, help="supernet checkpoint (default: <config's out dir>/supernet.pt)")
    p.add_argument("--config", type=Path, help="training config (default: configs/<task>.yaml if it exists)")
    p.add_argument("--lut", type=Path, help="latency LUT json from build_lut.py (omit: transformer penalty)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/search/<task>-<granularity>-<lut>)")
    p.add_argument("--budget-ms", type=float, help="latency budget: constraint predicted latency <= budget")
    p.add_argument("--granularity", choices=["stage", "block"], default=d.granularity)
    p.add_argument("--resolution", type=int, help="H = W the latency is predicted at (default: the LUT's first)")
    p.add_argument("--penalty", choices=["count", "flops"], default=d.penalty,
                   help="LUT-free cost: transformer block count or their FLOPs share")
    p.add_argument("--params", action="store_true", help="parameters (M) as a third objective")
    p.add_argument("--pop-size", type=int, help=f"default {n.pop_size} (stage), 32 (block)")
    p.add_argument("--generations", type=int, help=f"default {n.generations} (stage), 30 (block)")
    p.add_argument("--offsprings", type=int, help=f"offspring per generation; default {n.n_offsprings} (stage), "
                   "8 (block)")
    p.add_argument("--screen", type=int, help=f"surrogate pre-selection pool factor (0: plain NSGA-II); "
                   f"default {n.screen}")
    p.add_argument("--seed", type=int, default=n.seed)
    p.add_argument("--exhaustive", action="store_true",
                   help="also score all 256 stage archs and report NSGA-II's hypervolume ratio")
    p.add_argument("--resume", action="store_true", help="continue from <out>/state.pkl")
    p.add_argument("--val-limit", type=int, help="score on the first N validation crops only")
    p.add_argument("--eval-set", action="append", default=[], metavar="data.val_crop|data.val_crops=VALUE",
                   help="score on other crops of the held-out images than the supernet's own, e.g. "
                        "--eval-set data.val_crop=0 --eval-set data.val_crops=1: the whole images (several times the "
                        "pixels of the proxy's crops; benchmarks/ranking.py measured a better ranking with them)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--device", default=d.device)
    p.add_argument("--no-progress", action="store_true")
    return p


def settings_from_args(argv: Sequence[str] | None = None) -> SearchSettings:
    a = build_parser().parse_args(argv)
    nsga = NSGAConfig.for_granularity(a.granularity, pop_size=a.pop_size, generations=a.generations,
                                      n_offsprings=a.offsprings, screen=a.screen, seed=a.seed)
    return SearchSettings(task=a.task, supernet=a.supernet, config=a.config, lut=a.lut, out=a.out,
                          budget_ms=a.budget_ms, granularity=a.granularity, resolution=a.resolution,
                          penalty=a.penalty, params_objective=a.params, nsga=nsga, exhaustive=a.exhaustive,
                          resume=a.resume, val_limit=a.val_limit, eval_set=tuple(a.eval_set),
                          batch_size=a.batch_size, device=a.device, progress=not a.no_progress)


def main(argv: Sequence[str] | None = None) -> int:
    run_search(settings_from_args(argv))
    return 0
