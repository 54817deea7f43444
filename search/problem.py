"""The search problem: genome <-> Arch, cached scoring, and the pymoo ``Problem`` NSGA-II minimises.

The search sees objectives only as narrow functions ``fn(arch) -> float`` (quality: supernet PSNR; cost: LUT
latency or the transformer penalty; optionally parameters). :class:`Scorer` puts the persistent cache in front of
them, so an arch is scored once per context, across generations and resumed runs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.operators.sampling.rnd import BinaryRandomSampling

from search.cache import EvalCache
from supernet.arch import Arch, stage_sizes_from

ArchFn = Callable[[Arch], float]


@dataclass
class Objective:
    """One named objective. ``fn(arch)``; if ``fn`` has ``batch(archs) -> list[float]`` it is used for populations."""

    name: str
    fn: ArchFn
    maximize: bool = False
    cheap: bool = False        # exact and fast (LUT sum, penalty, parameters): may be queried to screen offspring

    def evaluate(self, archs: Sequence[Arch]) -> list[float]:
        batch = getattr(self.fn, "batch", None)
        values = batch(list(archs)) if callable(batch) else [self.fn(a) for a in archs]
        values = [float(v) for v in values]
        if len(values) != len(archs):
            raise RuntimeError(f"objective {self.name}: batch scoring returned {len(values)} values for "
                               f"{len(archs)} archs")
        bad = [str(a) for a, v in zip(archs, values) if not np.isfinite(v)]
        if bad:
            raise RuntimeError(f"objective {self.name}: non-finite value for {bad[:3]}")
        return values


class Scorer:
    """Objectives behind the cache. ``score(archs)`` returns one record ``{"arch", <objective>: value, ...}`` each.

    New archs go to the objectives ``chunk`` at a time (``fn.batch`` when it has one) and each chunk is written to
    the cache at once, so an interrupted run loses at most one chunk of scoring."""

    def __init__(self, objectives: Sequence[Objective], cache: EvalCache | None = None, chunk: int = 1) -> None:
        if len(objectives) < 2:
            raise ValueError("the search needs at least two objectives (quality and cost)")
        names = [o.name for o in objectives]
        if len(set(names)) != len(names) or "arch" in names:
            raise ValueError(f"objective names must be distinct and not 'arch', got {names}")
        if chunk < 1:
            raise ValueError(f"Scorer chunk must be >= 1, got {chunk}")
        self.objectives = list(objectives)
        self.chunk = chunk              # archs per objective call (and per cache write)
        self.cache = cache if cache is not None else EvalCache()
        self.n_scored = 0          # archs actually evaluated by the objective functions
        self.n_hits = 0            # requests answered from the cache
        self.scoring_s = 0.0       # wall time spent inside the objective functions

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def score(self, archs: Sequence[Arch]) -> list[dict[str, Any]]:
        keys = [str(a) for a in archs]
        missing: dict[str, Arch] = {}
        for key, arch in zip(keys, archs):
            if key not in self.cache and key not in missing:
                missing[key] = arch
        self.n_hits += len(keys) - len(missing)
        todo = list(missing.items())
        for s in range(0, len(todo), self.chunk):   # saved chunk by chunk: a crash loses at most one chunk
            chunk = dict(todo[s:s + self.chunk])
            start = time.perf_counter()
            columns = {o.name: o.evaluate(list(chunk.values())) for o in self.objectives}
            self.scoring_s += time.perf_counter() - start
            self.n_scored += len(chunk)
            self.cache.put_many({k: {n: columns[n][i] for n in self.names} for i, k in enumerate(chunk)})
        return self.lookup(keys)

    def lookup(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """Records of already scored archs, straight from the cache (no scoring, not counted as hits)."""
        out = []
        for key in keys:
            entry = self.cache.get(key)
            if entry is None:
                raise KeyError(f"arch {key} has not been scored")
            lacking = [n for n in self.names if n not in entry]
            if lacking:
                raise KeyError(f"cache entry {key} lacks objectives {lacking}; delete the cache file to rescore")
            out.append({"arch": str(key), **{n: entry[n] for n in self.names}})
        return out

    def minimisation_matrix(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """Objectives as pymoo minimises them: maximised ones negated. (N, n_obj)."""
        F = np.array([[r[o.name] for o in self.objectives] for r in records], dtype=float).reshape(len(records), -1)
        sign = np.array([-1.0 if o.maximize else 1.0 for o in self.objectives])
        return F * sign


class ArchProblem(Problem):
    """Binary genome (``Arch.genome()``) -> objectives; optional constraint ``cost <= budget`` as ``G <= 0``."""

    def __init__(self, scorer: Scorer, stage_sizes: Any, granularity: str = "stage",
                 budget: float | None = None, constraint_on: str | None = None) -> None:
        self.scorer: Scorer | None = scorer
        self.stage_sizes = stage_sizes_from(stage_sizes)
        self.granularity = granularity
        self.budget = None if budget is None else float(budget)
        self.constraint_on = constraint_on or scorer.objectives[1].name
        if self.constraint_on not in scorer.names:
            raise ValueError(f"constraint objective {self.constraint_on!r} is not one of {scorer.names}")
        n_var = len(Arch.uniform(self.stage_sizes, "T", granularity).genome())
        super().__init__(n_var=n_var, n_obj=len(scorer.objectives), n_ieq_constr=0 if budget is None else 1,
                         xl=0, xu=1, vtype=bool)

    def decode(self, x: Sequence[Any]) -> Arch:
        return Arch.from_genome(np.asarray(x).astype(int), self.stage_sizes, self.granularity)

    def encode(self, arch: Arch) -> np.ndarray:
        return np.array(arch.genome(), dtype=bool)

    def violation(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        """``cost - budget`` per record (<= 0 is feasible); zeros without a budget."""
        cost = np.array([r[self.constraint_on] for r in records], dtype=float)
        return cost - self.budget if self.budget is not None else np.zeros_like(cost)

    def cheap_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Minimisation objectives of genomes from the cheap objectives only (NaN columns for the others), and
        whether each meets the budget (True where the constraint's objective is not cheap). Not cached, not
        counted as evaluations: screening only."""
        assert self.scorer is not None
        archs = [self.decode(x) for x in X]
        F = np.full((len(archs), self.n_obj), np.nan)
        ok = np.ones(len(archs), dtype=bool)
        for k, o in enumerate(self.scorer.objectives):
            if o.cheap:
                values = np.array(o.evaluate(archs))
                F[:, k] = -values if o.maximize else values
                if self.budget is not None and o.name == self.constraint_on:
                    ok = values <= self.budget
        return F, ok

    def _evaluate(self, X: np.ndarray, out: dict, *args: Any, **kwargs: Any) -> None:
        if self.scorer is None:
            raise RuntimeError("ArchProblem has no scorer attached (it was unpickled); attach one with "
                               "problem.scorer = scorer")
        records = self.scorer.score([self.decode(x) for x in X])
        out["F"] = self.scorer.minimisation_matrix(records)
        if self.budget is not None:
            out["G"] = self.violation(records).reshape(-1, 1)

    def __getstate__(self) -> dict:
        # The scorer holds the supernet and data; resume state must stay small and independent of them.
        state = self.__dict__.copy()
        state["scorer"] = None
        return state


