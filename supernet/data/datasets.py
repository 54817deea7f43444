"""Restoration datasets: random training crops and fixed validation crops of (degraded, clean) pairs.

Items are ``{"input": (C, H, W), "target": (C, H, W), "name": str}`` float32 tensors. Training crops are
deterministic given (seed, epoch, index): each item draws from its own ``numpy`` generator seeded with
``[seed, 0, epoch, index]``, so DataLoader workers and resumed runs see the same crops, flips and degradations.
``set_epoch``/``set_patch_size`` change what the next ``iter(loader)`` yields (non-persistent workers copy the
dataset at that moment; with ``persistent_workers=True`` rebuild the loader instead).
Validation crops sit at fixed places and their degradations draw from ``[split_seed, 1, index]``.
"""
from __future__ import annotations

import math
from typing import Callable, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from supernet.data.config import DegradationConfig
from supernet.data.degradations import DEGRADATIONS, degrade
from supernet.data.folders import Pair, read_image
from supernet.data.sources import ImageList

TRAIN_STREAM, VAL_STREAM = 0, 1


class PairSource(Protocol):
    """Images of one split: clean targets plus either given inputs or a way to degrade them."""

    names: list[str]
    margin: int  # context pixels each side that ``degrade`` needs

    def describe(self, i: int) -> str: ...

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]: ...

    def degrade(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


class SyntheticPairs:
    """Clean images degraded on the fly by one :data:`~supernet.data.degradations.DEGRADATIONS` kind."""

    def __init__(self, images: ImageList, kind: str, cfg: DegradationConfig) -> None:
        self.images, self.kind, self.cfg = images, kind, cfg
        self.names = images.names
        self.margin = DEGRADATIONS[kind].margin(cfg)

    def describe(self, i: int) -> str:
        return self.images.describe(i)

    def load(self, i: int) -> tuple[np.ndarray, None]:
        return self.images.load(i), None

    def degrade(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return degrade(clean, rng, self.cfg, self.kind)


class FolderPairs:
    """Degraded/clean file pairs found by :func:`~supernet.data.folders.find_pairs`."""

    margin = 0

    def __init__(self, pairs: list[Pair], grayscale: bool) -> None:
        self.pairs, self.grayscale = pairs, grayscale
        self.names = [p.name for p in pairs]

    def describe(self, i: int) -> str:
        return str(self.pairs[i].input)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self.pairs[i]
        inp, tgt = read_image(pair.input, self.grayscale), read_image(pair.target, self.grayscale)
        if inp.shape != tgt.shape:
            raise ValueError(f"input {pair.input} is {inp.shape[0]}x{inp.shape[1]} but target {pair.target} is "
                             f"{tgt.shape[0]}x{tgt.shape[1]}")
        return tgt, inp

    def degrade(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise RuntimeError("paired sources carry their own degraded inputs")


def _window(img: np.ndarray, y: int, x: int, h: int, w: int) -> np.ndarray:
    """``img[y:y+h, x:x+w]`` where the window may stick out of the image; outside is filled by reflection."""
    H, W = img.shape[:2]
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
    part = img[y0:y1, x0:x1]
    pads = ((y0 - y, y + h - y1), (x0 - x, x + w - x1), (0, 0))
    return np.pad(part, pads, mode="reflect") if any(a or b for a, b in pads[:2]) else part


def _augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One of the 8 flips/rotations by 90 degrees, the same for every array."""
    flip, turns = bool(rng.integers(2)), int(rng.integers(4))
    return [np.rot90(a[:, ::-1] if flip else a, turns, axes=(0, 1)) for a in arrays]


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))  # (H,W,C)->(C,H,W)


def _crop_pair(source: PairSource, i: int, rng: np.random.Generator, size: int, pad_small: bool,
               place: Callable[[int, int], tuple[int, int]], augment: bool) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) crops of ``size`` (0 = whole image) at ``place(free_h, free_w)``; images smaller than
    the crop are centred and reflection-padded, or fail naming the file when ``pad_small`` is off."""
    target, given = source.load(i)
    H, W = target.shape[:2]
    ch, cw = (size, size) if size else (H, W)
    if (H < ch or W < cw) and not pad_small:
        raise ValueError(f"image {source.describe(i)} is {H}x{W}, smaller than the {ch}x{cw} crop; lower "
                         f"data.patch_size / data.val_crop or set data.pad_small: true")
    fy, fx = H - ch, W - cw
    py, px = place(max(fy, 0), max(fx, 0))
    y, x = (py if fy >= 0 else fy // 2), (px if fx >= 0 else fx // 2)  # negative: image centred in the crop
    m = source.margin
    arrays = [_window(a, y - m, x - m, ch + 2 * m, cw + 2 * m) for a in (target, given) if a is not None]
    if augment:
        arrays = _augment(arrays, rng)
    tgt = arrays[0]
    inp = arrays[1] if given is not None else source.degrade(tgt, rng)
    core = (slice(m, m + ch), slice(m, m + cw))  # augmented crops are square, so rotation keeps the shape
    return inp[core], tgt[core]


class TrainCrops(Dataset):
    """``repeat`` random crops per image per epoch, flipped/rotated when ``augment``."""

    def __init__(self, source: PairSource, patch_size: int, repeat: int, augment: bool, seed: int,
                 pad_small: bool = True) -> None:
        self.source, self.patch_size, self.repeat = source, patch_size, repeat
        self.augment, self.seed, self.pad_small, self.epoch = augment, seed, pad_small, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_patch_size(self, patch_size: int) -> None:
        if patch_size < 1:
            raise ValueError(f"patch size must be >= 1, got {patch_size}")
        self.patch_size = int(patch_size)

    def __len__(self) -> int:
        return len(self.source.names) * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} training crops")
        i = index % len(self.source.names)
        rng = np.random.default_rng([self.seed, TRAIN_STREAM, self.epoch, index])

        def place(free_h: int, free_w: int) -> tuple[int, int]:
            return int(rng.integers(free_h + 1)), int(rng.integers(free_w + 1))

        inp, tgt = _crop_pair(self.source, i, rng, self.patch_size, self.pad_small, place, self.augment)
        return {"input": _to_tensor(inp), "target": _to_tensor(tgt), "name": self.source.names[i]}


class ValCrops(Dataset):
    """``crops`` fixed crops of ``crop`` pixels per image (0 = whole image): the centre one, or for several an
    even grid from corner to corner. Degradations use fixed seeds, so every evaluation sees the same pairs."""

    def __init__(self, source: PairSource, crop: int, crops: int, split_seed: int, pad_small: bool = True) -> None:
        if crop == 0 and crops != 1:
            raise ValueError(f"data.val_crops: whole-image validation (val_crop: 0) takes one crop, got {crops}")
        self.source, self.crop, self.crops, self.split_seed, self.pad_small = source, crop, crops, split_seed, pad_small

    def __len__(self) -> int:
        return len(self.source.names) * self.crops

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} validation crops")
        i, k = divmod(index, self.crops)
        grid = math.ceil(math.sqrt(self.crops))
        row, col = divmod(k, grid)
        rows = math.ceil(self.crops / grid)

        def place(free_h: int, free_w: int) -> tuple[int, int]:
            if self.crops == 1:
                return free_h // 2, free_w // 2
            return round(free_h * row / max(rows - 1, 1)), round(free_w * col / max(grid - 1, 1))

        rng = np.random.default_rng([self.split_seed, VAL_STREAM, index])
        inp, tgt = _crop_pair(self.source, i, rng, self.crop, self.pad_small, place, augment=False)
        name = self.source.names[i] + (f"#{k}" if self.crops > 1 else "")
        return {"input": _to_tensor(inp), "target": _to_tensor(tgt), "name": name}
