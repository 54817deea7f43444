"""Outputs on disk (they parse and agree with each other) and budget-constraint handling."""
from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest

from search.exhaustive import exhaustive_records
from search.nsga import NSGAConfig
from search.outputs import select
from search.pareto import knee_index
from search.runner import fastest_arch, run_problem
from supernet.arch import Arch

OBJ = [("psnr", True), ("latency_ms", False)]


def dominated(a, b):
    """a dominated by b (psnr up, latency down)."""
    return b["psnr"] >= a["psnr"] and b["latency_ms"] <= a["latency_ms"] and (
        b["psnr"] > a["psnr"] or b["latency_ms"] < a["latency_ms"])


def test_outputs_parse_and_agree(tmp_path, synthetic, capsys):
    problem, _ = synthetic(seed=4, budget=14.0, cache=tmp_path / "cache.json")
    run = run_problem(problem, NSGAConfig(seed=0), tmp_path, progress=False)
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert front and [r["latency_ms"] for r in front] == sorted(r["latency_ms"] for r in front)
    evaluated = list(csv.DictReader(open(tmp_path / "all_evaluated.csv")))
    assert len(evaluated) == run.nsga.evaluations
    records = [{"arch": r["arch"], "psnr": float(r["psnr"]), "latency_ms": float(r["latency_ms"])} for r in evaluated]
    feasible = [r for r in records if r["latency_ms"] <= 14.0]
    for r in front:      # non-dominated among the feasible evaluated archs, and feasible itself
        assert r["feasible"] and r["latency_ms"] <= 14.0
        assert not any(dominated(r, o) for o in feasible)
    on_front = {r["arch"] for r in evaluated if r["on_front"] == "True"}
    assert on_front == {r["arch"] for r in front}
    assert [r["arch"] for r in csv.DictReader(open(tmp_path / "pareto.csv"))] == [r["arch"] for r in front]
    for r in front:
        assert Arch.load(tmp_path / "archs" / f"{r['arch']}.json") == Arch.parse(r["arch"])
    chosen = json.loads((tmp_path / "chosen.json").read_text())
    assert set(chosen) >= {"knee", "best_under_budget"}
    assert str(Arch.load(tmp_path / "chosen.json")) == chosen["knee"]["arch"]      # what train.py subnet reads
    best = chosen["best_under_budget"]
    assert best["latency_ms"] <= 14.0 and best["psnr"] == max(r["psnr"] for r in feasible)
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    printed = capsys.readouterr().out
    assert "Pareto front" in printed and chosen["knee"]["arch"] in printed


def test_knee_is_the_bulge_of_a_convex_front():
    F = np.array([[-28.0, 1.0], [-29.5, 2.0], [-29.8, 4.0], [-30.0, 8.0]])   # (-psnr, cost), a front
    assert knee_index(F) == 1
    assert knee_index(F[::-1]) == 2
    assert knee_index(F[:1]) == 0


def test_budget_below_the_fastest_arch_returns_least_infeasible(tmp_path, synthetic, capsys):
    problem, _ = synthetic(seed=0, budget=1.0)
    fastest, ms = fastest_arch(problem)
    everything = exhaustive_records(problem)
    assert ms == pytest.approx(min(r["latency_ms"] for r in everything))
    assert str(fastest) == min(everything, key=lambda r: r["latency_ms"])["arch"]
    problem, _ = synthetic(seed=0, budget=1.0)
    with pytest.warns(UserWarning, match=f"below the fastest arch {fastest}"):
        run = run_problem(problem, NSGAConfig(seed=0, generations=3), tmp_path, progress=False, tensorboard=False)
    assert not run.selection.feasible
    assert run.selection.front[0]["arch"] == str(fastest)          # the least infeasible first
    chosen = json.loads((tmp_path / "chosen.json").read_text())
    assert chosen["feasible"] is False and chosen["best_under_budget"]["arch"] == str(fastest)
    assert "Nothing meets the budget" in capsys.readouterr().out


def test_constraint_steers_the_search(synthetic):
    """With a budget, G <= 0 is the constraint: the final population is mostly feasible archs."""
    from search.nsga import run_nsga2

    problem, _ = synthetic(seed=2, budget=13.0)
    result = run_nsga2(problem, NSGAConfig(seed=0), progress=False)
    population = problem.scorer.lookup(result.population)
    assert np.mean([r["latency_ms"] <= 13.0 for r in population]) >= 0.75
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # a reachable budget raises no warning
        fastest_arch(problem)


def test_three_objectives(tmp_path, synthetic):
    problem, _ = synthetic(seed=0, params=True)
    run = run_problem(problem, NSGAConfig(seed=0, generations=4), tmp_path, progress=False, tensorboard=False)
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert all("params_m" in r for r in front) and len(front) == len(run.selection.front)


def test_select_rejects_nothing():
    with pytest.raises(ValueError, match="no evaluated"):
        select([], OBJ, "latency_ms")
