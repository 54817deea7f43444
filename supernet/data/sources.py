"""Where clean images come from: photos bundled with scikit-image (no download) or a folder; and the held-out split.

An image list has ``names``, ``describe(i)`` (what an error should name: a file path or ``skimage.data.<name>``)
and ``load(i)`` returning float32 ``(H, W, C)`` in [0, 1].
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from supernet.data.folders import list_images, read_image, to_float

# Natural photos that ship inside scikit-image's wheel (loadable offline; those needing pooch are left out).
# chelsea == cat, so only one is listed. Greyscale ones are replicated to RGB for colour training.
EMBEDDED_IMAGES: dict[str, str] = {
    "astronaut": "colour", "chelsea": "colour", "coffee": "colour", "rocket": "colour",
    "hubble_deep_field": "colour", "immunohistochemistry": "colour", "retina": "colour",
    "camera": "gray", "brick": "gray", "grass": "gray", "gravel": "gray", "moon": "gray", "coins": "gray",
    "clock": "gray",
}


class ImageList(Protocol):
    """What the datasets need from a source of clean images."""

    names: list[str]

    def describe(self, i: int) -> str: ...

    def load(self, i: int) -> np.ndarray: ...


class EmbeddedImages:
    """Photos from ``skimage.data``, decoded once at construction and kept in memory (about 60 MB for all)."""

    def __init__(self, names: Sequence[str], grayscale: bool) -> None:
        unknown = [n for n in names if n not in EMBEDDED_IMAGES]
        if unknown:
            raise ValueError(f"data.embedded_images: unknown {unknown}; known: {', '.join(EMBEDDED_IMAGES)}")
        self.names = list(names)
        self.grayscale = grayscale
        self._cache: dict[int, np.ndarray] = {}
        for i in range(len(self.names)):  # decode now: fails early, and forked DataLoader workers share them
            self.load(i)

    def describe(self, i: int) -> str:
        return f"skimage.data.{self.names[i]}"

    def load(self, i: int) -> np.ndarray:
        if i not in self._cache:
            import skimage.data

            try:
                arr = getattr(skimage.data, self.names[i])()
            except Exception as err:  # e.g. a scikit-image release that moved the file to a download
                raise RuntimeError(f"cannot load embedded image {self.describe(i)} offline: {err}; "
                                   f"drop it from data.embedded_images") from err
            self._cache[i] = to_float(Image.fromarray(np.asarray(arr, dtype=np.uint8)), self.grayscale)
        return self._cache[i]


class FolderImages:
    """Image files read on demand (datasets can be larger than memory)."""

    def __init__(self, paths: Sequence[Path], root: Path, grayscale: bool) -> None:
        self.paths = list(paths)
        self.names = [str(p.relative_to(root).with_suffix("")) for p in self.paths]
        self.grayscale = grayscale

    @classmethod
    def from_folder(cls, root: str | Path, grayscale: bool, key: str) -> "FolderImages":
        return cls(list_images(root, key), Path(root), grayscale)

    def describe(self, i: int) -> str:
        return str(self.paths[i])

    def load(self, i: int) -> np.ndarray:
        return read_image(self.paths[i], self.grayscale)


def split_indices(n: int, val_count: int, val_fraction: float, split_seed: int) -> tuple[list[int], list[int]]:
    """Deterministic disjoint (train, val) index lists: a permutation seeded by ``split_seed`` alone, so the
    validation images do not move with the training seed. At least one image on each side."""
    if n < 2:
        raise ValueError(f"need at least 2 images to hold one out for validation, got {n}; set data.val_dir")
    k = val_count if val_count > 0 else max(1, round(val_fraction * n))
    if k >= n:
        raise ValueError(f"data.val_count/val_fraction: holding out {k} of {n} images leaves none for training")
    order = np.random.default_rng(split_seed).permutation(n).tolist()
    return sorted(order[k:]), sorted(order[:k])


class Subset:
    """The images of ``base`` at ``indices`` (an image list itself)."""

    def __init__(self, base: ImageList, indices: Sequence[int]) -> None:
        self.base, self.indices = base, list(indices)
        self.names = [base.names[i] for i in self.indices]

    def describe(self, i: int) -> str:
        return self.base.describe(self.indices[i])

    def load(self, i: int) -> np.ndarray:
        return self.base.load(self.indices[i])
