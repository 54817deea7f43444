"""Reading images and finding degraded/clean pairs in the folder layouts restoration datasets ship in.

Pairing rule: an input is an image under ``root`` (searched recursively) whose path has a folder named
``input_subdir`` (when set) and whose file name contains ``input_tag`` (when set); its target is the same path
with that folder renamed to ``target_subdir`` and the tag replaced by ``target_tag`` (any image extension is
accepted when the exact name is missing). Layouts covered (``data.`` keys to set):

* Restormer's prepared sets, ``<dir>/input`` + ``<dir>/target`` (defaults): Rain13K, Rain100H/L, Test100/1200,
  GoPro/HIDE/RealBlur test sets, SIDD/DND converted to PNG;
* Restormer's cropped training patches, ``<dir>/input_crops`` + ``<dir>/target_crops`` (GoPro, SIDD):
  ``input_subdir: input_crops``, ``target_subdir: target_crops``;
* the original GoPro_Large tree ``<dir>/<scene>/blur/*.png`` + ``<dir>/<scene>/sharp/*.png``:
  ``input_subdir: blur``, ``target_subdir: sharp`` (``blur_gamma`` folders are ignored);
* SIDD-Medium sRGB ``<dir>/Data/<scene>/NOISY_SRGB_010.PNG`` + ``GT_SRGB_010.PNG`` in the same folder:
  ``input_subdir: ""``, ``target_subdir: ""``, ``input_tag: NOISY``, ``target_tag: GT``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_SHOWN = 10  # names listed in an error before "... and N more"


def _listing(items: list[str]) -> str:
    more = f" ... and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return "; ".join(items[:_SHOWN]) + more


def to_float(img: Image.Image, grayscale: bool) -> np.ndarray:
    """A PIL image as float32 ``(H, W, C)`` in [0, 1]: C = 1 when ``grayscale`` else 3 (alpha dropped)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img, dtype=np.float32) / 65535.0  # 16-bit single channel
        arr = arr[..., None]
        return arr if grayscale else np.repeat(arr, 3, axis=2)
    arr = np.asarray(img.convert("L" if grayscale else "RGB"), dtype=np.float32) / 255.0
    return arr[..., None] if grayscale else arr


def read_image(path: str | Path, grayscale: bool = False) -> np.ndarray:
    """Decode an image file fully (so truncation is caught here, naming the file)."""
    try:
        with Image.open(path) as img:
            img.load()
            return to_float(img, grayscale)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"cannot read image {path}: {err} (unreadable, truncated or not an image)") from err


def image_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` from the file header only (cheap), naming the file when it cannot be read."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            return h, w
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"cannot read image {path}: {err} (unreadable or not an image)") from err


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _check_folder(root: Path, key: str) -> None:
    if not root.is_dir():
        raise FileNotFoundError(f"{key}: folder {root} does not exist")


def list_images(root: str | Path, key: str = "data.train_dir") -> list[Path]:
    """Image files under ``root`` (recursive, sorted); an empty or missing folder fails naming it."""
    root = Path(root)
    _check_folder(root, key)
    files = sorted(p for p in root.rglob("*") if _is_image(p))
    if not files:
        raise ValueError(f"{key}: folder {root} has no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files


@dataclass(frozen=True)
class Pair:
    """A degraded input file, its clean target file and the pair's name (path without the input folder/ext)."""

    input: Path
    target: Path
    name: str


def _matches(rel: Path, subdir: str, tag: str) -> bool:
    return (not subdir or subdir in rel.parts[:-1]) and (not tag or tag in rel.name)


def _partner_stem(rel: Path, from_dir: str, to_dir: str, from_tag: str, to_tag: str) -> Path:
    parts = list(rel.parts)
    if from_dir:
        parts[parts.index(from_dir)] = to_dir
    name = Path(parts[-1])
    stem = name.stem.replace(from_tag, to_tag, 1) if from_tag else name.stem
    parts[-1] = stem + name.suffix
    return Path(*parts)


def _find_partner(root: Path, rel: Path) -> Path | None:
    exact = root / rel
    if exact.is_file():
        return exact
    for ext in IMAGE_EXTENSIONS:  # same stem, another extension (e.g. .jpg inputs with .png targets)
        for cand in (exact.with_suffix(ext), exact.with_suffix(ext.upper())):
            if cand.is_file():
                return cand
    return None


def find_pairs(root: str | Path, input_subdir: str = "input", target_subdir: str = "target", input_tag: str = "",
               target_tag: str = "", key: str = "data.train_dir", check_sizes: bool = True) -> list[Pair]:
    """All input/target pairs under ``root`` by the pairing rule above.

    Fails naming the folder when it holds no inputs, naming the files when inputs or targets lack a partner,
    and naming both files when a pair's sizes differ (read from headers, so this stays fast on large sets).
    """
    if not (input_subdir or input_tag) or (input_subdir, input_tag) == (target_subdir, target_tag):
        raise ValueError(f"{key}: inputs and targets need different folder names or file-name tags, got "
                         f"{input_subdir!r}/{input_tag!r} and {target_subdir!r}/{target_tag!r}")
    root = Path(root)
    _check_folder(root, key)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if _is_image(p))
    inputs = [rel for rel in files if _matches(rel, input_subdir, input_tag)]
    if not inputs:
        subdirs = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise ValueError(f"{key}: no input images in {root} (looked for folders named {input_subdir!r} and file "
                         f"names containing {input_tag!r}); its subfolders: {subdirs}. Set data.input_subdir / "
                         f"data.target_subdir (e.g. input_crops/target_crops, blur/sharp) or data.input_tag.")
    pairs, missing = [], []
    for rel in inputs:
        expected = _partner_stem(rel, input_subdir, target_subdir, input_tag, target_tag)
        target = _find_partner(root, expected)
        if target is None:
            missing.append(f"{root / rel} (expected target {root / expected})")
            continue
        name_parts = [p for p in rel.with_suffix("").parts if p != input_subdir] if input_subdir else \
            list(rel.with_suffix("").parts)
        pairs.append(Pair(root / rel, target, "/".join(name_parts)))
    paired_targets = {p.target.resolve() for p in pairs}
    for rel in files:  # targets without an input
        if _matches(rel, target_subdir, target_tag) and not _matches(rel, input_subdir, input_tag):
            if (root / rel).resolve() not in paired_targets:
                missing.append(f"{root / rel} (target without an input)")
    if missing:
        raise ValueError(f"{key}: {len(missing)} image(s) in {root} have no partner: {_listing(missing)}")
    if check_sizes:
        bad = []
        for p in pairs:
            si, st = image_size(p.input), image_size(p.target)
            if si != st:
                bad.append(f"{p.input} is {si[0]}x{si[1]} but {p.target} is {st[0]}x{st[1]}")
        if bad:
            raise ValueError(f"{key}: {len(bad)} input/target pair(s) differ in size: {_listing(bad)}")
    return pairs
