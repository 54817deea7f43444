#!/usr/bin/env python
"""Does the scan's long memory hurt whole images? PSNR of fine-tuned subnets with every SSM block's step dt floored
at inference (``model.ssm.dt_floor``), and optionally tiled at the training patch size.

The proxy recipes train on 64-pixel patches and validate on whole photos of about 512 x 512 pixels, so every
scan runs over 16-64 times more tokens than it saw in training. A token whose step dt is small barely forgets the
state (decay ``exp(-|A| dt)`` per token, |A| learnt from [1, 4]), and such a state can sum over far more tokens on a
whole image than on a patch. Flooring dt at inference bounds that memory without retraining; a model that relies on
its long memory gets worse. Tiled inference at the training patch size (``--tile``) takes every block, transformer
and SSM, back to the token counts it was trained on (Restormer's MDTA also pools over every pixel of its input).

    python benchmarks/scan_memory.py runs/reproduce/RUN [RUN...] --floors 0,0.1,0.3,0.6 --tile 64
    python benchmarks/scan_memory.py --checkpoint runs/x/subnet-SSSSTSSS/subnet.pt

Prints one row per checkpoint and inference mode: mean and per-image PSNR on the checkpoint's validation set.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def floor_dt(model, floor: float) -> int:
    """Set ``dt_floor`` of every SSM block of ``model`` (0: off); the number of blocks changed. For inference
    probes only: the model's stored config is left as it was."""
    from supernet.ssm import SSMBlock

    n = 0
    for m in model.modules():
        if isinstance(m, SSMBlock):
            opts = replace(m.opts, dt_floor=floor)
            opts.validate()
            m.opts = opts
            n += 1
    return n


def parse_floors(text: str) -> list[float]:
    try:
        floors = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"--floors {text!r}: expected comma-separated numbers, e.g. 0,0.1,0.3") from None
    if not floors or any(f < 0 for f in floors):
        raise SystemExit(f"--floors {text!r}: expected one or more numbers >= 0")
    return floors


def checkpoints(runs: list[str], extra: list[str]) -> list[Path]:
    out = []
    for run in runs:
        found = sorted(Path(run).glob("subnet-*/subnet.pt"))
        if not found:
            raise SystemExit(f"{run}: no subnet-*/subnet.pt (not a finished reproduce.py run folder)")
        out += found
    for ck in extra:
        if not Path(ck).is_file():
            raise SystemExit(f"--checkpoint {ck}: no such file")
        out.append(Path(ck))
    if not out:
        raise SystemExit("name a run folder or --checkpoint")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", help="reproduce.py run folders (every subnet-*/subnet.pt in them)")
    ap.add_argument("--checkpoint", action="append", default=[], help="a subnet checkpoint (repeatable)")
    ap.add_argument("--floors", default="0,0.1,0.3,0.6",
                    help="dt floors to set at inference, replacing the trained one (0: as trained)")
    ap.add_argument("--tile", type=int, help="also evaluate tiled at this size (floor as trained), e.g. 64")
    ap.add_argument("--overlap", type=int, default=16, help="tile overlap in pixels")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    floors = parse_floors(args.floors)
    paths = checkpoints(args.runs, args.checkpoint)

    import torch

    from supernet.checkpoint import load_model
    from supernet.data import build_datasets
    from supernet.evaluation import evaluate
    from supernet.ssm import SSMBlock

    torch.set_num_threads(args.threads)
    print("| checkpoint | arch | inference | PSNR | per image |")
    print("|---|---|---|---|---|")
    for ck in paths:
        model, cfg = load_model(str(ck))
        model.eval()
        if hasattr(model, "set_arch"):
            raise SystemExit(f"{ck}: a supernet checkpoint; name fine-tuned subnets (subnet.pt)")
        blocks = [m for m in model.modules() if isinstance(m, SSMBlock)]
        as_trained = [m.opts for m in blocks]
        trained = max((o.dt_floor for o in as_trained), default=0.0)
        _, val = build_datasets(cfg.data, cfg.task, cfg.seed)
        arch = str(getattr(model, "arch", "?"))
        plain = "as trained" + (f" (dt floor {trained:g})" if trained else "" if blocks else " (no SSM block)")
        modes = [(f"dt floor {f:g}" if f else plain, f, None) for f in (floors if blocks else [0.0])]
        if args.tile:
            modes.append((f"tiled {args.tile} (overlap {args.overlap})", 0.0, args.tile))
        for label, floor, tile in modes:
            for m, opts in zip(blocks, as_trained):
                m.opts = opts
            if floor:
                floor_dt(model, floor)
            r = evaluate(model, val, cfg.task, tile=tile, overlap=args.overlap)
            per = " ".join(f"{p['name']} {p['psnr']:.2f}" for p in r["per_image"])
            print(f"| {ck.parent.parent.name}/{ck.parent.name} | `{arch}` | {label} | {r['psnr']:.2f} | {per} |",
                  flush=True)


if __name__ == "__main__":
    main()
