"""Synthetic degradations: deterministic given the generator, they change the image the documented way."""
import numpy as np
import pytest

from supernet.data.config import DEGRADATION_KINDS, DegradationConfig
from supernet.data.degradations import (DEGRADATIONS, add_gaussian_noise, degrade, motion_blur, rain_streaks,
                                        resolve_kind, trajectory_kernel)
from supernet.data.tasks import TASKS, get_task


def _img(h=48, w=56, c=3, seed=0):
    return np.random.default_rng(seed).random((h, w, c)).astype(np.float32)


def _rng(seed):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("fn", [
    lambda img, rng: add_gaussian_noise(img, 25, rng),
    lambda img, rng: rain_streaks(img, rng),
    lambda img, rng: motion_blur(img, rng),
])
def test_deterministic_given_rng_and_changes_image(fn):
    img = _img()
    a, b, c = fn(img, _rng(1)), fn(img, _rng(1)), fn(img, _rng(2))
    assert a.shape == img.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a - img).mean() > 1e-3


def test_noise_level_is_in_255_units():
    img = np.full((200, 200, 3), 0.5, np.float32)
    noisy = add_gaussian_noise(img, 25, _rng(0))
    assert (noisy - img).std() == pytest.approx(25 / 255, rel=0.02)
    assert (noisy - img).mean() == pytest.approx(0.0, abs=2e-3)


def test_rain_streaks_follow_angle_density_and_only_brighten():
    img = np.zeros((96, 96, 1), np.float32)
    vertical = rain_streaks(img, _rng(0), angle=(0, 0), angle_jitter=0, length=(20, 20), density=(0.01, 0.01),
                            intensity=(1, 1))[..., 0]
    horizontal = rain_streaks(img, _rng(0), angle=(90, 90), angle_jitter=0, length=(20, 20),
                              density=(0.01, 0.01), intensity=(1, 1))[..., 0]
    dv = lambda x: np.abs(np.diff(x, axis=0)).mean()  # noqa: E731  change going down
    dh = lambda x: np.abs(np.diff(x, axis=1)).mean()  # noqa: E731  change going right
    assert dv(vertical) < 0.5 * dh(vertical)
    assert dh(horizontal) < 0.5 * dv(horizontal)
    sparse = rain_streaks(img, _rng(3), density=(0.001, 0.001))
    dense = rain_streaks(img, _rng(3), density=(0.01, 0.01))
    assert (dense > 0.05).sum() > 3 * (sparse > 0.05).sum()
    photo = _img()
    rained = rain_streaks(photo, _rng(4))
    assert (rained >= photo - 1e-6).all() and rained.max() <= 1.0


def test_trajectory_kernels_are_normalised_and_sized_by_length():
    for seed in range(5):
        k = trajectory_kernel(_rng(seed), size=21, length=15)
        assert k.shape == (21, 21) and (k >= 0).all() and k.sum() == pytest.approx(1.0, abs=1e-5)
    delta = trajectory_kernel(_rng(0), size=9, length=0)
    assert delta[4, 4] == pytest.approx(1.0) and delta.sum() == pytest.approx(1.0)
    line = trajectory_kernel(_rng(0), size=31, length=20, jitter=0.0)
    ys, xs = np.nonzero(line > 1e-6)
    extent = np.hypot(xs.max() - xs.min(), ys.max() - ys.min())
    assert 19 <= extent <= 23  # a straight 20-pixel path, plus bilinear spread
    np.testing.assert_array_equal(trajectory_kernel(_rng(7)), trajectory_kernel(_rng(7)))
    with pytest.raises(ValueError, match="does not fit"):
        trajectory_kernel(_rng(0), size=9, length=12)


def test_trajectory_kernel_heading_follows_angle():
    for seed in range(4):  # a straight path at 0 degrees lies in the middle row; at 90 in the middle column
        flat = trajectory_kernel(_rng(seed), size=21, length=12, jitter=0.0, angle=(0.0, 0.0))
        assert flat[10].sum() == pytest.approx(1.0, abs=1e-5)
        upright = trajectory_kernel(_rng(seed), size=21, length=12, jitter=0.0, angle=(90.0, 90.0))
        assert upright[:, 10].sum() == pytest.approx(1.0, abs=1e-4)
    # no angle: the historical draw over every direction, so existing configs make the same kernels
    rng = _rng(3)
    heading = rng.uniform(0.0, 2.0 * np.pi)
    want = trajectory_kernel(_rng(3), size=21, length=12, jitter=0.0, angle=(np.degrees(heading),) * 2)
    np.testing.assert_allclose(trajectory_kernel(_rng(3), size=21, length=12, jitter=0.0), want, atol=1e-6)


def test_motion_blur_keeps_flat_images_and_smooths_texture():
    flat = np.full((40, 40, 3), 0.3, np.float32)
    np.testing.assert_allclose(motion_blur(flat, _rng(0)), flat, atol=1e-5)
    img = _img()
    blurred = motion_blur(img, _rng(0), length=(10, 10))
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.7 * np.abs(np.diff(img, axis=1)).mean()


def test_registry_covers_kinds_and_tasks():
    assert set(DEGRADATIONS) == set(DEGRADATION_KINDS) - {"auto"}
    for name, spec in TASKS.items():
        assert spec.degradation in DEGRADATIONS
        assert resolve_kind(DegradationConfig(), spec.degradation) == spec.degradation
    assert resolve_kind(DegradationConfig(kind="blur"), "noise") == "blur"
    assert get_task("derain").y_channel and not get_task("denoise").y_channel
    with pytest.raises(ValueError, match="deblur, denoise, derain"):
        get_task("super-resolution")


def test_degrade_clips_only_when_asked_and_sigma_range_varies():
    img = np.full((32, 32, 3), 0.98, np.float32)
    assert degrade(img, _rng(0), DegradationConfig(sigma=50), "noise").max() <= 1.0
    assert degrade(img, _rng(0), DegradationConfig(sigma=50, clip=False), "noise").max() > 1.0
    cfg = DegradationConfig(sigma_range=[5, 50], clip=False)
    stds = {round(float((degrade(img, _rng(s), cfg, "noise") - img).std() * 255)) for s in range(6)}
    assert len(stds) > 2 and all(3 <= s <= 53 for s in stds)
    np.testing.assert_array_equal(degrade(img, _rng(0), cfg, "none"), img)


def test_degradation_config_names_bad_keys():
    with pytest.raises(ValueError, match="data.degradation.kind"):
        DegradationConfig(kind="snow")
    with pytest.raises(ValueError, match="data.degradation.sigma_range"):
        DegradationConfig(sigma_range=[30, 10])
    with pytest.raises(ValueError, match="data.degradation.blur_kernel_size"):
        DegradationConfig(blur_kernel_size=20)
    with pytest.raises(ValueError, match="data.degradation.blur_length"):
        DegradationConfig(blur_kernel_size=9, blur_length=[2, 12])
