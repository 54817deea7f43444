"""The evaluation cache: persistence, context checks, and no arch scored twice."""
from __future__ import annotations

import json

import pytest

from search.cache import CacheContextError, EvalCache
from supernet.arch import Arch, all_stage_archs


def test_cache_persists_and_reloads(tmp_path):
    path = tmp_path / "cache.json"
    cache = EvalCache(path, context={"task": "denoise"})
    cache.put_many({"TTSSTTSS": {"psnr": 30.5, "latency_ms": 12.0}})
    again = EvalCache(path, context={"task": "denoise"})
    assert "TTSSTTSS" in again and len(again) == 1
    assert again.get("TTSSTTSS") == {"psnr": 30.5, "latency_ms": 12.0}
    assert json.loads(path.read_text())["context"] == {"task": "denoise"}
    assert not list(tmp_path.glob(".*tmp"))       # atomic write left no temp file


def test_cache_refuses_another_context(tmp_path):
    path = tmp_path / "cache.json"
    EvalCache(path, context={"supernet": "a"}).put_many({"TTTTTTTT": {"psnr": 1.0}})
    with pytest.raises(CacheContextError, match="supernet"):
        EvalCache(path, context={"supernet": "b"})


def test_cache_rejects_garbage(tmp_path):
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        EvalCache(path)


def test_scorer_never_scores_an_arch_twice(tmp_path, synthetic):
    problem, syn = synthetic(cache=tmp_path / "cache.json")
    archs = all_stage_archs()[:10]
    first = problem.scorer.score(archs + archs[:3])          # duplicates inside one batch too
    assert syn.calls["quality"] == 10 and problem.scorer.n_scored == 10
    second = problem.scorer.score(list(reversed(archs)))
    assert syn.calls["quality"] == 10 and problem.scorer.n_hits == 3 + 10
    assert {r["arch"]: r for r in first} == {r["arch"]: r for r in second}
    # a new scorer over the same file (a resumed or repeated run) scores nothing already known
    problem2, syn2 = synthetic(cache=tmp_path / "cache.json")
    problem2.scorer.score(archs + [Arch.parse("TSTSTSTS")])
    assert syn2.calls["quality"] == (0 if "TSTSTSTS" in {str(a) for a in archs} else 1)
