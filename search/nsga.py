"""NSGA-II over arch genomes with an ask/tell loop: state saved per generation, tqdm, TensorBoard.

Every run goes through pymoo's seeded ``NSGA2`` (``algorithm.setup(..., seed=)``), so the same seed gives the same
front. The whole algorithm (population, its random generator, the novelty set) is pickled atomically after every
generation; ``resume=True`` continues from it and re-asks nothing already scored (the cache answers).
"""
from __future__ import annotations

import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation
from pymoo.termination.max_gen import MaximumGenerationTermination
from tqdm.auto import tqdm

from search.fileio import atomic_pickle
from supernet.arch import Arch
from search.pareto import HVReference, front_indices
from search.problem import AnchoredBinarySampling, ArchProblem, NoveltyElimination
from search.screening import ScreenedNSGA2, SurrogateScreen

STATE_VERSION = 1


@dataclass
class NSGAConfig:
    """NSGA-II settings. Evaluations used <= ``pop_size + (generations - 1) * n_offsprings``."""

    pop_size: int = 16
    generations: int = 13
    n_offsprings: int | None = 4            # None: pop_size
    seed: int = 0
    crossover_prob: float = 0.9
    mutation_prob_var: float | None = None  # per-gene flip probability; None: 1 / n_var
    novelty: bool = True                     # offspring must be archs this run has not scored yet
    screen: int = 8                          # >0: mate screen x n_offsprings candidates, score the best n (surrogate)

    def __post_init__(self) -> None:
        if self.pop_size < 2 or self.generations < 1:
            raise ValueError(f"NSGA-II needs pop_size >= 2 and generations >= 1, got {self.pop_size}, "
                             f"{self.generations}")
        if self.n_offsprings is not None and self.n_offsprings < 1:
            raise ValueError(f"n_offsprings must be >= 1, got {self.n_offsprings}")

    @classmethod
    def for_granularity(cls, granularity: str, **overrides: Any) -> "NSGAConfig":
        """Defaults sized to the space: 64 of the 256 ``stage`` archs; 264 evaluations for ``block`` (2^44 with
        Restormer's depths), where the front is longer and the budget of a supernet search still affordable."""
        base = {"stage": {}, "block": {"pop_size": 32, "generations": 30, "n_offsprings": 8}}[granularity]
        return cls(**{**base, **{k: v for k, v in overrides.items() if v is not None}})

    def identity(self) -> dict[str, Any]:
        """Settings that must match for a resume (``generations`` may grow)."""
        d = asdict(self)
        d.pop("generations")
        return d


@dataclass
class GenerationLog:
    generation: int
    evaluations: int        # distinct archs this run has asked for so far
    new_scores: int         # of those in this generation, scored now (not cached)
    cache_hits: int         # requests answered from the cache in this generation
    front_size: int
    hypervolume: float


@dataclass
class NSGAResult:
    requested: list[str]                 # distinct arch keys asked for, in order
    population: list[str]                # final population's arch keys
    history: list[GenerationLog] = field(default_factory=list)
    hv_reference: HVReference | None = None
    algorithm_s: float = 0.0             # wall time outside the objective functions
    scoring_s: float = 0.0               # wall time inside them (this process)

    @property
    def evaluations(self) -> int:
        return len(self.requested)


def build_algorithm(config: NSGAConfig, n_var: int) -> NSGA2:
    kwargs = dict(
        pop_size=config.pop_size,
        n_offsprings=config.n_offsprings,
        sampling=AnchoredBinarySampling(),
        crossover=TwoPointCrossover(prob=config.crossover_prob),
        mutation=BitflipMutation(prob_var=config.mutation_prob_var or 1.0 / n_var),
        eliminate_duplicates=NoveltyElimination() if config.novelty else True,
    )
    if config.screen > 0:
        return ScreenedNSGA2(SurrogateScreen(config.screen), **kwargs)
    return NSGA2(**kwargs)


def _problem_identity(problem: ArchProblem) -> dict[str, Any]:
    assert problem.scorer is not None
    return {"n_var": problem.n_var, "objectives": problem.scorer.names, "granularity": problem.granularity,
            "stage_sizes": list(problem.stage_sizes), "budget": problem.budget}


def _front_of(problem: ArchProblem, keys: list[str]) -> np.ndarray:
    """Minimisation objectives of the (feasible) non-dominated archs among ``keys``."""
    assert problem.scorer is not None
    records = problem.scorer.lookup(keys)
    F = problem.scorer.minimisation_matrix(records)
    if problem.budget is not None and len(F):
        F = F[problem.violation(records) <= 0]
    return F[front_indices(F)] if len(F) else F