class AnchoredBinarySampling(Sampling):
    """Initial population: all-transformer, all-ssm, their one-gene neighbours (shuffled), then random genomes.

    Both ends of the front are near-uniform archs, so seeding them spends the first evaluations where the front
    is, and leaves the middle to crossover of the two ends' neighbours.
    """

    def _do(self, problem: Problem, n_samples: int, *args: Any, random_state: Any = None, **kwargs: Any) -> np.ndarray:
        n_var = problem.n_var
        X = BinaryRandomSampling()._do(problem, n_samples, random_state=random_state)
        eye = np.eye(n_var, dtype=bool)
        neighbours = np.concatenate([~eye, eye])          # one gene flipped from all-T, from all-S
        neighbours = neighbours[random_state.permutation(len(neighbours))]
        seeds = np.concatenate([np.ones((1, n_var), bool), np.zeros((1, n_var), bool), neighbours])[:n_samples]
        X[: len(seeds)] = seeds
        return X


class NoveltyElimination(DefaultDuplicateElimination):
    """Duplicates within the offspring and the population, plus archs this run has already scored.

    Every offspring is then a new arch: with scoring the expensive part, evaluations go to unexplored archs only.
    ``seen`` is part of the algorithm, so it is saved and restored with it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[bytes] = set()

    def remember(self, X: np.ndarray) -> None:
        self.seen.update(np.asarray(x, dtype=bool).tobytes() for x in X)

    def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
        is_duplicate = super()._do(pop, other, is_duplicate)
        if other is None and self.seen:
            X = pop.get("X")
            is_duplicate |= np.array([np.asarray(x, dtype=bool).tobytes() in self.seen for x in X], dtype=bool)
        return is_duplicate
