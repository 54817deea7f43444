"""Ranking fidelity of the supernet: do its one-shot scores order archs as stand-alone training does?

    python benchmarks/ranking.py --supernet runs/reproduce/denoise-proxy/supernet/supernet.pt \
        [--config configs/proxy/denoise.yaml] [--archs 12] [--steps 400] [--init scratch|inherited]

Picks ``--archs`` stage-granularity archs spread over the transformer count (all-S ... all-T, seeded), scores
each with the supernet's weights on the validation set, trains each stand-alone with the same budget
(``train.py subnet``; ``scratch`` re-initialises the weights, ``inherited`` starts from the supernet's), evaluates
them, and prints Kendall tau and Spearman rho between the two PSNR lists. Reruns reuse finished trainings.

``--seeds 0,1,2`` trains every arch once per seed (initial weights and data order) and ranks by the mean
stand-alone PSNR; it also prints the seed-to-seed spread and how well one seed's stand-alone ranking predicts
another's (Kendall tau), a yardstick for how much of the reference is noise.
Seeds may run as separate processes on the same ``--out`` (``--seeds 1`` and ``--seeds 2`` side by side), then a
call with all of them, which reuses every finished training, prints the table.

``--eval-set data.val_crop=0`` scores both sides on the whole validation images instead of the training run's
few crops (same held-out images; training unchanged, finished runs reused): more pixels behind both PSNR
lists.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pick_archs(n: int, seed: int) -> list:
    from supernet import all_stage_archs

    by_count: dict[int, list] = {}
    for a in all_stage_archs():
        by_count.setdefault(a.count("T"), []).append(a)
    rng = random.Random(seed)
    for group in by_count.values():
        rng.shuffle(group)
    chosen, k = [], 0
    while len(chosen) < n:  # round-robin over transformer counts 0..8: spread over the latency range
        count = k % 9
        group = by_count[count]
        if group:
            chosen.append(group.pop())
        k += 1
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--supernet", required=True)
    ap.add_argument("--config", help="the stand-alone trainings' config (default: the supernet checkpoint's own, "
                                     "its --set overrides included: the way to rank a recipe run with --set)")
    ap.add_argument("--archs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--init", choices=["scratch", "inherited"], default="scratch")
    ap.add_argument("--seed", type=int, default=0, help="picks the archs")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds per arch (default: 0)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--eval-set", action="append", default=[], metavar="data.val_crop|data.val_crops=VALUE",
                    help="score both sides on another validation set than the supernet's own, e.g. "
                         "data.val_crop=0 (the whole validation images, more pixels behind both PSNR lists). "
                         "Training is unchanged, so finished stand-alone runs are reused")
    args = ap.parse_args()
    from supernet.config import ConfigError, check_validation_keys, with_validation_set

    try:
        check_validation_keys(args.eval_set)  # fail before any training starts
    except ConfigError as e:
        ap.error(str(e))
    if args.archs < 2:
        ap.error("--archs must be >= 2")
    try:
        seeds = sorted({int(v) for v in args.seeds.split(",") if v.strip()})
    except ValueError:
        ap.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    if not seeds:
        ap.error("--seeds: give at least one seed")
    from scipy.stats import kendalltau, spearmanr

    from supernet.checkpoint import atomic_write_text, load_model
    from supernet.data import build_datasets
    from supernet.evaluation import evaluate

    out = Path(args.out or Path(args.supernet).parent.parent / f"ranking-{args.init}")
    supernet, cfg = load_model(args.supernet)
    try:
        _, val = build_datasets(with_validation_set(cfg, args.eval_set).data, cfg.task, cfg.seed)
    except ValueError as e:  # a bad --eval-set value (ConfigError is a ValueError; it names the option)
        ap.error(str(e))
    if args.eval_set:
        print(f"validation set: {', '.join(args.eval_set)} ({len(val)} items)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for arch in pick_archs(args.archs, args.seed):
        one_shot = evaluate(supernet, val, cfg.task, arch=arch)["psnr"]
        alone = [standalone_psnr(arch, seed, args, out, supernet, cfg, val) for seed in seeds]
        rows.append({"arch": str(arch), "transformers": arch.count("T"), "supernet_psnr": one_shot,
                     "standalone_psnr": statistics.mean(alone), "standalone_runs": alone})
        print(f"{arch}  supernet {one_shot:.2f} dB  stand-alone {' '.join(f'{v:.2f}' for v in alone)} dB", flush=True)
    a = [r["supernet_psnr"] for r in rows]
    b = [r["standalone_psnr"] for r in rows]
    tau, rho = kendalltau(a, b).statistic, spearmanr(a, b).statistic
    spread = seed_spread(rows)
    atomic_write_text(json.dumps({"rows": rows, "kendall_tau": tau, "spearman": rho, "steps": args.steps,
                                  "init": args.init, "seeds": seeds, "seed_spread": spread,
                                  "eval_set": args.eval_set}, indent=2) + "\n",
                      out / "ranking.json")
    label = f"{args.init}, {args.steps} steps" + (f", mean of {len(seeds)} seeds" if len(seeds) > 1 else "")
    if args.eval_set:
        label += f"; both scored on {', '.join(args.eval_set)}"
    print(f"\n| arch | T slots | supernet PSNR | stand-alone PSNR ({label}) |")
    print("|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["transformers"]):
        runs = f" ({min(r['standalone_runs']):.2f}..{max(r['standalone_runs']):.2f})" if len(seeds) > 1 else ""
        print(f"| `{r['arch']}` | {r['transformers']} | {r['supernet_psnr']:.2f} | {r['standalone_psnr']:.2f}{runs} |")
    print(f"\nKendall tau {tau:.3f}, Spearman rho {rho:.3f} over {len(rows)} archs (goal: tau >= 0.7)")
    if spread is not None:
        print(f"stand-alone seed noise: median per-arch std {spread['median_std']:.2f} dB against a spread of "
              f"{spread['arch_range']:.2f} dB between the archs' means; Kendall tau between two seeds' stand-alone "
              f"rankings {spread['seed_vs_seed_tau']:.3f} (mean over seed pairs: how well one stand-alone run "
              f"predicts another)")


def seed_spread(rows: list) -> dict | None:
    """How noisy the stand-alone reference is: per-arch std over seeds, the range of the archs' means, and the
    Kendall tau between two seeds' rankings (mean over every pair of seeds)."""
    from itertools import combinations

    from scipy.stats import kendalltau

    n = len(rows[0]["standalone_runs"])
    if n < 2:
        return None
    means = [r["standalone_psnr"] for r in rows]
    taus = [kendalltau([r["standalone_runs"][i] for r in rows], [r["standalone_runs"][j] for r in rows]).statistic
            for i, j in combinations(range(n), 2)]
    return {"median_std": statistics.median(statistics.stdev(r["standalone_runs"]) for r in rows),
            "arch_range": max(means) - min(means), "seed_vs_seed_tau": statistics.mean(taus)}


