"""Typed settings of the restoration data pipeline (the ``data:`` section of a training config).

The config loader builds these from YAML and rejects unknown keys; ``__post_init__`` checks values so a bad one
fails with the key's name (``data.patch_size``) before any image is read.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

SOURCES: tuple[str, ...] = ("embedded", "paired", "clean")
DEGRADATION_KINDS: tuple[str, ...] = ("auto", "noise", "rain", "blur", "none")


def _check(ok: bool, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{key}: expected {expected}, got {value!r}")


def _check_range(key: str, value: list, low: float, allow_equal: bool = True) -> None:
    """A two-number ``[lo, hi]`` list with ``low <= lo <= hi``."""
    ok = (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
          and low <= value[0] and (value[0] <= value[1] if allow_equal else value[0] < value[1]))
    _check(ok, key, f"[lo, hi] with {low} <= lo <= hi", value)


@dataclass
class DegradationConfig:
    """How clean images are degraded when the source has no degraded inputs (``embedded`` and ``clean``).

    ``kind``: ``auto`` takes the task's default (noise for denoise, rain for derain, blur for deblur).
    Noise ``sigma`` is in 0-255 units as in DnCNN/Restormer; ``sigma_range`` (``[lo, hi]``, non-empty) overrides
    it with a sigma drawn uniformly per training crop (blind denoising); validation always uses ``sigma``, so
    scores compare with the fixed-sigma tables papers report. ``clip`` clamps the degraded input to [0, 1];
    Restormer's Gaussian-denoising protocol does not clip, so set ``clip: false`` to match it.
    Rain and blur parameters are documented in :mod:`supernet.data.degradations`.
    """

    kind: str = "auto"
    clip: bool = True
    # noise
    sigma: float = 25.0
    sigma_range: list[float] = field(default_factory=list)
    # rain streaks
    rain_angle: list[float] = field(default_factory=lambda: [-20.0, 20.0])
    rain_angle_jitter: float = 3.0
    rain_length: list[float] = field(default_factory=lambda: [10.0, 30.0])
    rain_density: list[float] = field(default_factory=lambda: [0.002, 0.006])
    rain_intensity: list[float] = field(default_factory=lambda: [0.5, 0.9])
    rain_width: float = 1.0
    # motion blur
    blur_kernel_size: int = 21
    blur_length: list[float] = field(default_factory=lambda: [5.0, 17.0])
    blur_steps: int = 64
    blur_jitter: float = 0.1
    blur_noise_sigma: float = 0.0
    blur_angle: list[float] = field(default_factory=list)  # [lo, hi] degrees of the initial heading; []: any

    def __post_init__(self) -> None:
        p = "data.degradation"
        _check(self.kind in DEGRADATION_KINDS, f"{p}.kind", f"one of {DEGRADATION_KINDS}", self.kind)
        _check(self.sigma >= 0, f"{p}.sigma", "a noise level >= 0 (0-255 units)", self.sigma)
        if self.sigma_range:
            _check_range(f"{p}.sigma_range", self.sigma_range, 0.0)
        _check_range(f"{p}.rain_angle", self.rain_angle, -90.0)
        _check(self.rain_angle[1] <= 90.0, f"{p}.rain_angle", "degrees within [-90, 90]", self.rain_angle)
        _check(self.rain_angle_jitter >= 0, f"{p}.rain_angle_jitter", "degrees >= 0", self.rain_angle_jitter)
        _check_range(f"{p}.rain_length", self.rain_length, 1.0)
        _check_range(f"{p}.rain_density", self.rain_density, 0.0)
        _check(self.rain_density[1] <= 1.0, f"{p}.rain_density", "streaks per pixel within [0, 1]",
               self.rain_density)
        _check_range(f"{p}.rain_intensity", self.rain_intensity, 0.0)
        _check(self.rain_width > 0, f"{p}.rain_width", "a streak width in pixels > 0", self.rain_width)
        _check(self.blur_kernel_size >= 3 and self.blur_kernel_size % 2 == 1, f"{p}.blur_kernel_size",
               "an odd size >= 3", self.blur_kernel_size)
        _check_range(f"{p}.blur_length", self.blur_length, 0.0)
        _check(self.blur_length[1] <= self.blur_kernel_size - 1, f"{p}.blur_length",
               f"lengths that fit the kernel (<= blur_kernel_size - 1 = {self.blur_kernel_size - 1})",
               self.blur_length)
        _check(self.blur_steps >= 2, f"{p}.blur_steps", "an int >= 2", self.blur_steps)
        _check(self.blur_jitter >= 0, f"{p}.blur_jitter", "a value >= 0", self.blur_jitter)
        if self.blur_angle:
            _check_range(f"{p}.blur_angle", self.blur_angle, -360.0)
            _check(self.blur_angle[1] <= 360.0, f"{p}.blur_angle", "degrees within [-360, 360]", self.blur_angle)
        _check(self.blur_noise_sigma >= 0, f"{p}.blur_noise_sigma", "a noise level >= 0", self.blur_noise_sigma)


@dataclass
class DataConfig:
    """Where restoration pairs come from and how they are cropped, augmented and split.

    ``source``: ``embedded`` (photos bundled in scikit-image, no download), ``paired`` (degraded/clean folders,
    see :mod:`supernet.data.folders`) or ``clean`` (a folder of clean images, degraded on the fly).
    ``progressive``: ``[[start_step, patch_size, batch_size], ...]`` with increasing start steps (Restormer's
    128 -> 384 schedule); before the first start step, and when empty, ``patch_size``/``batch_size`` apply.
    Validation: ``val_dir`` when given, else a held-out split of the training images (``val_count`` images if
    > 0, else ``round(val_fraction * n)``, at least one) drawn with ``split_seed``, which also seeds the fixed
    validation degradations, so scores do not move with the training seed. Each validation image gives
    ``val_crops`` fixed crops of ``val_crop`` pixels (0 = the whole image). ``repeat``: random crops per training
    image per epoch. ``pad_small``: pad images smaller than a crop by reflection (else an error names the file).
    ``val_input_subdir``/``val_target_subdir``: the pair folders of ``val_dir`` when they differ from the training
    ones (Restormer's GoPro: ``input_crops`` for training, ``input`` for test); empty = the training ones.
    ``embedded_images``: names from :data:`supernet.data.sources.EMBEDDED_IMAGES` (empty = all of them).
    """

    source: str = "embedded"
    train_dir: str = ""
    val_dir: str = ""
    input_subdir: str = "input"
    target_subdir: str = "target"
    input_tag: str = ""
    target_tag: str = ""
    val_input_subdir: str = ""
    val_target_subdir: str = ""
    grayscale: bool = False
    patch_size: int = 64
    progressive: list[list[int]] = field(default_factory=list)
    batch_size: int = 4
    num_workers: int = 0
    val_fraction: float = 0.2
    val_count: int = 0
    val_crop: int = 128
    val_crops: int = 1
    split_seed: int = 0
    repeat: int = 1
    pad_small: bool = True
    augment: bool = True
    embedded_images: list[str] = field(default_factory=list)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)

    def __post_init__(self) -> None:
        if isinstance(self.degradation, dict):  # a loader that does not build nested dataclasses itself
            known = {f.name for f in fields(DegradationConfig)}
            unknown = sorted(set(self.degradation) - known)
            if unknown:
                raise ValueError(f"data.degradation: unknown keys {unknown}; known: {sorted(known)}")
            self.degradation = DegradationConfig(**self.degradation)
        _check(self.source in SOURCES, "data.source", f"one of {SOURCES}", self.source)
        if self.source in ("paired", "clean"):
            _check(bool(self.train_dir), "data.train_dir", f"a folder (source {self.source!r} reads images)",
                   self.train_dir)
        _check(not (self.source == "embedded" and (self.train_dir or self.val_dir)), "data.train_dir/val_dir",
               "empty with source 'embedded' (its images ship with scikit-image)", (self.train_dir, self.val_dir))
        if self.source == "paired":
            _check(bool(self.input_subdir or self.input_tag) and
                   (self.input_subdir, self.input_tag) != (self.target_subdir, self.target_tag),
                   "data.input_subdir/input_tag", "a folder name or file-name tag that tells inputs from targets",
                   (self.input_subdir, self.input_tag, self.target_subdir, self.target_tag))
        for key in ("patch_size", "batch_size", "repeat", "val_crops"):
            _check(isinstance(getattr(self, key), int) and getattr(self, key) >= 1, f"data.{key}", "an int >= 1",
                   getattr(self, key))
        _check(self.num_workers >= 0, "data.num_workers", "an int >= 0", self.num_workers)
        _check(self.val_crop >= 0, "data.val_crop", "a crop size >= 0 (0 = whole image)", self.val_crop)
        _check(self.val_crop > 0 or self.val_crops == 1, "data.val_crops",
               "1 with val_crop: 0 (whole-image validation takes one crop)", self.val_crops)
        _check(self.val_count >= 0, "data.val_count", "an int >= 0 (0 = use val_fraction)", self.val_count)
        _check(0.0 < self.val_fraction < 1.0, "data.val_fraction", "a fraction in (0, 1)", self.val_fraction)
        last = -1
        for i, stage in enumerate(self.progressive):
            ok = (isinstance(stage, (list, tuple)) and len(stage) == 3 and all(isinstance(v, int) for v in stage)
                  and stage[0] > last and stage[1] >= 1 and stage[2] >= 1)
            _check(ok, f"data.progressive[{i}]", "[start_step, patch_size, batch_size] ints, start steps >= 0 and "
                   "increasing", stage)
            last = stage[0]

    def stage_at(self, step: int) -> tuple[int, int]:
        """``(patch_size, batch_size)`` in force at ``step`` under the progressive schedule."""
        patch, batch = self.patch_size, self.batch_size
        for start, p, b in self.progressive:
            if step >= start:
                patch, batch = p, b
        return patch, batch
