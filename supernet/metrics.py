"""PSNR and SSIM by the protocols restoration papers report (Restormer/BasicSR evaluation).

Images are torch tensors or numpy arrays laid out ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)`` (numpy arrays
too: channels first), with values in ``[0, data_range]``. A batch scores as the mean of its per-image scores.
``y_channel`` scores the ITU-R BT.601 luma of RGB inputs as Restormer's deraining evaluation does:
``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in [0, 1], in 0-255 units (here divided by 255, so
scores equal the 0-255 ones). SSIM is Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, population (co)variances, the map averaged over its valid part, per channel, then over channels;
it equals ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` and BasicSR's ``calculate_ssim``. Computed in float64 on the inputs' device.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = torch.Tensor | np.ndarray

_Y_WEIGHTS = (65.481, 128.553, 24.966)  # R, G, B
_WINDOW, _SIGMA, _K1, _K2 = 11, 1.5, 0.01, 0.03


def _as_batch(x: ArrayLike, name: str) -> torch.Tensor:
    """``(B, C, H, W)`` float64 tensor from any accepted layout."""
    t = torch.from_numpy(np.asarray(x)) if isinstance(x, np.ndarray) else x.detach()
    t = t.to(torch.float64)
    if t.dim() == 2:
        t = t[None, None]  # (H, W) -> (1, 1, H, W)
    elif t.dim() == 3:
        t = t[None]  # (C, H, W) -> (1, C, H, W)
    elif t.dim() != 4:
        raise ValueError(f"{name}: expected (H, W), (C, H, W) or (B, C, H, W), got shape {tuple(t.shape)}")
    return t


def _prepare(pred: ArrayLike, target: ArrayLike, data_range: float, y_channel: bool,
             crop_border: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images scaled to [0, 1], converted to Y if asked, borders cropped."""
    a, b = _as_batch(pred, "pred"), _as_batch(target, "target")
    if a.shape != b.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    b = b.to(a.device)
    a, b = a / data_range, b / data_range
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
        if a.numel() == 0:
            raise ValueError(f"crop_border {crop_border} leaves nothing of a {tuple(pred.shape)} image")
    return a, b


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(B, 3, H, W)`` RGB in [0, 1], in [16/255, 235/255]; one channel passes through."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"y_channel needs 1 or 3 channels, got {x.shape[1]}")
    w = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (16.0 + (x * w).sum(dim=1, keepdim=True)) / 255.0


def psnr(pred: ArrayLike, target: ArrayLike, data_range: float = 1.0, y_channel: bool = False,
         crop_border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` per image, averaged over the batch
    (``inf`` for identical images)."""
    a, b = _prepare(pred, target, data_range, y_channel, crop_border)
    mse = ((a - b) ** 2).flatten(1).mean(dim=1)
    scores = [math.inf if m == 0 else -10.0 * math.log10(m) for m in mse.tolist()]
    return float(sum(scores) / len(scores))


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = torch.arange(_WINDOW, dtype=dtype, device=device) - (_WINDOW - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * _SIGMA ** 2))
    return g / g.sum()


def ssim(pred: ArrayLike, target: ArrayLike, data_range: float = 1.0, y_channel: bool = False,
         crop_border: int = 0) -> float:
    """Structural similarity (Wang et al. 2004, see module docstring), averaged over channels and the batch."""
    a, b = _prepare(pred, target, data_range, y_channel, crop_border)
    n, c, h, w = a.shape
    if h < _WINDOW or w < _WINDOW:
        raise ValueError(f"SSIM needs images of at least {_WINDOW}x{_WINDOW} after cropping, got {h}x{w}")
    g = _gaussian_window(a.dtype, a.device)
    gy, gx = g.view(1, 1, _WINDOW, 1), g.view(1, 1, 1, _WINDOW)

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable Gaussian, 'valid' part only
        x = x.reshape(n * c, 1, x.shape[2], x.shape[3])  # (B, C, H, W) -> (B*C, 1, H, W)
        return F.conv2d(F.conv2d(x, gy), gx)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = _K1 ** 2, _K2 ** 2  # data already scaled to range 1
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    per_channel = smap.flatten(1).mean(dim=1).view(n, c)  # (B*C, h', w') -> (B, C)
    return float(per_channel.mean(dim=1).mean())
