"""Wall time of a full NSGA-II search on the demo supernet, split into scoring vs algorithm.

    python benchmarks/search_cost.py [--supernet runs/demo/supernet.pt] [--lut luts/host.json] [--exhaustive]
        [--eval-set data.val_crop=0 --eval-set data.val_crops=1]

Without ``--supernet`` a freshly initialised demo-size supernet (configs/demo.yaml) is saved and searched: the
timings are the same, the PSNRs meaningless. ``--exhaustive`` also scores all 256 stage archs and prints how close
NSGA-II came (hypervolume ratio, evaluations used). Prints one table; the README quotes it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from search.nsga import NSGAConfig  # noqa: E402
from search.runner import SearchSettings, build_problem, run_problem  # noqa: E402


def fresh_checkpoint(config: Path, out: Path) -> Path:
    """A seeded, untrained supernet of the config's size, saved as an ENS checkpoint."""
    from supernet.checkpoint import atomic_save, build_model
    from supernet.config import load_config

    cfg = load_config(config)
    torch.manual_seed(cfg.seed)
    net = build_model(cfg)
    path = out / "fresh_supernet.pt"
    atomic_save({"model": net.state_dict(), "config": cfg.to_dict(), "phase": "init", "step": 0}, path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supernet", type=Path, help="trained demo supernet (default: a fresh demo-size one)")
    p.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    p.add_argument("--lut", type=Path, help="LUT json (default: the transformer-count penalty)")
    p.add_argument("--out", type=Path, default=Path("runs/bench/search_cost"))
    p.add_argument("--exhaustive", action="store_true")
    p.add_argument("--pop-size", type=int, default=NSGAConfig.pop_size)
    p.add_argument("--generations", type=int, default=NSGAConfig.generations)
    p.add_argument("--screen", type=int, default=NSGAConfig.screen)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-set", action="append", default=[], metavar="data.val_crop|data.val_crops=VALUE",
                   help="score on another validation set of the supernet's images, as search.py --eval-set "
                        "(repeatable)")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    for stale in ("cache.json", "state.pkl"):        # time a full search, not a cache replay
        (a.out / stale).unlink(missing_ok=True)
    ckpt = a.supernet or fresh_checkpoint(a.config, a.out)

    t0 = time.perf_counter()
    settings = SearchSettings(supernet=ckpt, lut=a.lut, out=a.out, progress=False, eval_set=tuple(a.eval_set),
                              nsga=NSGAConfig(pop_size=a.pop_size, generations=a.generations, seed=a.seed,
                                              screen=a.screen))
    problem, out, _ = build_problem(settings)
    setup_s = time.perf_counter() - t0
    scorer = problem.scorer
    run = run_problem(problem, settings.nsga, out, exhaustive=a.exhaustive, progress=False)
    n = run.nsga.evaluations
    per_arch = run.nsga.scoring_s / max(n, 1)
    search_s = run.nsga.scoring_s + run.nsga.algorithm_s
    rows = [
        ("device / threads", f"{'cuda' if torch.cuda.is_available() else 'cpu'} / {torch.get_num_threads()} "
                             f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')})"),
        ("supernet", f"{ckpt} ({'trained' if a.supernet else 'fresh init'})"),
        ("validation set", f"{scorer.objectives[0].fn.n_images} items"
                           + (f" ({', '.join(a.eval_set)})" if a.eval_set else " (the supernet's config)")),
        ("cost objective", scorer.names[1]),
        ("setup (load model, val set, LUT)", f"{setup_s:.2f} s"),
        ("NSGA-II evaluations", f"{n} archs, {len(run.nsga.history)} generations"),
        ("  scoring (objective functions)", f"{run.nsga.scoring_s:.2f} s ({per_arch * 1e3:.0f} ms / arch)"),
        ("  algorithm (NSGA-II, screen, logs)", f"{run.nsga.algorithm_s:.2f} s"),
        ("  scoring share of the search", f"{100 * run.nsga.scoring_s / search_s:.1f} %"),
        ("outputs (+ exhaustive scoring)" if a.exhaustive else "outputs", f"{run.wall_s - search_s:.2f} s"),
        ("total wall", f"{time.perf_counter() - t0:.2f} s"),
    ]
    if run.comparison is not None:
        c = run.comparison
        rows.append(("hypervolume NSGA-II / exhaustive", f"{100 * c.ratio:.2f} % with {c.evaluations}/"
                                                         f"{c.exhaustive_evaluations} evaluations"))
    width = max(len(r[0]) for r in rows)
    print("\nsearch cost")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
