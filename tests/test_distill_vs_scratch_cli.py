"""benchmarks/distill_vs_scratch.py at a tiny size: every branch trains from the one teacher (or from scratch), each
stage validates all-T and all-S, a rerun reads finished branches back and refuses changed settings (the figures
themselves come from the benchmark)."""
import json
import sys

import pytest

from benchmark_scripts import load_benchmark
from test_pipeline import TINY


def _run(monkeypatch, capsys, out, *extra):
    mod = load_benchmark("distill_vs_scratch")
    argv = ["distill_vs_scratch.py", "--config", "configs/demo.yaml", "--out", str(out),
            "--branches", "distill,none,scratch"]
    for kv in TINY:
        argv += ["--set", kv]
    argv += list(extra)  # after TINY, so that an extra --set wins
    monkeypatch.setattr(sys, "argv", argv)
    mod.main()
    return capsys.readouterr().out


@pytest.mark.slow
def test_tiny_run_trains_every_branch_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "dvs"
    first = _run(monkeypatch, capsys, out)
    result = json.loads((out / "distill_vs_scratch.json").read_text())
    stages = result["seeds"]["0"]
    assert list(stages) == ["distill", "none", "scratch"]
    assert list(stages["distill"]) == ["after SSM stage", "after supernet"]
    for branch in stages.values():
        for r in branch.values():
            assert set(r) == {"all_T", "all_S"} and all(5.0 < v < 60.0 for v in r.values())
    assert "distill      after supernet" in first
    again = _run(monkeypatch, capsys, out)
    assert again.count("reusing") == 3
    with pytest.raises(SystemExit, match="another config"):
        _run(monkeypatch, capsys, out, "--teacher", str(out / "teacher" / "supernet.pt"), "--set", "supernet.steps=4")
