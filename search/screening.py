"""Surrogate pre-selection of offspring: NSGA-II proposes a larger pool, only the most promising are scored.

Scoring the supernet is the expensive part; latency (LUT sums), the transformer penalty and parameters are
cheap and exact. For each candidate offspring the screen computes the cheap objectives exactly and predicts the
expensive ones with a ridge regression on the genome's per-stage transformer shares and their pairwise products
(a second-order model fitted on every arch scored so far), then picks, greedily, the candidates that add the most
predicted hypervolume to the scored front. Survival and parent selection stay NSGA-II's own.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2

from search.pareto import HVReference, front_indices


def stage_features(problem: Any, X: np.ndarray) -> np.ndarray:
    """(N, n_var) genomes -> (N, S + S(S-1)/2): per-stage transformer share and pairwise products."""
    X = np.asarray(X, dtype=float)
    bounds = np.cumsum([0, *([1] * len(problem.stage_sizes) if problem.granularity == "stage"
                             else problem.stage_sizes)])
    shares = np.stack([X[:, a:b].mean(axis=1) for a, b in zip(bounds[:-1], bounds[1:])], axis=1)  # (N, S)
    i, j = np.triu_indices(shares.shape[1], k=1)
    return np.concatenate([shares, shares[:, i] * shares[:, j]], axis=1)


def ridge_predict(A: np.ndarray, y: np.ndarray, B: np.ndarray, alpha: float) -> np.ndarray:
    """Fit ``y ~ A`` by ridge regression (intercept not penalised), predict for ``B``."""
    mu_a, mu_y = A.mean(axis=0), y.mean()
    Ac = A - mu_a
    w = np.linalg.solve(Ac.T @ Ac + alpha * len(A) * np.eye(A.shape[1]), Ac.T @ (y - mu_y))
    return (B - mu_a) @ w + mu_y


class SurrogateScreen:
    """Keeps the scored archive (X, F, feasibility) and chooses which ``n`` of a candidate pool to score."""

    def __init__(self, factor: int = 4, alpha: float = 1e-3) -> None:
        self.factor, self.alpha = factor, alpha
        self.X = np.zeros((0, 0), dtype=bool)
        self.F = np.zeros((0, 0))
        self.ok = np.zeros(0, dtype=bool)

    def observe(self, X: np.ndarray, F: np.ndarray, ok: np.ndarray) -> None:
        X, F = np.asarray(X, dtype=bool), np.asarray(F, dtype=float)
        self.X = X if self.X.size == 0 else np.concatenate([self.X, X])
        self.F = F if self.F.size == 0 else np.concatenate([self.F, F])
        self.ok = np.concatenate([self.ok, np.asarray(ok, dtype=bool)])

    def predict(self, problem: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Minimisation objectives for candidates (cheap ones exact, others predicted) and feasibility."""
        cheap, ok = problem.cheap_matrix(X)           # NaN where an objective is expensive
        A, B = stage_features(problem, self.X), stage_features(problem, X)
        for k in np.flatnonzero(np.isnan(cheap).any(axis=0)):
            cheap[:, k] = ridge_predict(A, self.F[:, k], B, self.alpha)
        return cheap, ok

    def choose(self, problem: Any, X: np.ndarray, n: int) -> np.ndarray:
        """Indices of ``n`` candidates, in order of greedy predicted hypervolume gain (ties: pool order)."""
        if len(X) <= n or len(self.X) < 2:
            return np.arange(min(n, len(X)))
        F, ok = self.predict(problem, X)
        base = self.F[self.ok]
        ref = HVReference.from_points(np.concatenate([self.F, F]))
        front = base[front_indices(base)] if len(base) else base
        hv0 = ref.hypervolume(front)
        chosen: list[int] = []
        for _ in range(n):
            gains = np.full(len(X), -np.inf)
            for i in range(len(X)):
                if i in chosen:
                    continue
                gains[i] = ref.hypervolume(np.concatenate([front, F[i:i + 1]])) - hv0 if ok[i] else 0.0
            best = int(np.argmax(gains))      # first of equal gains: NSGA-II's own order
            chosen.append(best)
            if ok[best]:
                front = np.concatenate([front, F[best:best + 1]])
                front = front[front_indices(front)]
                hv0 = ref.hypervolume(front)
        return np.array(chosen, dtype=int)


class ScreenedNSGA2(NSGA2):
    """NSGA-II whose mating makes ``screen.factor`` x more offspring than needed; the screen keeps the best."""

    def __init__(self, screen: SurrogateScreen, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.screen = screen

    def _infill(self) -> Any:
        pool = self.mating.do(self.problem, self.pop, self.n_offsprings * self.screen.factor, algorithm=self,
                              random_state=self.random_state)
        if len(pool) == 0:
            self.termination.force_termination = True
            return None
        return pool[self.screen.choose(self.problem, pool.get("X"), self.n_offsprings)]
