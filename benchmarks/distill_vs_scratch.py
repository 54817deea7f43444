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
steps added (same total steps). Validation PSNR of all-T and all-S is printed after each stage, per seed and averaged,
with distill's paired differences to the from-scratch baselines ``direct`` and ``none_longer``. A finished branch
(``OUT/seedN/BRANCH/result.json``) is reused, so seeds can run as separate processes and a last call with all the
seeds prints the summary.

    python benchmarks/distill_vs_scratch.py --config configs/demo.yaml --seeds 0,1,2
    python benchmarks/distill_vs_scratch.py --config configs/demo.yaml --set distill.task_weight=0  # blocks only
    python benchmarks/distill_vs_scratch.py --config configs/proxy/denoise.yaml --branches distill,direct,none_longer \
        --set supernet.steps=400 --seeds 0,1,2 --out runs/dvs_proxy                            # proxy scale
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
from supernet.training import run_phases, train_supernet
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


def paired_comparison(per_seed: dict, baseline: str) -> str:
    """distill vs a from-scratch baseline after the supernet phase, seed by seed: the all-S PSNR and the
    all-T - all-S gap (what the distillation is meant to close), as mean paired differences and win counts."""
    def after(seed, name):
        return per_seed[seed][name]["after supernet"]

    seeds = list(per_seed)
    d_s = [after(s, "distill")["all_S"] - after(s, baseline)["all_S"] for s in seeds]
    gap = [(after(s, baseline)["all_T"] - after(s, baseline)["all_S"])
           - (after(s, "distill")["all_T"] - after(s, "distill")["all_S"]) for s in seeds]
    return (f"distill vs {baseline} after the supernet phase: all-S {statistics.mean(d_s):+.2f} dB "
            f"(higher in {sum(v > 0 for v in d_s)}/{len(seeds)} seeds), gap closed by {statistics.mean(gap):+.2f} dB "
            f"(smaller in {sum(v > 0 for v in gap)}/{len(seeds)} seeds)")


def run_branch(name: str, stages: list[tuple[str, str, Config]], teacher_state: dict, cfg: Config, out: Path,
               datasets) -> dict:
    torch.manual_seed(cfg.seed)
    net = build_model(cfg)
    if teacher_state is not None:
        net.load_state_dict(teacher_state)
    archs = [("all_T", Arch.uniform(net, "T")), ("all_S", Arch.uniform(net, "S"))]
    phase_results = run_phases(net, [(phase_name, stage_cfg, archs) for _, phase_name, stage_cfg in stages],
                               out / name, datasets)
    return {label: {k: round(v["psnr"], 2) for k, v in r.items()}
            for (label, _, _), r in zip(stages, phase_results)}


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
        seed_out, datasets = out / f"seed{seed}", None
        per_seed[seed] = {}
        for name in chosen:  # a finished branch is read back: seeds can run in separate processes, then be summed up
            done = seed_out / name / "result.json"
            if done.exists():
                saved = json.loads(done.read_text())
                if saved.get("config") != c.to_dict() or saved.get("teacher_all_T") != before:
                    raise SystemExit(f"{done}: written with another config (--config/--set) or teacher (--teacher); "
                                     f"use another --out")
                per_seed[seed][name] = saved["stages"]
                print(f"seed {seed} {name}: reusing {done}", flush=True)
                continue
            datasets = datasets or _datasets(c)
            per_seed[seed][name] = run_branch(name, branches[name],
                                              None if name.startswith("scratch") else teacher["model"], c,
                                              seed_out, datasets)
            atomic_write_text(json.dumps({"config": c.to_dict(), "teacher_all_T": before,
                                          "stages": per_seed[seed][name]}, indent=2) + "\n", done)
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
        for baseline in ("direct", "none_longer"):
            if {"distill", baseline} <= set(chosen):
                print(paired_comparison(per_seed, baseline))

if __name__ == "__main__":
    main()
