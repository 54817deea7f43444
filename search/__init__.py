"""ENS search: NSGA-II over hybrid archs, scored by supernet PSNR and LUT latency (or the transformer penalty).

The search sees objectives as narrow functions ``fn(arch) -> float``; scores are cached by the canonical arch
string. Entry points: :func:`search.runner.run_search` (from ``search.py``) and :func:`search.runner.run_problem`
(any :class:`search.problem.ArchProblem`).
"""
from search.cache import EvalCache
from search.evaluators import LUTLatency, ParamCount, SupernetQuality, TransformerPenalty
from search.exhaustive import Comparison, compare, exhaustive_records
from search.nsga import NSGAConfig, NSGAResult, run_nsga2
from search.outputs import Selection, select, write_outputs
from search.problem import ArchProblem, Objective, Scorer
from search.runner import SearchRun, SearchSettings, build_problem, run_problem, run_search

__all__ = ["EvalCache", "LUTLatency", "ParamCount", "SupernetQuality", "TransformerPenalty", "Comparison", "compare",
           "exhaustive_records", "NSGAConfig", "NSGAResult", "run_nsga2", "Selection", "select", "write_outputs",
           "ArchProblem", "Objective", "Scorer", "SearchRun", "SearchSettings", "build_problem", "run_problem",
           "run_search"]
