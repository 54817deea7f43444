"""Whole-image inference: reflect padding to a multiple of 8 and tiled restoration in bounded memory."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .unet import PAD_MULTIPLE, pad_to_multiple


def _positions(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    return list(range(0, size - tile, stride)) + [size - tile]  # the last tile is aligned to the border


def tiled_forward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int,
                  overlap: int = 32) -> torch.Tensor:
    """Run ``model`` on overlapping ``tile`` x ``tile`` windows of (B, C, H, W) and average the overlaps.

    Peak activation memory is that of one window.
    """
    if tile <= 0 or tile % PAD_MULTIPLE:
        raise ValueError(f"eval.tile must be a positive multiple of {PAD_MULTIPLE}, got {tile}")
    if not 0 <= overlap < tile:
        raise ValueError(f"eval.overlap must be in [0, tile={tile}), got {overlap}")
    b, _, h, w = x.shape
    stride = tile - overlap
    out = count = None
    for top in _positions(h, tile, stride):
        for left in _positions(w, tile, stride):
            y = model(x[..., top:top + tile, left:left + tile])
            if out is None:
                out = x.new_zeros(b, y.shape[1], h, w)
                count = x.new_zeros(1, 1, h, w)
            out[..., top:top + tile, left:left + tile] += y
            count[..., top:top + tile, left:left + tile] += 1
    return out / count


@torch.inference_mode()
def restore(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: Optional[int] = None,
            overlap: int = 32) -> torch.Tensor:
    """The restored (B, C, H, W) image: reflect-padded to a multiple of 8, optionally tiled, cropped back."""
    if x.dim() != 4:
        raise ValueError(f"restore expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    xp, h, w = pad_to_multiple(x)
    y = tiled_forward(model, xp, tile, overlap) if tile else model(xp)
    return y[..., :h, :w]
