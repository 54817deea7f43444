"""``--calibrate fit``: the block scales are recovered from networks built with known ones; a kind no network
uses keeps scale 1; leave-one-out predicts each network without it; too few networks are refused."""
from __future__ import annotations

import pytest

from latency_lut.fit import FIT_MIN, fit_scales, leave_one_out_ape, leave_one_out_predictions, predict_with


def networks(s_t: float, s_s: float, fixed: float = 10.0, noise: tuple[float, ...] = ()) -> list[dict]:
    """Networks whose measured time is ``fixed + s_t * T + s_s * S`` (times 1 + noise[i])."""
    splits = [(80, 0), (0, 30), (50, 12), (20, 22), (65, 6), (35, 18)]
    rows = []
    for i, (t, s) in enumerate(splits):
        meas = (fixed + s_t * t + s_s * s) * (1 + (noise[i] if i < len(noise) else 0.0))
        rows.append({"transformer": float(t), "ssm": float(s), "fixed": fixed, "measured_ms": meas})
    return rows


def test_fit_recovers_known_scales_and_predicts_exactly():
    rows = networks(0.8, 1.3)
    scales = fit_scales(rows)
    assert scales == pytest.approx({"transformer": 0.8, "ssm": 1.3}, rel=1e-9)
    for r in rows:
        assert predict_with(scales, r) == pytest.approx(r["measured_ms"], rel=1e-9)
    assert leave_one_out_ape(rows) == pytest.approx([0.0] * len(rows), abs=1e-7)


def test_leave_one_out_leaves_the_network_out():
    rows = networks(1.0, 1.0, noise=(0.0, 0.0, 0.2))  # one network 20% slower than the model says
    preds = leave_one_out_predictions(rows)
    ape = leave_one_out_ape(rows)
    # fitted without it, the odd network is predicted by the others' (exact) scales: 1/1.2 of its time
    assert preds[2] == pytest.approx(rows[2]["measured_ms"] / 1.2, rel=1e-6)
    assert ape[2] == pytest.approx(100 * (1 - 1 / 1.2), rel=1e-6) and max(ape) == ape[2]
    in_sample = fit_scales(rows)
    assert abs(predict_with(in_sample, rows[2]) - rows[2]["measured_ms"]) < rows[2]["measured_ms"] - preds[2]


def test_unused_kind_keeps_scale_one_and_scales_are_non_negative():
    rows = [r for r in networks(0.9, 1.0) if r["ssm"] == 0] + [
        {"transformer": 40.0, "ssm": 0.0, "fixed": 10.0, "measured_ms": 46.0},
        {"transformer": 60.0, "ssm": 0.0, "fixed": 10.0, "measured_ms": 64.0}]
    assert fit_scales(rows) == pytest.approx({"transformer": 0.9, "ssm": 1.0})
    # measured below the fixed parts alone: the best scale would be negative, nnls stops at 0
    low = [{"transformer": 10.0 * i, "ssm": 5.0, "fixed": 10.0, "measured_ms": 8.0} for i in range(1, 5)]
    assert min(fit_scales(low).values()) >= 0


def test_too_few_or_bad_networks_refused():
    with pytest.raises(ValueError, match=f">= {FIT_MIN} timed networks, got 2"):
        fit_scales(networks(1, 1)[:2])
    with pytest.raises(ValueError, match=f"leave-one-out needs >= {FIT_MIN + 1}"):
        leave_one_out_ape(networks(1, 1)[:FIT_MIN])
    bad = networks(1, 1)
    bad[0]["measured_ms"] = 0.0
    with pytest.raises(ValueError, match="measured_ms must be > 0"):
        fit_scales(bad)
