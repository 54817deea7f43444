"""Synthetic degradations for clean images: Gaussian noise, rain streaks, motion blur.

Every function takes a float32 image ``(H, W, C)`` in [0, 1] and a ``numpy.random.Generator`` and is deterministic
given that generator: the dataset derives one generator per item from (seed, epoch, index), so crops and
degradations are reproducible across DataLoader workers and resumed runs.

:data:`DEGRADATIONS` maps a degradation kind (``noise``, ``rain``, ``blur``, ``none``) to how it is applied from a
:class:`~supernet.data.config.DegradationConfig` and how many context pixels it needs around a crop (``margin``),
so that streaks and blur enter a crop from outside it instead of being cut at its border.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.signal import fftconvolve

from supernet.data.config import DegradationConfig


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of standard deviation ``sigma`` in 0-255 units (DnCNN/Restormer
    convention), independent per pixel and channel. The result is not clipped."""
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma / 255.0)
    return img.astype(np.float32) + noise


def _line_kernel(length: float, angle_deg: float, width: float) -> np.ndarray:
    """A streak of ``length`` pixels at ``angle_deg`` from vertical (positive leans right going down), with a
    Gaussian cross-section of std ``width / 2`` and peak value 1; anti-aliased ends."""
    half = int(math.ceil(length / 2 + 2 * width)) + 1
    v, u = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)  # v: rows (down), u: columns (right)
    theta = math.radians(angle_deg)
    dx, dy = math.sin(theta), math.cos(theta)
    along = u * dx + v * dy
    across = -u * dy + v * dx
    sigma = max(width / 2.0, 1e-3)
    profile = np.exp(-0.5 * (across / sigma) ** 2)
    ends = np.clip(length / 2.0 + 0.5 - np.abs(along), 0.0, 1.0)
    return (profile * ends).astype(np.float32)


def rain_streaks(img: np.ndarray, rng: np.random.Generator, angle: tuple[float, float] = (-20.0, 20.0),
                 angle_jitter: float = 3.0, length: tuple[float, float] = (10.0, 30.0),
                 density: tuple[float, float] = (0.002, 0.006), intensity: tuple[float, float] = (0.5, 0.9),
                 width: float = 1.0, layers: int = 4) -> np.ndarray:
    """Add synthetic rain streaks (the "noise -> motion blur -> screen" model used to build Rain100/Rain800-style
    sets).

    Model, per image: a wind angle ``a ~ U(angle)`` in degrees from vertical; a drop density ``rho ~ U(density)``
    (drops per pixel), so ``N ~ Poisson(rho * H * W)`` drops at uniform positions, each with brightness
    ``U(0.3, 1)``; the drops are split at random into ``layers`` groups, each with its own streak length
    ``~ U(length)`` pixels and angle ``a + N(0, angle_jitter)`` (rain falls nearly, not exactly, parallel).
    Each group's drop map is convolved with a line kernel of that length and angle whose cross-section is a
    Gaussian of std ``width / 2`` (peak 1), giving a streak layer ``R`` clipped to [0, 1]. The streaks are
    composited with a screen blend of strength ``alpha ~ U(intensity)``: ``out = 1 - (1 - img)(1 - alpha R)``,
    which brightens like real rain and keeps values in [0, 1]. The same white layer covers all channels.
    """
    h, w = img.shape[:2]
    base_angle = rng.uniform(*angle)
    rho = rng.uniform(*density)
    alpha = rng.uniform(*intensity)
    count = rng.poisson(rho * h * w)
    rows = rng.integers(0, h, size=count)
    cols = rng.integers(0, w, size=count)
    bright = rng.uniform(0.3, 1.0, size=count).astype(np.float32)
    group = rng.integers(0, layers, size=count)
    streaks = np.zeros((h, w), np.float32)
    for g in range(layers):
        seg_len = rng.uniform(*length)
        seg_angle = base_angle + rng.normal(0.0, angle_jitter) if angle_jitter > 0 else base_angle
        drops = np.zeros((h, w), np.float32)
        sel = group == g
        np.add.at(drops, (rows[sel], cols[sel]), bright[sel])
        if sel.any():
            streaks += fftconvolve(drops, _line_kernel(seg_len, seg_angle, width), mode="same").astype(np.float32)
    layer = np.clip(streaks, 0.0, 1.0)[..., None]  # (H, W) -> (H, W, 1), broadcast over channels
    return (1.0 - (1.0 - img.astype(np.float32)) * (1.0 - np.float32(alpha) * layer)).astype(np.float32)


