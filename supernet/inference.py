"""Whole-image inference: padding to a multiple of 8 (done by the network) and tiled restoration in bounded memory."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .unet import PAD_MULTIPLE


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


@torch.no_grad()
def restore(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: Optional[int] = None,
            overlap: int = 32) -> torch.Tensor:
    """Run ``model`` on (B, C, H, W) ``x``; with ``tile``, on overlapping tiles blended by averaging.

    Peak activation memory is that of one ``tile`` x ``tile`` crop. Tiles are rounded up to a multiple of 8 so the
    network does not pad every tile; the last row/column of tiles is aligned to the image border.
    """
    if x.dim() != 4:
        raise ValueError(f"restore expects a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    if tile is None or (h <= tile and w <= tile):
        return model(x)
    if tile <= 0 or overlap < 0 or overlap >= tile:
        raise ValueError(f"tiled inference needs tile > overlap >= 0, got tile={tile}, overlap={overlap}")
    tile = -(-tile // PAD_MULTIPLE) * PAD_MULTIPLE
    th, tw = min(tile, h), min(tile, w)
    stride = tile - overlap
    out = None
    weight = torch.zeros(1, 1, h, w, dtype=x.dtype, device=x.device)
    for top in _starts(h, th, stride):
        for left in _starts(w, tw, stride):
            y = model(x[..., top:top + th, left:left + tw])
            if out is None:
                out = torch.zeros(b, y.shape[1], h, w, dtype=y.dtype, device=y.device)
            out[..., top:top + th, left:left + tw] += y
            weight[..., top:top + th, left:left + tw] += 1
    return out / weight
