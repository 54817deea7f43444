#!/usr/bin/env python
"""Does block-wise distillation close the all-S / all-T gap better than training the SSM path directly?

From one trained teacher (phase 1 of the config), these branches, with the same data order and seeds:

- ``distill``: the config's distillation phase (SSM blocks learn their transformer twins' outputs; with
  ``distill.task_weight`` > 0 the all-S output's task loss is added, so the twins' outputs act as hints);
- ``direct``: the same parameters (SSM blocks only), steps, lr and warm-up, but the all-S path trained end to
  end with the L1 loss to the ground truth (the "train the SSM path from scratch" baseline);
- ``none``: no SSM pre-training at all;
- ``scratch``: a stand-alone all-S network from random weights trained with the teacher's recipe for the steps of
  the distillation and supernet phases (the teacher taken as given); ``scratch_longer`` adds the teacher's steps.
  Their all-T column is the untrained transformer path.

Each branch but ``scratch*`` then runs the config's supernet phase; ``none_longer`` runs it with the distillation
steps added (same total steps). Validation PSNR of all-T and all-S is printed after each stage, per seed and averaged.

    python benchmarks/distill_vs_scratch.py --config configs/demo.yaml --seeds 0,1,2
    python benchmarks/distill_vs_scratch.py --config configs/demo.yaml --set distill.task_weight=0  # blocks only
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path

import torch

from supernet.arch import Arch
from supernet.checkpoint import atomic_write_text, build_model, load_checkpoint
from supernet.config import Config, load_config
from supernet.training import RunState, Trainer, build_phase, train_supernet
from supernet.training.distributed import init_distributed
from supernet.training.logs import RunLogger
from supernet.training.run import _datasets


BRANCHES = ("distill", "direct", "none", "none_longer", "scratch", "scratch_longer")


def direct_config(cfg: Config) -> Config:
    """The distillation budget spent on end-to-end all-S training of the SSM parameters only."""
    c = copy.deepcopy(cfg)
    c.supernet.fixed_arch, c.supernet.trainable, c.supernet.sandwich = "SSSSSSSS", "ssm", False
    c.supernet.distill_weight = 0.0
    for key in ("steps", "lr", "lr_min", "warmup", "weight_decay", "betas"):
        setattr(c.supernet, key, getattr(cfg.distill, key))
    return c


def scratch_config(cfg: Config, with_teacher_steps: bool) -> Config:
    """A stand-alone all-S network from random weights, trained with the teacher's recipe for as many steps as the
    distillation + supernet phases (the teacher taken as given, like official Restormer weights) or, with
    ``with_teacher_steps``, as all three phases together (no teacher at all)."""
    c = copy.deepcopy(cfg)
    c.supernet.fixed_arch, c.supernet.trainable, c.supernet.sandwich = "SSSSSSSS", "all", False
    c.supernet.distill_weight = 0.0
    for key in ("lr", "lr_min", "warmup", "weight_decay", "betas", "loss"):
        setattr(c.supernet, key, getattr(cfg.teacher, key))
    c.supernet.steps = cfg.distill.steps + cfg.supernet.steps + (cfg.teacher.steps if with_teacher_steps else 0)
    return c


def run_branch(name: str, stages: list[tuple[str, str, Config]], teacher_state: dict, cfg: Config, out: Path,
               datasets) -> dict:
    torch.manual_seed(cfg.seed)
    net = build_model(cfg)
    if teacher_state is not None:
        net.load_state_dict(teacher_state)
    env = init_distributed("cpu" if cfg.train.device == "cpu" else "auto")
    net.to(env.device)
    logger = RunLogger(out / name, tensorboard=False)
    results = {}
    try:
        # phases_done=["teacher"]: every branch's first stage walks the data in the same order
        trainer = Trainer(cfg, net, env, out / name, logger, *datasets, RunState(phases_done=["teacher"]))
        archs = [("all_T", Arch.uniform(net, "T")), ("all_S", Arch.uniform(net, "S"))]
        for label, phase_name, stage_cfg in stages:
            trainer.cfg = stage_cfg
            phase = build_phase(phase_name, stage_cfg, net, None)
            phase.val_archs = archs
            r = trainer.run_phase(phase)
            results[label] = {k: round(v["psnr"], 2) for k, v in r.items()}
    finally:
        logger.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", default="runs/distill_vs_scratch")
    ap.add_argument("--branches", default=",".join(BRANCHES),
                    help=f"comma-separated subset of {','.join(BRANCHES)} (default: all)")
    ap.add_argument("--seeds", default="",
                    help="comma-separated seeds for the branches (data order, paths); default: the config's seed. "
                         "The teacher is trained once, with the config's seed")
    ap.add_argument("--teacher", default="",
                    help="a teacher checkpoint (supernet.pt after the teacher phase) to start from instead of "
                         "training one under --out; its model section must match the config's")
    args = ap.parse_args()
    try:
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        ap.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    chosen = [b.strip() for b in args.branches.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BRANCHES))
    if unknown or not chosen:
        ap.error(f"--branches: unknown {unknown}; choose from {list(BRANCHES)}")
    out = Path(args.out)
    cfg = load_config(args.config, args.overrides + ["train.checkpoint_every=1000000000"])
    seeds = seeds or [cfg.seed]

    if args.teacher:
        teacher = load_checkpoint(args.teacher)
        if teacher["config"]["model"] != cfg.to_dict()["model"]:
            raise SystemExit(f"--teacher {args.teacher}: its model section differs from {args.config}'s")
    else:
        teacher_cfg = load_config(args.config, args.overrides + ["distill.enabled=false", "supernet.enabled=false"])
        teacher_dir = out / "teacher"
        train_supernet(teacher_cfg, teacher_dir, resume=True)
        teacher = load_checkpoint(teacher_dir / "supernet.pt")
    before = teacher["metrics"]["teacher"]["all_T"]["psnr"]

    per_seed = {}
    for seed in seeds:
        c = copy.deepcopy(cfg)
        c.seed = seed
        longer = copy.deepcopy(c)
        longer.supernet.steps += c.distill.steps
        branches = {
            "distill": [("after SSM stage", "distill", c), ("after supernet", "supernet", c)],
            "direct": [("after SSM stage", "supernet", direct_config(c)), ("after supernet", "supernet", c)],
            "none": [("after supernet", "supernet", c)],
            "none_longer": [("after supernet", "supernet", longer)],
            "scratch": [("distill+supernet", "supernet", scratch_config(c, False))],
            "scratch_longer": [("all 3 phases", "supernet", scratch_config(c, True))],
        }
        assert set(branches) == set(BRANCHES)
        seed_out = out / f"seed{seed}" if len(seeds) > 1 else out
        datasets = _datasets(c)
        per_seed[seed] = {name: run_branch(name, branches[name],
                                           None if name.startswith("scratch") else teacher["model"], c, seed_out,
                                           datasets) for name in chosen}
    atomic_write_text(json.dumps({"teacher_all_T": before, "seeds": per_seed}, indent=2) + "\n",
                      out / "distill_vs_scratch.json")
    d = cfg.distill
    print(f"teacher all-T {before:.2f} dB; SSM stage = {d.steps} steps (distill: loss {d.loss}, inputs {d.inputs}, "
          f"normalize {d.normalize}, task_weight {d.task_weight}), supernet = {cfg.supernet.steps} steps "
          f"(none_longer: {cfg.supernet.steps + d.steps}); seeds {seeds}")
    print(f"{'branch':<12} {'stage':<16} {'seed':>5} {'all-T':>7} {'all-S':>7} {'gap':>6}")
    for seed, table in per_seed.items():
        for name, stages in table.items():
            for label, r in stages.items():
                print(f"{name:<12} {label:<16} {seed:>5} {r['all_T']:7.2f} {r['all_S']:7.2f} "
                      f"{r['all_T'] - r['all_S']:6.2f}")
    if len(seeds) > 1:
        print(f"\nmean over {len(seeds)} seeds (all-S: min..max)")
        print(f"{'branch':<12} {'stage':<16} {'all-T':>7} {'all-S':>7} {'gap':>6}  all-S range")
        for name in chosen:
            for label in per_seed[seeds[0]][name]:
                rows = [per_seed[s][name][label] for s in seeds]
                t = statistics.mean(r["all_T"] for r in rows)
                ss = [r["all_S"] for r in rows]
                print(f"{name:<12} {label:<16} {t:7.2f} {statistics.mean(ss):7.2f} {t - statistics.mean(ss):6.2f}"
                      f"  {min(ss):.2f}..{max(ss):.2f}")
        if {"distill", "direct"} <= set(chosen):
            wins = sum(per_seed[s]["distill"]["after supernet"]["all_S"]
                       > per_seed[s]["direct"]["after supernet"]["all_S"] for s in seeds)
            print(f"distill beats direct (all-S after the supernet phase) in {wins}/{len(seeds)} seeds")

if __name__ == "__main__":
    main()
