"""Command lines behind ``train.py`` (supernet | subnet | eval | export) and ``evaluate.py``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from supernet.arch import Arch
from supernet.config import ConfigError, load_config


def _add_config_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--config", required=required, help="YAML config (configs/<task>.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set supernet.lr=1e-4 (repeatable)")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="train.py", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("supernet", help="teacher -> block-wise distillation -> supernet training")
    _add_config_args(p, required=True)
    p.add_argument("--out", help="output folder (default: <train.out_dir>/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    p.add_argument("--phases", default="teacher,distill,supernet", help="comma-separated phases to run")

    p = sub.add_parser("subnet", help="extract an arch from a supernet checkpoint and fine-tune it")
    p.add_argument("--arch", required=True, help="arch string, arch.json or chosen.json")
    p.add_argument("--from", dest="from_ckpt", required=True, help="supernet checkpoint (supernet.pt)")
    _add_config_args(p, required=False)
    p.add_argument("--steps", type=int, help="fine-tuning steps (default: supernet.steps of the config)")
    p.add_argument("--out", help="output folder (default: <train.out_dir>/<name>/subnet-<arch>)")
    p.add_argument("--resume", action="store_true")

    p = sub.add_parser("eval", help="PSNR/SSIM of a checkpoint (any arch of a supernet, or a subnet)")
    _add_eval_args(p)

    p = sub.add_parser("export", help="export one path (or a subnet checkpoint) to ONNX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--arch", help="path to extract from a supernet checkpoint")
    p.add_argument("--size", type=int, default=256, help="example input height/width")
    p.add_argument("--out", required=True, help="output .onnx path")
    return ap


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="supernet.pt / subnet.pt / last.pt")
    p.add_argument("--arch", help="path to evaluate on a supernet checkpoint (string, arch.json, chosen.json); "
                                  "default all-T")
    _add_config_args(p, required=False)
    p.add_argument("--tile", type=int, help="tiled inference tile size (multiple of 8)")
    p.add_argument("--overlap", type=int, help="tile overlap in pixels")
    p.add_argument("--csv", help="per-image CSV path (default: next to the checkpoint)")
    p.add_argument("--max-images", type=int)
    p.add_argument("--device", default="auto")


def _config_for(args, ckpt_config) -> "object":
    """The config to use: ``--config`` (+ ``--set``) when given, else the checkpoint's (+ ``--set``)."""
    if args.config:
        return load_config(args.config, args.overrides)
    from supernet.config import Config, apply_override

    data = ckpt_config.to_dict()
    for o in args.overrides:
        apply_override(data, o)
    return Config.from_dict(data, source="checkpoint config + --set")


def cmd_supernet(args) -> int:
    from supernet.training.run import train_supernet

    cfg = load_config(args.config, args.overrides)
    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    train_supernet(cfg, args.out, resume=args.resume, phases=phases)
    return 0


def cmd_subnet(args) -> int:
    from supernet.checkpoint import config_of, load_checkpoint
    from supernet.training.run import train_subnet

    arch = Arch.load(args.arch)
    cfg = _config_for(args, config_of(load_checkpoint(args.from_ckpt)))
    train_subnet(cfg, arch, args.from_ckpt, args.out, steps=args.steps, resume=args.resume)
    return 0


def cmd_eval(args) -> int:
    from supernet.checkpoint import load_model
    from supernet.data import build_datasets
    from supernet.evaluation import evaluate
    from supernet.training.distributed import pick_device

    device = pick_device(args.device)
    model, ckpt_cfg = load_model(args.checkpoint, map_location=device)
    cfg = _config_for(args, ckpt_cfg)
    arch = None
    if hasattr(model, "set_arch"):
        arch = Arch.load(args.arch) if args.arch else Arch.uniform(model, "T")
    elif args.arch and Arch.load(args.arch) != getattr(model, "arch", None):
        raise ValueError(f"{args.checkpoint} is a subnet checkpoint of arch {getattr(model, 'arch', '?')}; "
                         f"it cannot run arch {args.arch} (drop --arch)")
    _, val_ds = build_datasets(cfg.data, cfg.task, cfg.seed)
    tile = args.tile if args.tile is not None else (cfg.eval.tile or None)
    overlap = args.overlap if args.overlap is not None else cfg.eval.overlap
    tag = str(arch) if arch is not None else "subnet"
    csv_path = args.csv or Path(args.checkpoint).with_name(f"eval-{cfg.task}-{tag}.csv")
    r = evaluate(model, val_ds, cfg.task, tile=tile, overlap=overlap, arch=arch, device=device,
                 max_images=args.max_images, csv_path=csv_path, progress=True)
    print(f"{cfg.task} {tag}: PSNR {r['psnr']:.2f} dB  SSIM {r['ssim']:.4f}  ({r['n']} images, {r['protocol']})")
    print(f"per-image CSV: {csv_path}")
    print(json.dumps({"arch": tag, "psnr": r["psnr"], "ssim": r["ssim"], "n": r["n"]}))
    return 0


def cmd_export(args) -> int:
    import torch

    from supernet.checkpoint import load_model
    from supernet.export import export_onnx

    model, _ = load_model(args.checkpoint)
    if hasattr(model, "extract"):
        model = model.extract(Arch.load(args.arch) if args.arch else Arch.uniform(model, "T")).eval()
    x = torch.rand(1, model.config.get("inp_channels", 3) if hasattr(model, "config") else 3, args.size, args.size)
    path = export_onnx(model, x, args.out)
    print(f"wrote {path}")
    return 0


# exit status of a training stopped by a non-finite loss or gradient (other failures: 1, bad input: 2), so that
# scripts such as the pipeline can tell a diverged run from a broken one
DIVERGED_EXIT = 3

COMMANDS = {"supernet": cmd_supernet, "subnet": cmd_subnet, "eval": cmd_eval, "export": cmd_export}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # TrainingDiverged and friends: the message says what was kept
        from supernet.training.loop import TrainingDiverged

        print(f"error: {e}", file=sys.stderr)
        return DIVERGED_EXIT if isinstance(e, TrainingDiverged) else 1


def eval_main(argv: list[str] | None = None) -> int:
    """``evaluate.py``: the ``eval`` command on its own."""
    p = argparse.ArgumentParser(prog="evaluate.py", description="PSNR/SSIM of a checkpoint on a validation set")
    _add_eval_args(p)
    return cmd_eval(p.parse_args(argv))
