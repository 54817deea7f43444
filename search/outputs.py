"""Search results on disk: the Pareto front (JSON, CSV, one arch.json each), every evaluated arch, the chosen
archs (knee, best under the budget), a plot, and a printed table.

Records are dicts ``{"arch": <canonical string>, "psnr": dB, <cost>: value, ...}`` where ``<cost>`` is
``latency_ms`` with a LUT and ``transformer_cost`` without one.
"""
from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from search.fileio import atomic_write_bytes, atomic_write_text
from search.pareto import front_indices, knee_index, least_infeasible
from supernet.arch import Arch


@dataclass
class Selection:
    """The front to report and the two chosen archs."""

    front: list[dict[str, Any]]           # sorted by cost, ascending
    feasible: bool                        # False: nothing met the budget; ``front`` holds the least infeasible
    knee: dict[str, Any]
    best_under_budget: dict[str, Any]
    budget: float | None


def select(records: Sequence[dict[str, Any]], objectives: Sequence[tuple[str, bool]], cost: str,
           budget: float | None = None, n_infeasible: int = 5) -> Selection:
    """Non-dominated feasible records; the knee; the best quality under the budget.

    ``objectives`` is ``[(name, maximize), ...]`` with quality first. When no record meets the budget, the
    ``n_infeasible`` least infeasible (lowest ``cost``) are returned instead, with ``feasible=False``.
    """
    if not records:
        raise ValueError("no evaluated archs to select from")
    quality = objectives[0][0]
    sign = np.array([-1.0 if m else 1.0 for _, m in objectives])
    F = np.array([[r[n] for n, _ in objectives] for r in records], dtype=float) * sign   # minimisation form
    ok = np.ones(len(records), bool) if budget is None else np.array([r[cost] <= budget for r in records])
    if ok.any():
        idx = np.flatnonzero(ok)
        front = [records[i] for i in idx[front_indices(F[idx])]]
        feasible = True
    else:
        front = [records[i] for i in least_infeasible([r[cost] - budget for r in records], n_infeasible)]
        feasible = False
    front = sorted(front, key=lambda r: (r[cost], -r[quality]))
    # knee and best on the (quality, cost) plane, even with a third objective
    F2 = np.array([[-r[quality], r[cost]] for r in front])
    plane = [front[i] for i in front_indices(F2)]
    knee = plane[knee_index(np.array([[-r[quality], r[cost]] for r in plane]))] if feasible else front[0]
    best = max(front, key=lambda r: (r[quality], -r[cost])) if feasible else front[0]
    return Selection(front, feasible, dict(knee), dict(best), budget)


def _rows(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({c: r.get(c, "") for c in columns})
    return buf.getvalue()


def format_table(front: Sequence[dict[str, Any]], names: Sequence[str], marks: dict[str, str] | None = None) -> str:
    """A fixed-width table of the front (one row per arch, marks such as ``knee`` in the last column)."""
    marks = marks or {}
    width = max([len("arch")] + [len(r["arch"]) for r in front])
    head = f"{'#':>3}  {'arch':<{width}}  " + "  ".join(f"{n:>16}" for n in names) + "  note"
    lines = [head, "-" * len(head)]
    for i, r in enumerate(front):
        vals = "  ".join(f"{r[n]:>16.4f}" for n in names)
        lines.append(f"{i:>3}  {r['arch']:<{width}}  {vals}  {marks.get(r['arch'], '')}")
    return "\n".join(lines)


def plot_front(path: Path, records: Sequence[dict[str, Any]], selection: Selection, quality: str, cost: str,
               anchors: dict[str, str]) -> None:
    """All evaluated archs, the front, the uniform archs and the budget line (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.scatter([r[cost] for r in records], [r[quality] for r in records], s=12, c="0.7", label="evaluated")
    front = sorted(selection.front, key=lambda r: r[cost])
    ax.plot([r[cost] for r in front], [r[quality] for r in front], "o-", c="tab:red", ms=4,
            label="Pareto front" if selection.feasible else "least infeasible")
    by_key = {r["arch"]: r for r in records}
    for label, key in anchors.items():
        if key in by_key:
            ax.scatter([by_key[key][cost]], [by_key[key][quality]], marker="*", s=160, zorder=5, label=label)
    for label, r, m in (("knee", selection.knee, "D"), ("best under budget", selection.best_under_budget, "s")):
        ax.scatter([r[cost]], [r[quality]], marker=m, s=60, facecolors="none", edgecolors="k", zorder=6, label=label)
    if selection.budget is not None:
        ax.axvline(selection.budget, ls="--", c="tab:blue", label=f"budget {selection.budget:g}")
    ax.set_xlabel(cost)
    ax.set_ylabel(f"{quality} (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_outputs(out_dir: str | Path, records: Sequence[dict[str, Any]], selection: Selection,
                  objectives: Sequence[tuple[str, bool]], cost: str, stage_sizes: Any,
                  extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write pareto.json/.csv, all_evaluated.csv, pareto.png, archs/<arch>.json, chosen.json; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n, _ in objectives]
    quality = names[0]
    front_keys = {r["arch"] for r in selection.front}

    def enrich(r: dict[str, Any]) -> dict[str, Any]:
        arch = Arch.parse(r["arch"])
        feasible = selection.budget is None or r[cost] <= selection.budget
        return {"arch": r["arch"], **{n: float(r[n]) for n in names}, "granularity": arch.granularity,
                "transformer_blocks": arch.count("T", stage_sizes), "feasible": bool(feasible)}

    front = [enrich(r) for r in selection.front]
    everything = [{**enrich(r), "on_front": r["arch"] in front_keys} for r in sorted(records, key=lambda r: r[cost])]
    columns = ["arch", *names, "granularity", "transformer_blocks", "feasible"]
    paths = {"pareto.json": out / "pareto.json", "pareto.csv": out / "pareto.csv",
             "all_evaluated.csv": out / "all_evaluated.csv", "chosen.json": out / "chosen.json",
             "pareto.png": out / "pareto.png"}
    atomic_write_text(paths["pareto.json"], json.dumps(front, indent=2) + "\n")
    atomic_write_text(paths["pareto.csv"], _rows(front, columns))
    atomic_write_text(paths["all_evaluated.csv"], _rows(everything, columns + ["on_front"]))
    arch_dir = out / "archs"
    arch_dir.mkdir(exist_ok=True)
    for stale in arch_dir.glob("*.json"):     # a resumed or repeated run may have another front
        stale.unlink()
    for r in front:
        Arch.parse(r["arch"]).save(arch_dir / f"{r['arch']}.json", **{n: r[n] for n in names})
    chosen = {"knee": enrich(selection.knee), "best_under_budget": enrich(selection.best_under_budget),
              "budget": selection.budget, "cost": cost, "feasible": selection.feasible, **(extra or {})}
    atomic_write_text(paths["chosen.json"], json.dumps(chosen, indent=2) + "\n")
    anchors = {"all transformer": str(Arch.uniform(stage_sizes, "T", Arch.parse(records[0]["arch"]).granularity)),
               "all ssm": str(Arch.uniform(stage_sizes, "S", Arch.parse(records[0]["arch"]).granularity))}
    try:
        plot_front(paths["pareto.png"], records, selection, quality, cost, anchors)
    except Exception as e:  # a plot must never lose the search's results
        warnings.warn(f"pareto.png not written: {type(e).__name__}: {e}")
        paths.pop("pareto.png")
    return paths
