"""Pareto fronts, hypervolume with a fixed reference, knee point: small numpy helpers over pymoo."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def front_indices(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (minimisation), duplicates of a front point kept once."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    idx = NonDominatedSorting().do(F, only_non_dominated_front=True)
    keep, seen = [], set()
    for i in sorted(int(i) for i in idx):
        key = tuple(F[i])
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.array(keep, dtype=int)


@dataclass(frozen=True)
class HVReference:
    """Fixed normalisation for hypervolumes: ``(F - ideal) / (nadir - ideal)``, reference point ``ref`` per axis."""

    ideal: tuple[float, ...]
    nadir: tuple[float, ...]
    ref: float = 1.1

    @classmethod
    def from_points(cls, F: np.ndarray, ref: float = 1.1) -> "HVReference":
        F = np.asarray(F, dtype=float)
        return cls(tuple(F.min(axis=0).tolist()), tuple(F.max(axis=0).tolist()), ref)

    def normalise(self, F: np.ndarray) -> np.ndarray:
        ideal, nadir = np.array(self.ideal), np.array(self.nadir)
        span = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
        return (np.asarray(F, dtype=float) - ideal) / span

    def hypervolume(self, F: np.ndarray) -> float:
        F = np.asarray(F, dtype=float)
        if len(F) == 0:
            return 0.0
        Z = self.normalise(F)
        Z = Z[np.all(Z < self.ref, axis=1)]
        if len(Z) == 0:
            return 0.0
        return float(HV(ref_point=np.full(Z.shape[1], self.ref))(Z))


def knee_index(F: np.ndarray) -> int:
    """The front point farthest from the line joining the two extremes (normalised objectives 0 and 1)."""
    F = np.asarray(F, dtype=float)[:, :2]
    if len(F) == 1:
        return 0
    Z = HVReference.from_points(F).normalise(F)
    a, b = Z[np.argmin(Z[:, 0])], Z[np.argmin(Z[:, 1])]
    d = b - a
    norm = float(np.hypot(*d))
    if len(F) < 3 or norm == 0.0:
        return int(np.argmin(np.linalg.norm(Z, axis=1)))   # closest to the utopia point

    def cross(z: np.ndarray) -> np.ndarray:
        """Signed distance (times ``norm``) of points from the chord a -> b."""
        return d[0] * (z[..., 1] - a[1]) - d[1] * (z[..., 0] - a[0])

    side = np.sign(cross(np.zeros(2))) or 1.0      # the utopia point's side of the chord is the "bulge" side
    return int(np.argmax(side * cross(Z) / norm))


def least_infeasible(violation: Sequence[float], k: int = 5) -> np.ndarray:
    """Indices of the ``k`` smallest constraint violations, ascending."""
    v = np.asarray(violation, dtype=float)
    return np.argsort(v, kind="stable")[:k]
