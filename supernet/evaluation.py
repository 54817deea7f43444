"""PSNR/SSIM evaluation by the protocols papers compare against, for any path of a supernet or any subnet.

The task's registry entry picks the channel (RGB for denoising/deblurring, Y for deraining) and border crop.
Inputs are reflect-padded to a multiple of 8 and the output cropped back (Restormer's test scripts do the same;
the network pads internally too, so this is a no-op guard for models that do not). Large images can be run in
overlapping tiles whose outputs are averaged where they overlap.
"""
from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from supernet.arch import Arch
from supernet.data.tasks import get_task
from supernet.inference import restore, tiled_forward  # padding and tiling live with the model; re-exported
from supernet.metrics import psnr, ssim
from supernet.unet import PAD_MULTIPLE
from supernet.unet import pad_to_multiple as pad_reflect

__all__ = ["evaluate", "input_quality", "write_csv", "restore", "tiled_forward", "pad_reflect", "PAD_MULTIPLE"]


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
    evaluated_arch = getattr(model, "arch", None)
    was_training = model.training
    model.eval()
    n = len(dataset) if not max_images else min(max_images, len(dataset))
    rows, first, not_finite = [], None, []
    try:
        for i in tqdm(range(n), desc="eval", disable=not progress, leave=False):
            item = dataset[i]
            x = item["input"].unsqueeze(0).to(device)
            target = item["target"].unsqueeze(0).to(device)
            y = restore(model, x, tile, overlap).float()
            if not bool(torch.isfinite(y).all()):
                not_finite.append(str(item.get("name", i)))
            y = y.clamp(0, 1)
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
    if not_finite:
        path = f" on path {evaluated_arch}" if evaluated_arch is not None else ""
        warnings.warn(f"the model's output{path} is not finite (NaN/inf) on {len(not_finite)} of {len(rows)} images "
                      f"({', '.join(not_finite[:5])}): its PSNR is NaN. A norm-free SSM block (model.ssm.norm: none) "
                      "can overflow on images unlike its training patches; model.ssm.norm_stages or "
                      "model.ssm.bc_bound bound it (benchmarks/activation_scale.py shows where)", RuntimeWarning)
    result: dict[str, Any] = {
        "psnr": sum(r["psnr"] for r in rows) / len(rows), "ssim": sum(r["ssim"] for r in rows) / len(rows),
        "n": len(rows), "per_image": rows, "protocol": f"{spec.metric_channel.upper()} channel, "
                                                      f"crop_border {spec.crop_border}, padded to x{PAD_MULTIPLE}"}
    if return_first:
        result["first"] = first
    if csv_path is not None:
        write_csv(result, csv_path)
    return result


def input_quality(dataset, task: str, max_images: int | None = None) -> dict[str, Any]:
    """PSNR/SSIM of the degraded inputs themselves against their targets, by the same protocol as :func:`evaluate`.

    The yardstick for every model score: a restorer that gains little over its input leaves quality gaps between
    archs with nothing to measure (the synthetic task is too hard, or too easy, for the training budget).
    """
    return evaluate(nn.Identity(), dataset, task, device="cpu", max_images=max_images)


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
