"""benchmarks/reproduce.py's choice of recipe and output folder (the pipeline itself is tested in test_pipeline)."""
import sys

import pytest
from benchmark_scripts import load_benchmark


def _reproduce(monkeypatch, *argv):
    mod = load_benchmark("reproduce")
    ran = []
    monkeypatch.setattr(mod, "run_pipeline", ran.append)
    monkeypatch.setattr(sys, "argv", ["reproduce.py", *argv])
    mod.main()
    return ran[0]


def test_scale_picks_its_config_and_output(monkeypatch):
    spec = _reproduce(monkeypatch, "--task", "deblur")
    assert spec.config == "configs/proxy/deblur.yaml" and spec.out == "runs/reproduce/deblur-proxy"
    assert spec.finetune_steps == 400 and spec.chosen == ("knee", "best_under_budget")
    assert spec.latency_rounds == 10


def test_latency_rounds_is_passed_on_and_checked(monkeypatch, capsys):
    assert _reproduce(monkeypatch, "--task", "deblur", "--latency-rounds", "4").latency_rounds == 4
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--latency-rounds", "0")
    assert "--latency-rounds" in capsys.readouterr().err


def test_config_names_the_output_folder(monkeypatch):
    spec = _reproduce(monkeypatch, "--task", "deblur", "--config", "configs/proxy/deblur-deep.yaml")
    assert spec.config == "configs/proxy/deblur-deep.yaml" and spec.out == "runs/reproduce/deblur-deep-proxy"


def test_config_of_another_task_is_refused(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "denoise", "--config", "configs/proxy/deblur-deep.yaml")
    err = capsys.readouterr().err
    assert "configs/proxy/deblur-deep.yaml" in err and "'deblur'" in err and "'denoise'" in err


def test_missing_config_is_a_clear_error(monkeypatch, capsys):
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--config", "configs/proxy/nope.yaml")
    assert "configs/proxy/nope.yaml" in capsys.readouterr().err
