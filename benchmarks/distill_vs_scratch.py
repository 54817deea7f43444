#!/usr/bin/env python
"""Does block-wise distillation close the all-S / all-T gap better than training the SSM path directly?

From one trained teacher (phase 1 of the config), three branches with the same data order and seeds:

- ``distill``: the config's distillation phase (SSM blocks learn their transformer twins' outputs);
- ``direct``: the same parameters (SSM blocks only), steps, lr and warm-up, but the all-S path trained end to
  end with the L1 loss to the ground truth (the "train the SSM path from scratch" baseline);
- ``none``: no SSM pre-training at all.

Each branch then runs the config's supernet phase, and ``none`` also runs it with the distillation steps added
(same total steps). Validation PSNR of all-T and all-S is printed after each stage.

    python benchmarks/distill_vs_scratch.py --config configs/demo.yaml --out runs/distill_vs_scratch
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from supernet.arch import Arch
from supernet.checkpoint import atomic_write_text, build_model, load_checkpoint
from supernet.config import Config, load_config
from supernet.training import RunState, Trainer, build_phase, train_supernet
from supernet.training.distributed import init_distributed
from supernet.training.logs import RunLogger
from supernet.training.run import _datasets


def direct_config(cfg: Config) -> Config:
    """The distillation budget spent on end-to-end all-S training of the SSM parameters only."""
    c = copy.deepcopy(cfg)
    c.supernet.fixed_arch, c.supernet.trainable, c.supernet.sandwich = "SSSSSSSS", "ssm", False
    c.supernet.distill_weight = 0.0
    for key in ("steps", "lr", "lr_min", "warmup", "weight_decay", "betas"):
        setattr(c.supernet, key, getattr(cfg.distill, key))
    return c


def run_branch(name: str, stages: list[tuple[str, str, Config]], teacher_state: dict, cfg: Config, out: Path,
               datasets) -> dict:
    torch.manual_seed(cfg.seed)
    net = build_model(cfg)
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
    args = ap.parse_args()
    out = Path(args.out)
    cfg = load_config(args.config, args.overrides + ["train.checkpoint_every=1000000000"])

    teacher_cfg = load_config(args.config, args.overrides + ["distill.enabled=false", "supernet.enabled=false"])
    teacher_dir = out / "teacher"
    train_supernet(teacher_cfg, teacher_dir, resume=True)
    teacher = load_checkpoint(teacher_dir / "supernet.pt")
    before = teacher["metrics"]["teacher"]["all_T"]["psnr"]

    longer = copy.deepcopy(cfg)
    longer.supernet.steps += cfg.distill.steps
    datasets = _datasets(cfg)
    branches = {
        "distill": [("after SSM stage", "distill", cfg), ("after supernet", "supernet", cfg)],
        "direct": [("after SSM stage", "supernet", direct_config(cfg)), ("after supernet", "supernet", cfg)],
        "none": [("after supernet", "supernet", cfg)],
        "none_longer": [("after supernet", "supernet", longer)],
    }
    table = {name: run_branch(name, stages, teacher["model"], cfg, out, datasets)
             for name, stages in branches.items()}
    atomic_write_text(json.dumps({"teacher_all_T": before, "branches": table}, indent=2) + "\n",
                      out / "distill_vs_scratch.json")
    print(f"teacher all-T {before:.2f} dB; SSM stage = {cfg.distill.steps} steps, supernet = {cfg.supernet.steps} "
          f"steps (none_longer: {longer.supernet.steps})")
    print(f"{'branch':<12} {'stage':<16} {'all-T':>7} {'all-S':>7} {'gap':>6}")
    for name, stages in table.items():
        for label, r in stages.items():
            print(f"{name:<12} {label:<16} {r['all_T']:7.2f} {r['all_S']:7.2f} {r['all_T'] - r['all_S']:6.2f}")


if __name__ == "__main__":
    main()
