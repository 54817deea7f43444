"""Score every arch of a small space (the 256 of ``stage`` granularity) and measure how close NSGA-II came."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from search.pareto import HVReference, front_indices
from search.problem import ArchProblem
from supernet.arch import all_stage_archs


@dataclass
class Comparison:
    """Hypervolumes of the search's and the exhaustive (feasible) fronts under one fixed reference."""

    hv_search: float
    hv_exhaustive: float
    ratio: float
    evaluations: int              # distinct archs the search scored
    exhaustive_evaluations: int
    front_size_search: int
    front_size_exhaustive: int
    reference: dict[str, Any]

    @property
    def evaluation_share(self) -> float:
        return self.evaluations / self.exhaustive_evaluations

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "evaluation_share": self.evaluation_share}

    def summary(self) -> str:
        return (f"NSGA-II reached {100 * self.ratio:.2f}% of the exhaustive front's hypervolume "
                f"({self.hv_search:.4f} / {self.hv_exhaustive:.4f}) with {self.evaluations} of "
                f"{self.exhaustive_evaluations} evaluations ({100 * self.evaluation_share:.1f}%); fronts: "
                f"{self.front_size_search} vs {self.front_size_exhaustive} archs")


def exhaustive_records(problem: ArchProblem) -> list[dict[str, Any]]:
    """Every stage-granularity arch, scored through the problem's cached scorer."""
    if problem.granularity != "stage" or problem.scorer is None:
        raise ValueError(f"exhaustive enumeration needs --granularity stage (2^8 archs); {problem.granularity} "
                         f"granularity has 2^{problem.n_var} archs")
    return problem.scorer.score(all_stage_archs())


def _feasible_front(problem: ArchProblem, records: Sequence[dict[str, Any]]) -> np.ndarray:
    assert problem.scorer is not None
    F = problem.scorer.minimisation_matrix(records)
    if problem.budget is not None:
        F = F[problem.violation(records) <= 0]
    return F[front_indices(F)] if len(F) else F


def compare(problem: ArchProblem, search_records: Sequence[dict[str, Any]],
            all_records: Sequence[dict[str, Any]], ref: float = 1.1) -> Comparison:
    """Hypervolume ratio search / exhaustive; objectives normalised by the whole space's ranges, ref point 1.1."""
    assert problem.scorer is not None
    reference = HVReference.from_points(problem.scorer.minimisation_matrix(all_records), ref=ref)
    fs, fe = _feasible_front(problem, search_records), _feasible_front(problem, all_records)
    hv_s, hv_e = reference.hypervolume(fs), reference.hypervolume(fe)
    return Comparison(hv_s, hv_e, hv_s / hv_e if hv_e > 0 else float("nan"), len(search_records), len(all_records),
                      len(fs), len(fe), asdict(reference))
