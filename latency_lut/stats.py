"""Latency statistics of one LUT entry: median, p10, p90, n and warm-up runs.

The median is the number the LUT sums; p10/p90 show the spread. Medians and percentiles are order statistics,
so a few runs disturbed by another process (outliers) move them little; the mean is kept only as a diagnostic.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np

REQUIRED_FIELDS: tuple[str, ...] = ("median", "n", "warmup")
OPTIONAL_FIELDS: tuple[str, ...] = ("p10", "p90", "mean", "min", "max", "rounds", "samples")
NUMBER_FIELDS: tuple[str, ...] = ("median", "p10", "p90", "mean", "min", "max")


@dataclass(frozen=True)
class Stats:
    """Summary of repeated runs, in milliseconds. ``p10``/``p90`` are None when a runner only reports a summary.

    ``rounds``: how many separate measurements (fresh runner processes, at different times) were pooled;
    ``samples``: the pooled per-run times, kept so a resumed build can add rounds."""

    median: float
    n: int
    warmup: int
    p10: float | None = None
    p90: float | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    rounds: int | None = None
    samples: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.samples is not None:
            out["samples"] = [round(v, 4) for v in self.samples]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "stats") -> "Stats":
        """Validate a stats mapping (``where`` names it in errors)."""
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object with {', '.join(REQUIRED_FIELDS)}, "
                             f"got {type(data).__name__}")
        missing = [k for k in REQUIRED_FIELDS if k not in data]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: {REQUIRED_FIELDS + OPTIONAL_FIELDS}")
        for k in NUMBER_FIELDS:
            v = data.get(k)
            if v is None and k != "median":
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v) or v < 0:
                raise ValueError(f"{where}.{k}: expected a finite non-negative number of ms, got {v!r}")
        for k, least in (("n", 1), ("warmup", 0), ("rounds", 1)):
            v = data.get(k)
            if v is None and k == "rounds":
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < least:
                raise ValueError(f"{where}.{k}: expected an integer >= {least}, got {v!r}")
        samples = data.get("samples")
        if samples is not None:
            if not isinstance(samples, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v >= 0
                    for v in samples):
                raise ValueError(f"{where}.samples: expected a list of non-negative ms, got {samples!r:.80}")
            data = {**data, "samples": tuple(float(v) for v in samples)}
        return cls(**{k: data[k] for k in data})


def summarize(samples_ms: Sequence[float], warmup: int) -> Stats:
    """Stats of per-run times (warm-up runs already excluded by the caller, counted in ``warmup``)."""
    x = np.asarray(list(samples_ms), dtype=np.float64)
    if x.size == 0:
        raise ValueError("no timed runs to summarize (repeats must be >= 1)")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError(f"run times must be finite and non-negative, got {x.tolist()}")
    p10, med, p90 = np.percentile(x, [10, 50, 90])
    return Stats(median=float(med), n=int(x.size), warmup=int(warmup), p10=float(p10), p90=float(p90),
                 mean=float(x.mean()), min=float(x.min()), max=float(x.max()))


def pool(previous: Stats | None, new: Stats, new_samples: Sequence[float] | None) -> Stats:
    """Add one round of runs to an entry's stats. Runners that report only a summary cannot be pooled: their
    latest summary is kept, as one round."""
    if new_samples is None:
        return replace(new, rounds=1, samples=None)
    samples = tuple(previous.samples or ()) + tuple(new_samples) if previous is not None else tuple(new_samples)
    rounds = (previous.rounds or 1) + 1 if previous is not None and previous.samples is not None else 1
    return replace(summarize(samples, new.warmup), rounds=rounds, samples=samples)