def trajectory_kernel(rng: np.random.Generator, size: int = 21, length: float = 11.0, steps: int = 64,
                      jitter: float = 0.1, angle: tuple[float, float] | None = None) -> np.ndarray:
    """A normalised ``(size, size)`` motion-blur kernel from a random camera-shake trajectory.

    The camera moves at constant speed ``length / (steps - 1)`` pixels per step from an initial heading drawn
    uniformly from ``angle`` (``[lo, hi]`` degrees; ``None``: any direction). The heading then does a random walk
    (``N(0, jitter)`` radians per step): ``jitter = 0`` is a straight line, larger values give the curved, hooked
    paths of hand shake, in the spirit of Boracchi & Foi 2012. The path is centred on the kernel (its bounding box
    fits since ``length <= size - 1``), every sample point is splatted bilinearly (equal exposure time per step)
    and the kernel is normalised to sum 1; ``length = 0`` is identity.
    """
    if length > size - 1:
        raise ValueError(f"blur length {length} does not fit a {size}x{size} kernel (max {size - 1})")
    start = rng.uniform(0.0, 2.0 * math.pi) if angle is None else rng.uniform(*np.radians(angle))
    heading = start + np.cumsum(np.concatenate([[0.0], rng.normal(0.0, jitter, steps - 2)]))
    step = length / (steps - 1)
    xs = np.concatenate([[0.0], np.cumsum(step * np.cos(heading))])
    ys = np.concatenate([[0.0], np.cumsum(step * np.sin(heading))])
    c = (size - 1) / 2.0
    xs = xs - (xs.max() + xs.min()) / 2.0 + c
    ys = ys - (ys.max() + ys.min()) / 2.0 + c
    kernel = np.zeros((size, size), np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)
        np.add.at(kernel, (yy, xx), wgt)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(img: np.ndarray, rng: np.random.Generator, kernel_size: int = 21,
                length: tuple[float, float] = (5.0, 17.0), steps: int = 64, jitter: float = 0.1,
                noise_sigma: float = 0.0, angle: tuple[float, float] | None = None) -> np.ndarray:
    """Blur with a random trajectory kernel (:func:`trajectory_kernel`, path length ``~ U(length)`` pixels),
    reflecting the image at its borders, then add Gaussian noise of ``noise_sigma`` (0-255 units; 0 = none)."""
    kernel = trajectory_kernel(rng, kernel_size, rng.uniform(*length), steps, jitter, angle)
    r = kernel_size // 2
    padded = np.pad(img.astype(np.float32), ((r, r), (r, r), (0, 0)), mode="symmetric")
    out = np.stack([fftconvolve(padded[..., ch], kernel, mode="valid") for ch in range(img.shape[2])], axis=-1)
    out = out.astype(np.float32)
    return add_gaussian_noise(out, noise_sigma, rng) if noise_sigma > 0 else out


@dataclass(frozen=True)
class Degradation:
    """How one degradation kind is applied from a config, and the context (pixels per side) it needs."""

    apply: Callable[[np.ndarray, np.random.Generator, DegradationConfig], np.ndarray]
    margin: Callable[[DegradationConfig], int]


def _noise(img: np.ndarray, rng: np.random.Generator, cfg: DegradationConfig) -> np.ndarray:
    sigma = rng.uniform(*cfg.sigma_range) if cfg.sigma_range else cfg.sigma
    return add_gaussian_noise(img, sigma, rng)


def _rain(img: np.ndarray, rng: np.random.Generator, cfg: DegradationConfig) -> np.ndarray:
    return rain_streaks(img, rng, tuple(cfg.rain_angle), cfg.rain_angle_jitter, tuple(cfg.rain_length),
                        tuple(cfg.rain_density), tuple(cfg.rain_intensity), cfg.rain_width)


def _blur(img: np.ndarray, rng: np.random.Generator, cfg: DegradationConfig) -> np.ndarray:
    return motion_blur(img, rng, cfg.blur_kernel_size, tuple(cfg.blur_length), cfg.blur_steps, cfg.blur_jitter,
                       cfg.blur_noise_sigma, tuple(cfg.blur_angle) if cfg.blur_angle else None)


DEGRADATIONS: dict[str, Degradation] = {
    "noise": Degradation(_noise, lambda cfg: 0),
    "rain": Degradation(_rain, lambda cfg: int(math.ceil(cfg.rain_length[1] / 2 + 2 * cfg.rain_width)) + 1),
    "blur": Degradation(_blur, lambda cfg: cfg.blur_kernel_size // 2),
    "none": Degradation(lambda img, rng, cfg: img.astype(np.float32).copy(), lambda cfg: 0),
}


def resolve_kind(cfg: DegradationConfig, task_default: str) -> str:
    """The degradation kind in force: the config's, or the task's default when the config says ``auto``."""
    kind = task_default if cfg.kind == "auto" else cfg.kind
    if kind not in DEGRADATIONS:
        raise ValueError(f"data.degradation.kind: unknown kind {kind!r}; known: {', '.join(DEGRADATIONS)}")
    return kind


def degrade(img: np.ndarray, rng: np.random.Generator, cfg: DegradationConfig, kind: str) -> np.ndarray:
    """Apply degradation ``kind`` (already resolved) and clip to [0, 1] when ``cfg.clip``."""
    out = DEGRADATIONS[kind].apply(img, rng, cfg)
    return np.clip(out, 0.0, 1.0) if cfg.clip else out