def standalone_psnr(arch, seed: int, args, out: Path, supernet, cfg, val) -> float:
    """Train ``arch`` alone for ``args.steps`` with this seed (reusing a finished or interrupted run) and score it.
    Seed 0 keeps the original folder names, so earlier single-seed runs are reused."""
    import torch

    from supernet.checkpoint import atomic_save, load_checkpoint, load_model
    from supernet.evaluation import evaluate

    tag = "" if seed == 0 else f"-seed{seed}"
    source = Path(args.supernet)
    if args.init == "scratch":  # an untrained supernet checkpoint: extracting from it gives a fresh subnet
        source = out / f"init{tag}.pt"
        if not source.exists():
            ckpt = load_checkpoint(args.supernet)
            torch.manual_seed(args.seed + seed)
            fresh = type(supernet)(**supernet.config)
            atomic_save({**{k: v for k, v in ckpt.items() if k not in ("ema", "metrics")}, "model":
                         fresh.state_dict(), "ema": None, "metrics": {}, "phases_done": []}, source)
    sub_dir = out / f"subnet-{arch}{tag}"
    if not (sub_dir / "subnet.pt").exists():
        cmd = subnet_command(arch, source, args.config, args.steps, sub_dir, seed)
        subprocess.run(cmd, cwd=ROOT, check=True)
    model, _ = load_model(sub_dir / "subnet.pt")
    return evaluate(model, val, cfg.task)["psnr"]


def subnet_command(arch, source: Path, config: str | None, steps: int, sub_dir: Path, seed: int) -> list[str]:
    """``train.py subnet`` for one stand-alone run; without ``config`` it trains with the checkpoint's own config
    (so a supernet trained with ``--set`` options is fine-tuned with them). Resumes an interrupted run."""
    cmd = [sys.executable, "train.py", "subnet", "--arch", str(arch), "--from", str(source),
           *(["--config", config] if config else []), "--steps", str(steps), "--out", str(sub_dir),
           "--set", f"seed={seed}"]
    if (sub_dir / "checkpoints" / "last.pt").exists():
        cmd.append("--resume")
    return cmd


if __name__ == "__main__":
    main()
