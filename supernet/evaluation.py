"""PSNR/SSIM evaluation by the protocols papers compare against, for any path of a supernet or any subnet.

The task's registry entry picks the channel (RGB for denoising/deblurring, Y for deraining) and border crop.
Inputs are reflect-padded to a multiple of 8 and the output cropped back (Restormer's test scripts do the same;
the network pads internally too, so this is a no-op guard for models that do not). Large images can be run in
overlapping tiles whose outputs are averaged where they overlap.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from supernet.arch import Arch
from supernet.data.tasks import get_task
from supernet.metrics import psnr, ssim

PAD_MULTIPLE = 8


def pad_reflect(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad (B, C, H, W) on the bottom/right to multiples of ``multiple``; returns (padded, H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def _positions(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    pos = list(range(0, size - tile, stride))
    return pos + [size - tile]


def tiled_forward(model: nn.Module, x: torch.Tensor, tile: int, overlap: int = 32) -> torch.Tensor:
    """Run ``model`` on overlapping ``tile`` x ``tile`` windows of (B, C, H, W) and average the overlaps."""
    if tile <= 0 or tile % PAD_MULTIPLE:
        raise ValueError(f"eval.tile must be a positive multiple of {PAD_MULTIPLE}, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"eval.overlap must be in [0, tile={tile}), got {overlap}")
    b, _, h, w = x.shape
    stride = tile - overlap
    out = count = None
    for top in _positions(h, tile, stride):
        for left in _positions(w, tile, stride):
            patch = x[..., top:top + tile, left:left + tile]
            y = model(patch)
            if out is None:
                out = x.new_zeros(b, y.shape[1], h, w)
                count = x.new_zeros(1, 1, h, w)
            out[..., top:top + tile, left:left + tile] += y
            count[..., top:top + tile, left:left + tile] += 1
    return out / count


@torch.inference_mode()
def restore(model: nn.Module, x: torch.Tensor, tile: int | None = None, overlap: int = 32) -> torch.Tensor:
    """The restored (B, C, H, W) image for input ``x``: padded to a multiple of 8, optionally tiled, cropped."""
    xp, h, w = pad_reflect(x)
    y = tiled_forward(model, xp, tile, overlap) if tile else model(xp)
    return y[..., :h, :w]


def evaluate(model: nn.Module, dataset, task: str, tile: int | None = None, overlap: int = 32,
             arch: Arch | str | None = None, device: torch.device | str | None = None,
             max_images: int | None = None, csv_path: str | Path | None = None, progress: bool = False,
             return_first: bool = False) -> dict[str, Any]:
    """Mean PSNR/SSIM of ``model`` (on path ``arch`` when given) over ``dataset`` items {input, target, name}.

    Returns ``{"psnr", "ssim", "n", "per_image": [{"name", "psnr", "ssim"}]}`` (plus ``first``: the first image's
    (input, output, target) when ``return_first``). ``csv_path`` writes the per-image rows and the mean.
    """
    spec = get_task(task)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    previous_arch = getattr(model, "arch", None)
    if arch is not None:
        model.set_arch(Arch.parse(arch, model) if isinstance(arch, str) else arch)
    was_training = model.training
    model.eval()
    n = len(dataset) if not max_images else min(max_images, len(dataset))
    rows, first = [], None
    try:
        for i in tqdm(range(n), desc="eval", disable=not progress, leave=False):
            item = dataset[i]
            x = item["input"].unsqueeze(0).to(device)
            target = item["target"].unsqueeze(0).to(device)
            y = restore(model, x, tile, overlap).float().clamp(0, 1)
            kw = dict(data_range=1.0, y_channel=spec.y_channel, crop_border=spec.crop_border)
            rows.append({"name": item.get("name", str(i)), "psnr": float(psnr(y, target, **kw)),
                         "ssim": float(ssim(y, target, **kw))})
            if return_first and first is None:
                first = (x.cpu(), y.cpu(), target.cpu())
    finally:
        model.train(was_training)
        if arch is not None and previous_arch is not None:
            model.set_arch(previous_arch)
    if not rows:
        raise ValueError("evaluation set is empty")
    result: dict[str, Any] = {
        "psnr": sum(r["psnr"] for r in rows) / len(rows), "ssim": sum(r["ssim"] for r in rows) / len(rows),
        "n": len(rows), "per_image": rows, "protocol": f"{spec.metric_channel.upper()} channel, "
                                                      f"crop_border {spec.crop_border}, padded to x{PAD_MULTIPLE}"}
    if return_first:
        result["first"] = first
    if csv_path is not None:
        write_csv(result, csv_path)
    return result


def write_csv(result: dict, path: str | Path) -> Path:
    """Per-image rows then a ``mean`` row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "psnr", "ssim"])
        for r in result["per_image"]:
            writer.writerow([r["name"], f"{r['psnr']:.4f}", f"{r['ssim']:.6f}"])
        writer.writerow(["mean", f"{result['psnr']:.4f}", f"{result['ssim']:.6f}"])
    tmp.replace(path)
    return path
