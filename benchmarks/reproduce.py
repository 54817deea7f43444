"""The paper's experiment for one task: supernet -> LUT -> search -> fine-tune the chosen hybrids and the all-T
(Restormer) baseline with the same budget -> evaluate -> table of latency, speed-up and PSNR/SSIM difference.

    python benchmarks/reproduce.py --task denoise --scale proxy     # bundled photos, 2 CPU cores, < 1 hour
    python benchmarks/reproduce.py --task deblur --scale full       # Restormer-scale recipe (GPUs + datasets)
    python benchmarks/reproduce.py --task deblur --config configs/proxy/deblur-deep.yaml   # another recipe
    python benchmarks/reproduce.py --task denoise --from-run runs/reproduce/denoise-proxy --finetune-steps 1200 \
        --out runs/reproduce/denoise-proxy-ft1200     # same supernet, LUT and search; another fine-tuning budget
    python benchmarks/reproduce.py --task denoise --from-run runs/reproduce/denoise-proxy --finetune-distill 1 \
        --out runs/reproduce/denoise-proxy-kd1    # the hybrids also distil the fine-tuned all-T's output
    python benchmarks/reproduce.py --task deblur --from-run runs/reproduce/deblur-proxy --arch SSTSSTSS \
        --out runs/reproduce/deblur-proxy-named    # also fine-tune a hybrid the search did not choose this time
    python benchmarks/reproduce.py --task denoise --from-run runs/reproduce/denoise-proxy --finetune-seed 1 \
        --out runs/reproduce/denoise-proxy-ftseed1    # same supernet, fine-tuned on another data order

Latency is measured end to end in onnxruntime on this CPU (and predicted by the LUT). Our goal: a hybrid >= 3x
faster than all-T with PSNR within 0.1 dB of all-T trained with the same budget (paper: 3.4x deblurring,
1.74x deraining, 1.17x denoising). Reruns reuse finished steps; outputs in runs/reproduce/<task>-<scale>/
(``--config``: runs/reproduce/<config name>-<scale>/).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latency_lut.lut import CALIBRATIONS  # noqa: E402
from supernet.arch import Arch  # noqa: E402
from supernet.checkpoint import config_of, load_checkpoint  # noqa: E402
from supernet.config import config_diff, load_config  # noqa: E402
from supernet.pipeline import (FINETUNE_TEACHERS, ROOT, PipelineSpec, lut_calibration_of, reuse_steps,  # noqa: E402
                               run_pipeline)
from supernet.unet import unet_stage_sizes  # noqa: E402

SCALES = {  # scale -> (config pattern, fine-tuning steps per arch)
    "proxy": ("configs/proxy/{task}.yaml", 400),
    "full": ("configs/{task}.yaml", 100000),
}


def _check_same_network(ckpt_path: Path, cfg) -> None:
    """The reused supernet must be the one this command's config (and --set) would train: same task, seed, model."""
    if not ckpt_path.is_file():
        return  # reuse_steps names every missing file
    stored, wanted = config_of(load_checkpoint(ckpt_path)).to_dict(), cfg.to_dict()
    keys = ("task", "seed", "model")
    diff = config_diff({k: stored[k] for k in keys}, {k: wanted[k] for k in keys})
    if diff:
        raise ValueError(f"--from-run: {ckpt_path} was trained with another task, seed or model than --config/--set "
                         f"give: {'; '.join(diff)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True, choices=["denoise", "derain", "deblur"])
    ap.add_argument("--scale", default="proxy", choices=sorted(SCALES))
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget-fraction", type=float, default=1 / 3,
                    help="latency budget as a fraction of all-T's predicted latency (default 1/3: >= 3x)")
    ap.add_argument("--config", default=None,
                    help="recipe to run instead of the scale's own (configs/proxy/<task>.yaml for proxy); its task "
                         "must be --task")
    ap.add_argument("--finetune-steps", type=int, default=None)
    ap.add_argument("--latency-rounds", type=int, default=10,
                    help="round-robin rounds of the end-to-end timing, pooled (default 10: on a shared host one "
                         "round's speed-up can be 20%% off the pooled one; see benchmarks/retime.py)")
    ap.add_argument("--lut-calibrate", default="none", choices=list(CALIBRATIONS),
                    help="boundary_pairs: the LUT build also times every two consecutive blocks together and "
                         "corrects its sums; fit: scales the transformer and SSM block sums to the whole networks "
                         "it times (build_lut.py --calibrate); the search's predictions use it")
    ap.add_argument("--out", default=None)
    ap.add_argument("--from-run", default=None, metavar="DIR",
                    help="reuse DIR's supernet, LUT (calibration included) and search, not its re-ranking (copied "
                         "into --out, which must differ) and redo only fine-tuning, evaluation and timing: e.g. the "
                         "same run with another --finetune-steps")
    ap.add_argument("--finetune-distill", type=float, default=0.0, metavar="W",
                    help="fine-tune every arch but all-T with W x L1 to a frozen teacher's output added to its loss "
                         "(all-T, the baseline, is always trained by L1 to the ground truth alone)")
    ap.add_argument("--finetune-feature-distill", type=float, default=0.0, metavar="W",
                    help="fine-tune every arch but all-T with W x the distance of its 8 U-Net stage outputs to the "
                         "same teacher's (L1 / mean |teacher|, averaged over stages) added to its loss")
    ap.add_argument("--finetune-teacher", default="all-t", choices=list(FINETUNE_TEACHERS),
                    help="with --finetune-distill: the fine-tuned all-T baseline (all-t, default) or the supernet's "
                         "all-T path (supernet)")
    ap.add_argument("--finetune-seed", type=int, default=None, metavar="N",
                    help="every fine-tuning (and re-ranking) draws its batches with seed N instead of the config's "
                         "(the supernet keeps its own): with --from-run, the same supernet fine-tuned again to "
                         "measure how far the fine-tuning's data order alone moves each arch's PSNR")
    ap.add_argument("--rerank", type=int, default=0, metavar="STEPS",
                    help="after the search, fine-tune every arch it scored within the budget x (1 + --rerank-slack) "
                         "STEPS steps, the best 1/--rerank-eta --rerank-eta x longer (--rerank-rungs rungs; "
                         "rerank.py) and add the best as 'ENS reranked' (default 0: off)")
    ap.add_argument("--rerank-rungs", type=int, default=2)
    ap.add_argument("--rerank-eta", type=int, default=3)
    ap.add_argument("--rerank-slack", type=float, default=0.1)
    ap.add_argument("--rerank-min-speedup", type=float, metavar="X",
                    help="re-rank only the candidates measured on this host >= X times faster than all-T (rerank.py "
                         "--min-speedup; default: the predicted latency alone decides)")
    ap.add_argument("--arch", action="append", default=[], metavar="ARCH", dest="archs",
                    help="also fine-tune, evaluate and time this arch (repeatable; e.g. a hybrid another seed's "
                         "search chose), labelled 'named ARCH' in the table")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every training command")
    args = ap.parse_args()
    if args.latency_rounds < 1:
        ap.error(f"--latency-rounds: expected >= 1, got {args.latency_rounds}")
    if args.from_run and args.lut_calibrate != "none":
        ap.error("--lut-calibrate: --from-run reuses DIR's LUT and search as they are; build a calibrated LUT in a "
                 "new run (or with build_lut.py --calibrate) instead")
    if args.finetune_distill < 0:
        ap.error(f"--finetune-distill: expected >= 0, got {args.finetune_distill}")
    for flag, value, low in (("--rerank", args.rerank, 0), ("--rerank-rungs", args.rerank_rungs, 1),
                             ("--rerank-eta", args.rerank_eta, 2), ("--rerank-slack", args.rerank_slack, 0)):
        if not value >= low:
            ap.error(f"{flag}: expected >= {low}, got {value}")
    if args.rerank_min_speedup is not None and not (args.rerank and args.rerank_min_speedup > 0):
        ap.error(f"--rerank-min-speedup: expected > 0 with --rerank STEPS, got {args.rerank_min_speedup}"
                 + ("" if args.rerank else " without --rerank"))
    if args.finetune_seed is not None and args.finetune_seed < 0:
        ap.error(f"--finetune-seed: expected >= 0, got {args.finetune_seed}")
    if args.finetune_feature_distill < 0:
        ap.error(f"--finetune-feature-distill: expected >= 0, got {args.finetune_feature_distill}")
    pattern, steps = SCALES[args.scale]
    config = args.config or pattern.format(task=args.task)
    try:
        cfg = load_config(config, args.set)
    except (OSError, ValueError) as e:  # ConfigError is a ValueError; both messages name the file and key
        ap.error(f"--config {config}: {e}")
    task = cfg.task
    sizes = unet_stage_sizes(cfg.model.num_blocks, cfg.model.num_refinement_blocks)
    for text in args.archs:
        try:
            Arch.parse(text, sizes)
        except ValueError as e:
            ap.error(f"--arch {text}: {e}")
    if task != args.task:
        ap.error(f"--config {config}: its task is {task!r}, but --task is {args.task!r}")
    name = Path(config).stem if args.config else args.task
    lut_calibrate = args.lut_calibrate
    reused_lut = Path(args.from_run or ".") / "lut.json"
    if args.from_run and reused_lut.is_file():  # the copy is used as it is, so the run takes its calibration over
        try:
            lut_calibrate = lut_calibration_of(reused_lut)
        except ValueError as e:
            ap.error(f"--from-run: {e}")
    spec = PipelineSpec(config=config, out=args.out or f"runs/reproduce/{name}-{args.scale}",
                        resolution=args.resolution, threads=args.threads,
                        finetune_steps=args.finetune_steps or steps, budget_fraction=args.budget_fraction,
                        chosen=("knee", "best_under_budget"), latency_rounds=args.latency_rounds,
                        overrides=args.set, finetune_distill=args.finetune_distill,
                        finetune_teacher=args.finetune_teacher, extra_archs=tuple(args.archs),
                        finetune_feature_distill=args.finetune_feature_distill, finetune_seed=args.finetune_seed,
                        lut_calibrate=lut_calibrate, rerank_steps=args.rerank, rerank_rungs=args.rerank_rungs,
                        rerank_eta=args.rerank_eta, rerank_slack=args.rerank_slack,
                        rerank_min_speedup=args.rerank_min_speedup)
    if args.from_run:
        try:
            _check_same_network(Path(args.from_run) / "supernet" / "supernet.pt", load_config(config, args.set))
            copied = reuse_steps(args.from_run, ROOT / spec.out)
        except (OSError, ValueError) as e:
            ap.error(str(e))
        print(f"reused from {args.from_run}: {len(copied)} files copied into {spec.out}", flush=True)
    run_pipeline(spec)


if __name__ == "__main__":
    main()
