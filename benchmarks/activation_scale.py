#!/usr/bin/env python
"""How large does the residual stream get along one path? Max |output| of every block, per validation image.

A block without a token norm is not scale-invariant: in the norm-free SSM block (``model.ssm.norm: none``) x, B and
C are all linear in the block's input, so the scan's output grows with the input's cube. A stream that is a little
larger than in training (a whole image instead of a training patch: the scan sums over more tokens) can then grow
block after block until it overflows, and the arch scores NaN. This prints, for a supernet (or extracted subnet)
checkpoint and one path, each block's largest absolute output on each validation image, and the first block whose
output is not finite.

    python benchmarks/activation_scale.py --checkpoint runs/x/supernet/supernet.pt --arch SSSSSSSS
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def block_scales(model, x) -> list[tuple[str, float]]:
    """(block name, max |output|) for every block of ``model``'s current path, in forward order; NaN when the
    output is not finite."""
    import torch

    from supernet.unet import STAGE_MODULES

    stage_modules = set(STAGE_MODULES.values())
    out: list[tuple[str, float]] = []
    hooks = []
    for name, module in model.named_modules():
        parent, _, index = name.rpartition(".")
        if parent in stage_modules and index.isdigit():  # one block (or slot) of a stage
            def record(mod, inp, output, name=name):
                finite = bool(torch.isfinite(output).all())
                out.append((name, float(output.abs().max()) if finite else math.nan))
            hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="an ENS checkpoint (supernet or subnet)")
    ap.add_argument("--arch", default="SSSSSSSS", help="the supernet's path (ignored for a subnet)")
    ap.add_argument("--eval-set", action="append", default=[], metavar="data.val_crop|data.val_crops=VALUE",
                    help="another validation set of the checkpoint's images, as search.py --eval-set")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from supernet.checkpoint import load_model
    from supernet.config import with_validation_set
    from supernet.data import build_datasets

    torch.set_num_threads(args.threads)
    if not Path(args.checkpoint).is_file():
        raise SystemExit(f"--checkpoint {args.checkpoint}: no such file")
    model, cfg = load_model(args.checkpoint)
    model.eval()
    if hasattr(model, "set_arch"):
        model.set_arch(args.arch)
    path = str(getattr(model, "arch", args.arch))
    cfg = with_validation_set(cfg, args.eval_set)
    _, val = build_datasets(cfg.data, cfg.task, cfg.seed)
    columns, names = [], None
    for i in range(len(val)):
        item = val[i]
        scales = block_scales(model, item["input"][None])
        names = names or [n for n, _ in scales]
        columns.append((f"{item.get('name', i)} {tuple(item['input'].shape[1:])}", [v for _, v in scales]))
    print(f"{args.checkpoint}: path {path}, validation set data.val_crop={cfg.data.val_crop}, "
          f"data.val_crops={cfg.data.val_crops} ({len(val)} items); max |block output|, nan = not finite")
    print("| block | " + " | ".join(c for c, _ in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for j, name in enumerate(names or []):
        print(f"| {name} | " + " | ".join(f"{col[j]:.3g}" for _, col in columns) + " |")
    for label, col in columns:
        bad = next((names[j] for j, v in enumerate(col) if math.isnan(v)), None)
        grow = max(v for v in col if not math.isnan(v)) if any(not math.isnan(v) for v in col) else math.nan
        print(f"{label}: largest finite output {grow:.3g}; "
              + (f"first non-finite block {bad}" if bad else "every block finite"))


if __name__ == "__main__":
    main()
