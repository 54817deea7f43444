#!/usr/bin/env python
"""Which SSM block buys the most quality per millisecond? All-S quality and speed for several SSM block designs.

The speed-up any hybrid reaches is bounded by all-S's, and its quality gap to all-T by how much an SSM block can
learn. This benchmark weighs SSM block options (``model.ssm.*``: a channel MLP, a wider inner width, a larger conv,
a gate...) against each other, everything else equal:

1. one teacher (the config's teacher phase: all-T, fixed parts included), trained once under ``--out`` or given
   with ``--teacher``;
2. the all-T reference: the teacher fine-tuned ``--finetune-steps`` steps on its own path (supernet-phase lr);
3. per variant: a network with that SSM block, the teacher's weights for everything but the SSM candidates, the
   config's distillation phase (the SSM blocks learn their transformer twins), then all-S fine-tuned
   ``--finetune-steps`` steps (all its parameters, supernet-phase lr, same data order for every variant);
4. all-T and every variant's all-S exported to ONNX and timed end to end in onnxruntime, round-robin in one
   process pool (``supernet.pipeline.measure_latency``, as the pipeline's measured column).

All-S PSNR is the config's validation set (``--eval-set`` as in ``ranking.py`` to score whole images). A finished
variant (``OUT/VARIANT/result.json``) is reused, so an interrupted run resumes; timing always runs again (run it on a
quiet machine, or skip it with ``--latency-rounds 0``).

    python benchmarks/ssm_capacity.py --config configs/proxy/denoise.yaml --set model.ssm.norm=none \\
        --variant 'mlp 1=model.ssm.mlp_ratio=1' --variant 'expand 2=model.ssm.expand=2'
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_VARIANTS = [
    "baseline=",
    "conv 5x5=model.ssm.d_conv=5",
    "expand 2=model.ssm.expand=2",
    "d_state 8=model.ssm.d_state=8",
    "gate=model.ssm.gate=true",
    "mlp 1=model.ssm.mlp_ratio=1",
    "mlp 2=model.ssm.mlp_ratio=2",
    "mlp 2, no norm=model.ssm.mlp_ratio=2|model.ssm.mlp_norm=none",
    "2 directions=model.ssm.directions=[hw,wh]",
    "2 directions, reversed=model.ssm.directions=[hw,hw_rev]",
    "4 directions=model.ssm.directions=[hw,hw_rev,wh,wh_rev]",
]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """'LABEL=KEY=VALUE[|KEY=VALUE...]' -> (label, overrides); 'LABEL=' is the config's own block."""
    label, sep, rest = text.partition("=")
    if not sep or not label.strip():
        raise SystemExit(f"--variant {text!r}: expected 'LABEL=[KEY=VALUE|KEY=VALUE...]'")
    sets = [s.strip() for s in rest.split("|") if s.strip()]
    bad = [s for s in sets if not s.startswith("model.ssm.") or "=" not in s]
    if bad:
        raise SystemExit(f"--variant {text!r}: {bad} are not model.ssm.KEY=VALUE overrides (only the SSM block may "
                         f"differ between variants)")
    return label.strip(), sets


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "variant"


def fixed_path_config(cfg, arch: str, steps: int):
    """The supernet phase spent on one fixed path, every parameter trainable, no sandwich or in-place KD."""
    c = copy.deepcopy(cfg)
    c.supernet.fixed_arch, c.supernet.trainable, c.supernet.sandwich = arch, "all", False
    c.supernet.distill_weight, c.supernet.steps = 0.0, steps
    return c


