"""NSGA-II: reproducible fronts, resume, cache use, and closeness to the exhaustive front."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from search.exhaustive import compare, exhaustive_records
from search.nsga import NSGAConfig, run_nsga2
from search.outputs import select
from supernet.arch import all_stage_archs

OBJ = [("psnr", True), ("latency_ms", False)]


def front_of(problem, result):
    records = problem.scorer.lookup(result.requested)
    return [r["arch"] for r in select(records, OBJ, "latency_ms", problem.budget).front]


def test_same_seed_same_front(synthetic):
    runs = []
    for _ in range(2):
        problem, _ = synthetic(seed=3)
        result = run_nsga2(problem, NSGAConfig(seed=11), progress=False)
        runs.append((result.requested, front_of(problem, result)))
    assert runs[0] == runs[1]
    problem, _ = synthetic(seed=3)
    other = run_nsga2(problem, NSGAConfig(seed=12), progress=False)
    assert other.requested != runs[0][0]              # the seed matters


def test_evaluations_are_distinct_and_within_budget(synthetic):
    problem, syn = synthetic(seed=1)
    cfg = NSGAConfig(seed=0)
    result = run_nsga2(problem, cfg, progress=False)
    assert len(set(result.requested)) == len(result.requested) == result.evaluations
    assert result.evaluations <= cfg.pop_size + (cfg.generations - 1) * cfg.n_offsprings == 64
    assert syn.calls["quality"] == result.evaluations == problem.scorer.n_scored
    assert [g.generation for g in result.history] == list(range(1, cfg.generations + 1))
    assert all(0 < g.hypervolume for g in result.history)
    assert np.all(np.diff([g.hypervolume for g in result.history]) >= -1e-12)   # archive front never shrinks


@pytest.mark.parametrize("objective_seed", range(4))
def test_hypervolume_close_to_exhaustive(synthetic, objective_seed):
    """>= 99% of the exhaustive front's hypervolume with <= 25% of the 256 evaluations, over several seeds."""
    ratios = []
    for seed in range(3):
        problem, syn = synthetic(seed=objective_seed)
        result = run_nsga2(problem, NSGAConfig(seed=seed), progress=False)
        assert syn.calls["quality"] == result.evaluations <= 64
        comparison = compare(problem, problem.scorer.lookup(result.requested), exhaustive_records(problem))
        assert comparison.exhaustive_evaluations == 256 and comparison.evaluation_share <= 0.25
        ratios.append(comparison.ratio)
    assert min(ratios) >= 0.99, ratios


def test_plain_nsga2_without_screen_is_worse_but_valid(synthetic):
    """The surrogate screen is what buys the last percent: without it the same budget lands lower."""
    plain, screened = [], []
    for seed in range(3):
        for screen, out in ((0, plain), (8, screened)):
            problem, _ = synthetic(seed=0)
            result = run_nsga2(problem, NSGAConfig(seed=seed, screen=screen), progress=False)
            out.append(compare(problem, problem.scorer.lookup(result.requested), exhaustive_records(problem)).ratio)
    assert 0.9 < np.mean(plain) < np.mean(screened)


class Interrupt(Exception):
    pass


def test_resume_gives_the_uninterrupted_front(tmp_path, synthetic):
    cfg = NSGAConfig(seed=5)
    problem, _ = synthetic(seed=2, cache=tmp_path / "full" / "cache.json")
    full = run_nsga2(problem, cfg, state_path=tmp_path / "full" / "state.pkl", progress=False)

    # interrupted: the quality function dies on its 40th call (mid-generation)
    problem, syn = synthetic(seed=2, cache=tmp_path / "cut" / "cache.json")
    fn = problem.scorer.objectives[0].fn

    def dying(arch):
        if syn.calls["quality"] >= 39:
            raise Interrupt
        return fn(arch)

    problem.scorer.objectives[0].fn = dying
    with pytest.raises(Interrupt):
        run_nsga2(problem, cfg, state_path=tmp_path / "cut" / "state.pkl", progress=False)
    with open(tmp_path / "cut" / "state.pkl", "rb") as f:
        saved = pickle.load(f)
    assert 0 < len(saved["history"]) < cfg.generations
    assert saved["algorithm"].problem.scorer is None          # the state does not drag the objectives along

    problem2, syn2 = synthetic(seed=2, cache=tmp_path / "cut" / "cache.json")
    resumed = run_nsga2(problem2, cfg, state_path=tmp_path / "cut" / "state.pkl", resume=True, progress=False)
    assert resumed.requested == full.requested
    assert front_of(problem2, resumed) == [r["arch"] for r in select(
        problem2.scorer.lookup(full.requested), OBJ, "latency_ms").front]
    assert [h.hypervolume for h in resumed.history] == pytest.approx([h.hypervolume for h in full.history])
    # only archs the interrupted run had not scored were scored after the resume
    assert syn.calls["quality"] + syn2.calls["quality"] == full.evaluations


def test_resume_refuses_other_settings(tmp_path, synthetic):
    problem, _ = synthetic(seed=0)
    run_nsga2(problem, NSGAConfig(seed=1, generations=2), state_path=tmp_path / "state.pkl", progress=False)
    problem, _ = synthetic(seed=0)
    with pytest.raises(ValueError, match="other settings"):
        run_nsga2(problem, NSGAConfig(seed=2, generations=2), state_path=tmp_path / "state.pkl", resume=True,
                  progress=False)
    # more generations is allowed and continues where it stopped
    more = run_nsga2(problem, NSGAConfig(seed=1, generations=4), state_path=tmp_path / "state.pkl", resume=True,
                     progress=False)
    assert len(more.history) == 4


def test_block_granularity_runs(synthetic):
    problem, syn = synthetic(seed=0, granularity="block", blocks=(2, 2, 1, 2, 1, 2, 2, 1))
    result = run_nsga2(problem, NSGAConfig(pop_size=8, generations=3, seed=0), progress=False)
    assert problem.n_var == 13 and result.evaluations == syn.calls["quality"] <= 8 + 2 * 4
    assert all("-" in k for k in result.requested)
    with pytest.raises(ValueError, match="stage"):
        exhaustive_records(problem)


def test_all_stage_archs_scored_once_in_exhaustive(synthetic):
    problem, syn = synthetic(seed=0)
    run_nsga2(problem, NSGAConfig(seed=0), progress=False)
    before = syn.calls["quality"]
    records = exhaustive_records(problem)
    assert len({r["arch"] for r in records}) == 256 == len(all_stage_archs())
    assert syn.calls["quality"] == 256 and before == problem.scorer.n_scored - (256 - before)
