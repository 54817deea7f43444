"""One search run: build the objectives from a supernet checkpoint (+ LUT), run NSGA-II, write the results.

:func:`run_problem` is the generic part (any :class:`ArchProblem`, e.g. the synthetic one in tests);
:func:`build_problem` turns :class:`SearchSettings` (what ``search.py`` parses) into the supernet problem.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search.cache import EvalCache
from search.evaluators import LUTLatency, ParamCount, SupernetQuality, TransformerPenalty
from search.exhaustive import Comparison, compare, exhaustive_records
from search.fileio import atomic_write_text
from search.nsga import NSGAConfig, NSGAResult, run_nsga2
from search.outputs import Selection, format_table, select, write_outputs
from search.problem import ArchProblem, Objective, Scorer
from supernet.arch import GRANULARITIES, Arch


@dataclass
class SearchSettings:
    """Everything ``search.py`` takes. ``None`` means: derive it (see :func:`build_problem`)."""

    task: str | None = None
    supernet: Path | None = None
    config: Path | None = None
    lut: Path | None = None
    out: Path | None = None
    budget_ms: float | None = None
    granularity: str = "stage"
    resolution: int | None = None
    penalty: str = "count"              # LUT-free cost: "count" (transformer blocks) or "flops"
    params_objective: bool = False      # add parameters (M) as a third objective
    nsga: NSGAConfig = field(default_factory=NSGAConfig)
    exhaustive: bool = False
    resume: bool = False
    val_limit: int | None = None        # use the first N validation crops (None: all)
    eval_set: tuple[str, ...] = ()      # data.val_crop / data.val_crops overrides of the supernet's validation set
    batch_size: int = 8
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"--granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.penalty not in ("count", "flops"):
            raise ValueError(f"--penalty must be 'count' or 'flops', got {self.penalty!r}")
        if self.exhaustive and self.granularity != "stage":
            raise ValueError("--exhaustive enumerates the 256 archs of --granularity stage; block granularity has "
                             "2^(number of blocks) archs")
        if self.budget_ms is not None and self.budget_ms <= 0:
            raise ValueError(f"--budget-ms must be > 0, got {self.budget_ms}")


@dataclass
class SearchRun:
    selection: Selection
    nsga: NSGAResult
    records: list[dict[str, Any]]
    comparison: Comparison | None
    paths: dict[str, Path]
    wall_s: float
    table: str


# ---- the generic run ------------------------------------------------------------------------------------------
def fastest_arch(problem: ArchProblem) -> tuple[Arch, float]:
    """The cheapest arch under the constrained (additive) cost: all-ssm with every slot flipped that saves cost.

    Costs n_var + 1 calls of the cost function only (LUT lookups or the penalty), never the quality."""
    assert problem.scorer is not None
    fn = next(o.fn for o in problem.scorer.objectives if o.name == problem.constraint_on)
    base = problem.encode(Arch.uniform(problem.stage_sizes, "S", problem.granularity))
    c0 = fn(problem.decode(base))
    best = base.copy()
    for i in range(problem.n_var):
        x = base.copy()
        x[i] = True
        best[i] = fn(problem.decode(x)) < c0
    arch = problem.decode(best)
    return arch, float(fn(arch))


def run_problem(problem: ArchProblem, nsga: NSGAConfig, out_dir: str | Path, resume: bool = False,
                exhaustive: bool = False, progress: bool = True, tensorboard: bool = True,
                extra: dict[str, Any] | None = None) -> SearchRun:
    """NSGA-II on ``problem`` (+ the exhaustive check), outputs in ``out_dir``, the front table printed."""
    scorer = problem.scorer
    assert scorer is not None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    cost = problem.constraint_on
    if problem.budget is not None:
        arch, fastest = fastest_arch(problem)
        if fastest > problem.budget:
            warnings.warn(f"budget {problem.budget:g} ({cost}) is below the fastest arch {arch} ({fastest:.4g}); "
                          f"no arch can meet it, so the search returns the least infeasible archs. Raise the budget "
                          f"to at least {fastest:.4g}.", stacklevel=2)
    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tensorboard"))
    try:
        result = run_nsga2(problem, nsga, state_path=out / "state.pkl", resume=resume, writer=writer,
                           progress=progress)
    finally:
        if writer is not None:
            writer.close()
    records = scorer.lookup(result.requested)
    comparison = None
    if exhaustive:
        everything = exhaustive_records(problem)
        comparison = compare(problem, records, everything)
        atomic_write_text(out / "exhaustive.json", json.dumps(comparison.to_json(), indent=2) + "\n")
        records = everything
    objectives = [(o.name, o.maximize) for o in scorer.objectives]
    selection = select(records, objectives, cost, problem.budget)
    info = {"evaluations": result.evaluations, "generations": len(result.history), "seed": nsga.seed,
            **({"exhaustive": comparison.to_json()} if comparison else {}), **(extra or {})}
    paths = write_outputs(out, records, selection, objectives, cost, problem.stage_sizes, extra=info)
    marks = {selection.knee["arch"]: "knee"}
    marks[selection.best_under_budget["arch"]] = (marks.get(selection.best_under_budget["arch"], "") +
                                                  " best-under-budget").strip()
    table = format_table(selection.front, [n for n, _ in objectives], marks)
    print(f"\nPareto front ({len(selection.front)} archs, {result.evaluations} evaluated by NSGA-II, "
          f"{scorer.n_scored} scored now, {scorer.n_hits} cache hits):\n{table}")
    if not selection.feasible:
        print(f"Nothing meets the budget {problem.budget:g} ({cost}); listed: the least infeasible archs.")
    if comparison is not None:
        print(comparison.summary())
    print(f"results in {out}")
    return SearchRun(selection, result, records, comparison, paths, time.perf_counter() - start, table)


# ---- the supernet problem -------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _default_config(task: str | None) -> Path | None:
    p = Path("configs") / f"{task}.yaml"
    return p if task and p.is_file() else None


def build_problem(s: SearchSettings) -> tuple[ArchProblem, Path, dict[str, Any]]:
    """Load the supernet (and LUT), check they fit each other and the task; return (problem, out dir, info)."""
    from supernet.checkpoint import load_model
    from supernet.config import load_config, with_validation_set
    from supernet.data import build_datasets
    from supernet.data.tasks import get_task

    if s.task is not None:
        get_task(s.task)                       # unknown task: fails listing the known ones
    config_path = s.config or _default_config(s.task)   # the default one only locates the default checkpoint
    cfg = load_config(config_path) if config_path else None
    ckpt = s.supernet
    if ckpt is None:
        guess = (cfg.out_dir / "supernet.pt") if cfg is not None else None
        if guess is None or not guess.is_file():
            hint = f"configs/{s.task}.yaml" if s.task else "<config>"
            raise FileNotFoundError(
                f"no supernet checkpoint{f' at {guess}' if guess else ''}: pass --supernet <runs/.../supernet.pt>, "
                f"or train one with 'python train.py supernet --config {config_path or hint}'")
        ckpt = guess
    model, ckpt_cfg = load_model(ckpt, map_location=s.device)
    ckpt_cfg = with_validation_set(ckpt_cfg, list(s.eval_set))  # recorded in the cache context below
    if not hasattr(model, "set_arch"):
        raise ValueError(f"{ckpt} holds an extracted subnet, not a supernet; pass the supernet checkpoint "
                         f"(supernet.pt from 'python train.py supernet')")
    task = s.task or ckpt_cfg.task
    if ckpt_cfg.task != task:
        raise ValueError(f"supernet {ckpt} was trained for task {ckpt_cfg.task!r}, not {task!r}; pass --task "
                         f"{ckpt_cfg.task} or a supernet trained with configs/{task}.yaml")
    if s.config is not None and cfg is not None and asdict(cfg.model) != asdict(ckpt_cfg.model):
        diff = {k: (v, asdict(cfg.model).get(k)) for k, v in asdict(ckpt_cfg.model).items()
                if asdict(cfg.model).get(k) != v}
        raise ValueError(f"supernet {ckpt} has another model size than {config_path} (checkpoint, config): {diff}; "
                         f"pass the matching --config or retrain with it")

    lut = None
    if s.lut is not None:
        from latency_lut.lut import LUT

        lut = LUT.load(s.lut)
    resolution = s.resolution or (lut.resolutions[0][0] if lut is not None else 256)
    _, val = build_datasets(ckpt_cfg.data, task, ckpt_cfg.seed)
    quality = SupernetQuality.from_dataset(model, val, task, limit=s.val_limit, batch_size=s.batch_size)
    objectives = [Objective("psnr", quality, maximize=True)]
    if lut is not None:
        # the LUT records the config's model section it was built from (build_lut.py --config): compare like with like
        latency = LUTLatency(lut, resolution, resolution, model_config=asdict(ckpt_cfg.model),
                             stage_sizes=model.stage_sizes)
        objectives.append(Objective("latency_ms", latency, cheap=True))
        cost_desc: dict[str, Any] = {"lut": str(s.lut), "lut_sha256": _sha256(Path(s.lut)), "resolution": resolution}
    else:
        penalty = (TransformerPenalty.flops(model) if s.penalty == "flops"
                   else TransformerPenalty.count(model.stage_sizes))
        objectives.append(Objective("transformer_cost", penalty, cheap=True))
        cost_desc = {"penalty": s.penalty}
        if s.budget_ms is not None:
            warnings.warn("--budget-ms without --lut: the budget applies to the transformer cost share (0..1)")
    if s.params_objective:
        objectives.append(Objective("params_m", ParamCount(model), cheap=True))
    cost_tag = Path(s.lut).stem if s.lut else s.penalty
    out = Path(s.out) if s.out else Path("runs/search") / f"{task}-{s.granularity}-{cost_tag}"
    context = {"task": task, "supernet": str(ckpt), "supernet_sha256": _sha256(Path(ckpt)),
               "model": model.config, "val_images": quality.n_images, "data": asdict(ckpt_cfg.data),
               "objectives": [o.name for o in objectives], **cost_desc}
    cache = EvalCache(out / "cache.json", context=context)
    problem = ArchProblem(Scorer(objectives, cache), model.stage_sizes, s.granularity, budget=s.budget_ms)
    info = {"task": task, "supernet": str(ckpt), "lut": str(s.lut) if s.lut else None, "resolution": resolution,
            "granularity": s.granularity}
    return problem, out, info


def run_search(s: SearchSettings) -> SearchRun:
    problem, out, info = build_problem(s)
    return run_problem(problem, s.nsga, out, resume=s.resume, exhaustive=s.exhaustive, progress=s.progress,
                       extra=info)