def train_stages(cfg, teacher_state: dict, stages: list[tuple[str, object]], label: str, out: Path, datasets):
    """Build ``cfg``'s network, load the teacher's weights for every parameter outside the SSM candidates (the SSM
    block may have another shape than the teacher's), run ``stages`` [(phase name, config)], return the net and the
    last stage's validation PSNR/SSIM of its path."""
    import torch

    from supernet.arch import Arch
    from supernet.checkpoint import build_model
    from supernet.training import run_phases

    torch.manual_seed(cfg.seed)
    net = build_model(cfg)
    shared = {k: v for k, v in teacher_state.items() if ".candidates.ssm." not in k}
    missing, unexpected = net.load_state_dict(shared, strict=False)
    if unexpected or any(".candidates.ssm." not in k for k in missing):
        raise SystemExit(f"{label}: the teacher's network differs outside the SSM blocks (missing "
                         f"{[k for k in missing if '.candidates.ssm.' not in k][:3]}, unexpected {unexpected[:3]})")
    phases = []
    for phase_name, stage_cfg in stages:
        path = stage_cfg.supernet.fixed_arch if phase_name == "supernet" else "SSSSSSSS"
        arch = Arch.uniform(net, path[0]) if len(set(path)) == 1 else Arch.parse(path, net)
        phases.append((phase_name, stage_cfg, [(path, arch)]))
    result = run_phases(net, phases, out, datasets)[-1][path]
    return net, arch, {"psnr": round(result["psnr"], 3), "ssim": round(result["ssim"], 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/proxy/denoise.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="config override for every variant and the teacher (repeatable)")
    ap.add_argument("--variant", action="append", default=None, metavar="LABEL=[KEY=VALUE|...]",
                    help="an SSM block to try, as model.ssm.* overrides (repeatable); 'LABEL=' is the config's own; "
                         "default: baseline, conv 5x5, expand 2, d_state 8, gate, mlp 1, mlp 2 (with and without its norm), 2 and 4 scan directions")
    ap.add_argument("--finetune-steps", type=int, default=0, help="all-T and all-S fine-tuning steps "
                    "(default: supernet.steps of the config)")
    ap.add_argument("--teacher", default="", help="a checkpoint after the teacher phase to start from (its network "
                    "must match the config's outside the SSM blocks); default: train one under --out")
    ap.add_argument("--eval-set", action="append", default=[], metavar="data.val_crop|data.val_crops=VALUE",
                    help="score on another validation set than the config's (as in ranking.py)")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--latency-rounds", type=int, default=5,
                    help="round-robin timing rounds, pooled (0: no timing, e.g. while other jobs share the CPU)")
    ap.add_argument("--out", default="runs/ssm_capacity")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]
    if args.latency_rounds < 0 or args.finetune_steps < 0:
        ap.error(f"--latency-rounds and --finetune-steps must be >= 0, got {args.latency_rounds}, "
                 f"{args.finetune_steps}")
    labels = [label for label, _ in variants]
    if len(set(map(slug, labels))) != len(labels):
        ap.error(f"--variant: labels must differ (after slugging): {labels}")

    import torch

    from supernet.checkpoint import atomic_write_text, load_checkpoint
    from supernet.config import load_config, with_validation_set
    from supernet.pipeline import measure_latency
    from supernet.ssm import SSMOptions
    from supernet.training import train_supernet
    from supernet.training.run import _datasets

    out = Path(args.out)
    base = args.overrides + ["train.checkpoint_every=1000000000"]
    cfg = load_config(args.config, base)
    if args.eval_set:
        cfg = with_validation_set(cfg, args.eval_set, "--eval-set")
    steps = args.finetune_steps or cfg.supernet.steps
    if args.teacher:
        teacher = load_checkpoint(args.teacher)
        if "teacher" not in teacher.get("metrics", {}):
            raise SystemExit(f"--teacher {args.teacher}: no teacher phase in its metrics; expected a supernet.pt "
                             f"whose run trained the teacher phase")
    else:
        teacher_dir = out / "teacher"
        train_supernet(load_config(args.config, base + ["distill.enabled=false", "supernet.enabled=false"]),
                       teacher_dir, resume=True)
        teacher = load_checkpoint(teacher_dir / "supernet.pt")
    teacher_psnr = teacher["metrics"]["teacher"]["all_T"]["psnr"]

    def run(name: str, run_cfg, stages) -> tuple[dict, object]:
        """One branch, reused when its result.json matches this config and teacher; returns (result, model)."""
        done = out / slug(name) / "result.json"
        key = {"config": run_cfg.to_dict(), "teacher_all_T": teacher_psnr, "steps": steps}
        if done.exists():
            saved = json.loads(done.read_text())
            if {k: saved.get(k) for k in key} == key:
                print(f"{name}: reusing {done}", flush=True)
                return saved["result"], torch.load(done.parent / "model.pt", weights_only=False)
            raise SystemExit(f"{done}: written with another config, teacher or --finetune-steps; use another --out")
        net, arch, result = train_stages(run_cfg, teacher["model"], stages, name, done.parent,
                                         datasets_for(run_cfg))
        model = net.extract(arch).eval()
        result["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 3)
        torch.save(model, done.parent / "model.pt")
        atomic_write_text(json.dumps({**key, "result": result}, indent=2) + "\n", done)
        print(f"{name}: {result['psnr']:.2f} dB", flush=True)
        return result, model

    cache = {}

    def datasets_for(run_cfg):
        k = json.dumps(run_cfg.to_dict()["data"], sort_keys=True)
        if k not in cache:
            cache[k] = _datasets(run_cfg)
        return cache[k]

    results, models = {}, {}
    results["all-T"], models["all-T"] = run("all-T", cfg, [("supernet", fixed_path_config(cfg, "TTTTTTTT", steps))])
    for label, sets in variants:
        vcfg = load_config(args.config, base + sets)
        if args.eval_set:
            vcfg = with_validation_set(vcfg, args.eval_set, "--eval-set")
        results[label], models[label] = run(label, vcfg, [("distill", vcfg),
                                                          ("supernet", fixed_path_config(vcfg, "SSSSSSSS", steps))])
        results[label]["ssm"] = SSMOptions.from_any(vcfg.to_dict()["model"]["ssm"]).to_dict()  # resolved

    ms = {}
    if args.latency_rounds > 0:
        with tempfile.TemporaryDirectory() as tmp:
            ms = measure_latency({slug(k): m for k, m in models.items()}, args.resolution, args.threads, args.repeats,
                                 Path(tmp), rounds=args.latency_rounds)
    t_psnr = results["all-T"]["psnr"]
    atomic_write_text(json.dumps({"teacher_all_T": teacher_psnr, "steps": steps,
                                  "results": results, "latency_ms": ms}, indent=2) + "\n", out / "ssm_capacity.json")
    timing = (f"Latency at {args.resolution}x{args.resolution}, onnxruntime, {args.threads} threads, median of "
              f"{args.latency_rounds} rounds x {args.repeats} runs" if ms else "Not timed (--latency-rounds 0)")
    print(f"\n{args.config} {' '.join(args.overrides)}: teacher all-T {teacher_psnr:.2f} dB; all-T fine-tuned {steps} "
          f"steps; each all-S = distillation ({cfg.distill.steps} steps) + {steps} steps. {timing}\n")
    print("| network | SSM block | params (M) | PSNR (dB) | vs all-T | SSIM | ms | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    blocks = {label: " ".join(s.removeprefix("model.ssm.") for s in sets) or "(config's)" for label, sets in variants}
    for name, r in results.items():
        block = blocks.get(name, "-")
        m, t_ms = ms.get(slug(name)), ms.get(slug("all-T"))
        speed = f"{m:.1f} | {t_ms / m:.2f}x" if m else "- | -"
        print(f"| {name} | {block} | {r['params_m']:.2f} | {r['psnr']:.2f} | {r['psnr'] - t_psnr:+.2f} | "
              f"{r['ssim']:.4f} | {speed} |")


if __name__ == "__main__":
    main()
