"""PSNR/SSIM against scikit-image and the direct formulas."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from supernet.metrics import psnr, rgb_to_y, ssim


def _pair(shape=(3, 40, 48), noise=0.08, seed=0):
    rng = np.random.default_rng(seed)
    clean = rng.random(shape)
    return np.clip(clean + rng.normal(0, noise, shape), 0, 1), clean


def _sk_ssim(a, b, data_range=1.0, channel_axis=0):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range, channel_axis=channel_axis)


def test_ssim_matches_skimage_rgb_gray_and_range():
    a, b = _pair()
    assert ssim(a, b) == pytest.approx(_sk_ssim(a, b), abs=1e-10)
    assert ssim(a[0], b[0]) == pytest.approx(_sk_ssim(a[0], b[0], channel_axis=None), abs=1e-10)
    assert ssim(a * 255, b * 255, data_range=255) == pytest.approx(_sk_ssim(a, b), abs=1e-10)
    assert ssim(torch.from_numpy(a).float(), torch.from_numpy(b).float()) == pytest.approx(_sk_ssim(a, b), abs=1e-6)
    assert ssim(b, b) == pytest.approx(1.0)


def test_ssim_batch_is_mean_of_images_and_crop_border():
    (a1, b1), (a2, b2) = _pair(seed=1), _pair(noise=0.2, seed=2)
    batch_a, batch_b = np.stack([a1, a2]), np.stack([b1, b2])
    assert ssim(batch_a, batch_b) == pytest.approx((_sk_ssim(a1, b1) + _sk_ssim(a2, b2)) / 2, abs=1e-10)
    cropped = _sk_ssim(a1[:, 4:-4, 4:-4], b1[:, 4:-4, 4:-4])
    assert ssim(a1, b1, crop_border=4) == pytest.approx(cropped, abs=1e-10)


def test_psnr_matches_formula_and_batch_mean():
    a, b = _pair()
    assert psnr(a, b) == pytest.approx(10 * math.log10(1.0 / np.mean((a - b) ** 2)), abs=1e-10)
    assert psnr(a * 255, b * 255, data_range=255) == pytest.approx(psnr(a, b), abs=1e-10)
    a2, b2 = _pair(noise=0.2, seed=3)
    assert psnr(np.stack([a, a2]), np.stack([b, b2])) == pytest.approx((psnr(a, b) + psnr(a2, b2)) / 2)
    assert psnr(b, b) == math.inf
    inner = 10 * math.log10(1.0 / np.mean((a - b)[:, 3:-3, 3:-3] ** 2))
    assert psnr(a, b, crop_border=3) == pytest.approx(inner, abs=1e-10)


def test_y_channel_is_bt601_as_restormer():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 2, 2), 235 / 255))
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 2, 2), 16 / 255))
    a, b = _pair()
    ya = (16 + 65.481 * a[0] + 128.553 * a[1] + 24.966 * a[2])  # 0-255 units, as BasicSR's to_y_channel
    yb = (16 + 65.481 * b[0] + 128.553 * b[1] + 24.966 * b[2])
    assert psnr(a, b, y_channel=True) == pytest.approx(10 * math.log10(255 ** 2 / np.mean((ya - yb) ** 2)))
    assert ssim(a, b, y_channel=True) == pytest.approx(_sk_ssim(ya, yb, data_range=255, channel_axis=None),
                                                       abs=1e-10)
    assert psnr(a, b, y_channel=True) != pytest.approx(psnr(a, b))


def test_bad_inputs_fail_clearly():
    a, b = _pair()
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:, :-1])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ssim(np.zeros((2, 20, 20)), np.zeros((2, 20, 20)), y_channel=True)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a[:, :8, :8], b[:, :8, :8])
