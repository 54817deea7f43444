"""``--calibrate fit``: scale the LUT's transformer and SSM block sums to the whole networks it timed.

A block timed alone is not the block inside a network: the runtime fuses, overlaps and caches across block
boundaries, and the shortfall differs between block kinds. The build times ``fidelity_archs`` whole networks
anyway; this fits one non-negative scale per block kind so that ``fixed + s_T * transformer + s_S * ssm``
matches them in relative error (least squares on ``(predicted - measured) / measured``, ``scipy.optimize.nnls``).

Only the two block scales are free. The fixed parts (embedding, resamplers, reductions, output) are the same in
every network, so on a few networks their scale is hard to tell apart from the block scales: fitted freely, a
fixed-part scale can trade against an SSM scale and fit the timed networks with parts no network has. A kind that
no fitted network uses keeps scale 1.

In-sample error flatters a fit, so the build also reports the leave-one-out error: each network predicted by
the scales fitted to all the others.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.optimize import nnls

FITTED_PARTS: tuple[str, ...] = ("transformer", "ssm")
FIT_MIN = 3  # networks needed for two scales plus one degree of freedom


def fit_scales(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Scales for ``FITTED_PARTS`` from rows holding ``transformer``, ``ssm``, ``fixed`` (LUT ms along the
    network's path, uncalibrated) and ``measured_ms``."""
    if len(rows) < FIT_MIN:
        raise ValueError(f"fitting {len(FITTED_PARTS)} block scales needs >= {FIT_MIN} timed networks, "
                         f"got {len(rows)}")
    meas = np.array([float(r["measured_ms"]) for r in rows])
    if not np.all(meas > 0):
        raise ValueError("every measured_ms must be > 0 to fit block scales")
    cols = np.array([[float(r[p]) for p in FITTED_PARTS] for r in rows]) / meas[:, None]
    target = 1.0 - np.array([float(r["fixed"]) for r in rows]) / meas
    used = [j for j in range(len(FITTED_PARTS)) if np.any(cols[:, j] > 0)]
    scales = {p: 1.0 for p in FITTED_PARTS}
    if used:
        fixed_kinds = [j for j in range(len(FITTED_PARTS)) if j not in used]
        rhs = target - cols[:, fixed_kinds].sum(axis=1)
        solution, _ = nnls(cols[:, used], rhs)
        scales.update({FITTED_PARTS[j]: float(s) for j, s in zip(used, solution)})
    return scales


def predict_with(scales: dict[str, float], parts: dict[str, float]) -> float:
    """``fixed + sum(scale * part)`` for one network's uncalibrated breakdown."""
    return float(parts["fixed"]) + sum(float(scales.get(p, 1.0)) * float(parts[p]) for p in FITTED_PARTS)


def leave_one_out_predictions(rows: Sequence[dict[str, Any]]) -> list[float]:
    """Each row's prediction (ms) by the scales fitted to all the other rows."""
    if len(rows) < FIT_MIN + 1:
        raise ValueError(f"leave-one-out needs >= {FIT_MIN + 1} timed networks, got {len(rows)}")
    return [predict_with(fit_scales([r for j, r in enumerate(rows) if j != i]), row) for i, row in enumerate(rows)]


def leave_one_out_ape(rows: Sequence[dict[str, Any]]) -> list[float]:
    """Absolute percentage error of each row predicted by the scales fitted to all the other rows."""
    preds = leave_one_out_predictions(rows)
    return [abs(p - r["measured_ms"]) / r["measured_ms"] * 100.0 for p, r in zip(preds, rows)]