def run_nsga2(problem: ArchProblem, config: NSGAConfig, state_path: str | Path | None = None,
              resume: bool = False, writer: Any | None = None, progress: bool = True) -> NSGAResult:
    """Run (or resume) NSGA-II on ``problem``; returns the archs asked for and per-generation logs."""
    scorer = problem.scorer
    if scorer is None:
        raise ValueError("run_nsga2: the problem has no scorer")
    state_path = Path(state_path) if state_path is not None else None
    wall0, scoring0 = time.perf_counter(), scorer.scoring_s
    identity = {"config": config.identity(), "problem": _problem_identity(problem)}

    if resume and state_path is not None and state_path.exists():
        state = _load_state(state_path, identity)
        algorithm: NSGA2 = state["algorithm"]
        algorithm.problem = problem
        if algorithm.termination.n_max_gen != config.generations:
            algorithm.termination = MaximumGenerationTermination(config.generations)
        requested: dict[str, None] = dict.fromkeys(state["requested"])
        history: list[GenerationLog] = state["history"]
        hv_ref: HVReference | None = state["hv_reference"]
        scorer.score([Arch.parse(k) for k in requested])   # a lost or foreign cache is refilled, not trusted blindly
    else:
        if resume:
            tqdm.write(f"resume: no state at {state_path}; starting a new search")
        algorithm = build_algorithm(config, problem.n_var)
        algorithm.setup(problem, termination=("n_gen", config.generations), seed=config.seed, verbose=False)
        requested, history, hv_ref = {}, [], None

    bar = tqdm(total=config.generations, initial=len(history), desc="NSGA-II", unit="gen", disable=not progress)
    while algorithm.has_next():
        pop = algorithm.ask()
        if pop is None or len(pop) == 0:
            tqdm.write("NSGA-II: no new archs left to propose (search space exhausted); stopping")
            break
        X = pop.get("X")
        keys = [str(problem.decode(x)) for x in X]
        hits0, scored0 = scorer.n_hits, scorer.n_scored
        algorithm.evaluator.eval(problem, pop)
        algorithm.tell(infills=pop)
        if isinstance(algorithm.eliminate_duplicates, NoveltyElimination):   # shared by sampling and mating
            algorithm.eliminate_duplicates.remember(X)
        if isinstance(algorithm, ScreenedNSGA2):
            records = scorer.lookup(keys)
            algorithm.screen.observe(X, scorer.minimisation_matrix(records), problem.violation(records) <= 0)
        requested.update(dict.fromkeys(keys))

        front = _front_of(problem, list(requested))
        if hv_ref is None:   # fixed for the whole run: the first generation's objective ranges
            hv_ref = HVReference.from_points(scorer.minimisation_matrix(scorer.lookup(keys)))
        log = GenerationLog(len(history) + 1, len(requested), scorer.n_scored - scored0, scorer.n_hits - hits0,
                            len(front), hv_ref.hypervolume(front))
        history.append(log)
        if writer is not None:
            for name in ("evaluations", "new_scores", "cache_hits", "front_size", "hypervolume"):
                writer.add_scalar(f"search/{name}", getattr(log, name), log.generation)
            writer.flush()
        if state_path is not None:
            atomic_pickle(state_path, {"version": STATE_VERSION, "identity": identity, "algorithm": algorithm,
                                       "requested": list(requested), "history": history, "hv_reference": hv_ref})
        bar.update(1)
        bar.set_postfix(evals=len(requested), new=log.new_scores, hits=log.cache_hits, front=log.front_size,
                        hv=f"{log.hypervolume:.4f}")
    bar.close()

    pop_keys = [str(problem.decode(x)) for x in algorithm.pop.get("X")] if algorithm.pop is not None else []
    scoring = scorer.scoring_s - scoring0
    return NSGAResult(list(requested), pop_keys, history, hv_ref,
                      algorithm_s=time.perf_counter() - wall0 - scoring, scoring_s=scoring)


def _load_state(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            state = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as e:
        raise ValueError(f"search state {path} cannot be read ({e}); delete it or drop --resume") from e
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ValueError(f"search state {path} has an unknown format; delete it or drop --resume")
    if state["identity"] != identity:
        diff = {k: (state["identity"][k], identity[k]) for k in identity if state["identity"].get(k) != identity[k]}
        raise ValueError(f"search state {path} was saved with other settings {diff} (saved, now); resume with "
                         f"the same settings (only --generations may change) or use another --out")
    return state
