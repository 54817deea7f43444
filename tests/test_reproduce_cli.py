"""benchmarks/reproduce.py's choice of recipe and output folder (the pipeline itself is tested in test_pipeline)."""
import json
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


def _finished_run(root, **extra):
    for rel in ("supernet/supernet.pt", "lut.json", "search/chosen.json", "search/pareto.png", *extra):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text('{"calibration": null}' if rel == "lut.json" else rel)
    return root


def test_reuse_steps_copies_supernet_lut_and_search_only(tmp_path):
    from supernet.pipeline import reuse_steps

    src = _finished_run(tmp_path / "src", **{"subnet-SSSS/subnet.pt": 1, "supernet/checkpoints/last.pt": 1,
                                              "search/rerank/reranked.json": 1})
    out = tmp_path / "out"
    (out / "search").mkdir(parents=True)
    (out / "search" / "chosen.json").write_text("kept")  # files already there are not overwritten
    copied = reuse_steps(src, out)
    assert sorted(str(p.relative_to(out)) for p in copied) == ["lut.json", "search/pareto.png",
                                                               "supernet/supernet.pt"]
    assert (out / "search" / "chosen.json").read_text() == "kept"
    assert not (out / "subnet-SSSS").exists() and not (out / "supernet" / "checkpoints").exists()
    assert not list(out.rglob("*.tmp"))


def test_reuse_steps_names_every_missing_file_and_refuses_its_own_output(tmp_path):
    from supernet.pipeline import reuse_steps

    (tmp_path / "half" / "supernet").mkdir(parents=True)
    (tmp_path / "half" / "supernet" / "supernet.pt").write_text("x")
    with pytest.raises(FileNotFoundError) as e:
        reuse_steps(tmp_path / "half", tmp_path / "out")
    assert "lut.json" in str(e.value) and "chosen.json" in str(e.value) and "supernet.pt" not in str(e.value)
    src = _finished_run(tmp_path / "src")
    with pytest.raises(ValueError, match="output folder itself"):
        reuse_steps(src, src)


def test_from_run_of_another_network_is_refused_before_copying(monkeypatch, capsys, tmp_path):
    import torch

    from supernet.config import load_config

    src = _finished_run(tmp_path / "src")
    cfg = load_config("configs/proxy/deblur.yaml", ["seed=1"])
    torch.save({"config": cfg.to_dict(), "model": {}}, src / "supernet" / "supernet.pt")
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--from-run", str(src), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert "--from-run" in err and "seed: 1 -> 0" in err
    assert not (tmp_path / "out").exists()
    spec = _reproduce(monkeypatch, "--task", "deblur", "--set", "seed=1", "--from-run", str(src),
                      "--finetune-steps", "7", "--out", str(tmp_path / "out"))
    assert spec.finetune_steps == 7 and (tmp_path / "out" / "supernet" / "supernet.pt").is_file()


def test_finetune_distillation_is_passed_on_and_checked(monkeypatch, capsys):
    spec = _reproduce(monkeypatch, "--task", "deblur")
    assert spec.finetune_distill == 0 and spec.finetune_teacher == "all-t"
    spec = _reproduce(monkeypatch, "--task", "deblur", "--finetune-distill", "0.5", "--finetune-teacher", "supernet")
    assert spec.finetune_distill == 0.5 and spec.finetune_teacher == "supernet"
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--finetune-distill", "-1")
    assert "--finetune-distill" in capsys.readouterr().err
    spec = _reproduce(monkeypatch, "--task", "deblur", "--finetune-feature-distill", "0.02")
    assert spec.finetune_feature_distill == 0.02 and spec.finetune_distill == 0
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--finetune-feature-distill", "-0.1")
    assert "--finetune-feature-distill: expected >= 0, got -0.1" in capsys.readouterr().err


def test_finetune_seed_is_off_by_default_passed_on_and_checked(monkeypatch, capsys):
    assert _reproduce(monkeypatch, "--task", "deblur").finetune_seed is None
    assert _reproduce(monkeypatch, "--task", "deblur", "--finetune-seed", "3").finetune_seed == 3
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--finetune-seed", "-1")
    assert "--finetune-seed: expected >= 0, got -1" in capsys.readouterr().err


def test_named_archs_are_passed_on_and_checked_against_the_recipe(monkeypatch, capsys):
    assert _reproduce(monkeypatch, "--task", "deblur").extra_archs == ()
    spec = _reproduce(monkeypatch, "--task", "deblur", "--arch", "SSTSSTSS", "--arch", "SSTSSSSS")
    assert spec.extra_archs == ("SSTSSTSS", "SSTSSSSS")
    for bad in ("SSTSS", "S-S-S-S-S-S-S-S"):  # too short; block granularity with the wrong block counts
        with pytest.raises(SystemExit):
            _reproduce(monkeypatch, "--task", "deblur", "--arch", bad)
        assert f"--arch {bad}:" in capsys.readouterr().err


def test_lut_calibration_is_passed_on_and_refused_with_from_run(monkeypatch, capsys, tmp_path):
    from supernet.pipeline import _lut_command

    assert _reproduce(monkeypatch, "--task", "deblur").lut_calibrate == "none"
    spec = _reproduce(monkeypatch, "--task", "deblur", "--threads", "1", "--lut-calibrate", "boundary_pairs")
    cmd = _lut_command(spec, "python", tmp_path / "lut.json")
    assert cmd[cmd.index("--calibrate") + 1] == "boundary_pairs" and cmd[cmd.index("--threads") + 1] == "1"
    with pytest.raises(SystemExit):  # the copied LUT would be used as it is: refused, not ignored
        _reproduce(monkeypatch, "--task", "deblur", "--lut-calibrate", "boundary_pairs", "--from-run", str(tmp_path),
                   "--out", str(tmp_path / "out"))
    assert "--lut-calibrate: --from-run reuses" in capsys.readouterr().err
    # a run from a calibrated run keeps the copied LUT's calibration (the pipeline checks the LUT against it)
    import torch

    from supernet.config import load_config

    src = _finished_run(tmp_path / "src")
    torch.save({"config": load_config("configs/proxy/deblur.yaml").to_dict(), "model": {}},
               src / "supernet" / "supernet.pt")
    (src / "lut.json").write_text(json.dumps({"calibration": {"method": "boundary_pairs"}}))
    spec = _reproduce(monkeypatch, "--task", "deblur", "--from-run", str(src), "--out", str(tmp_path / "out2"))
    assert spec.lut_calibrate == "boundary_pairs"
    (src / "lut.json").write_text("not json")
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--from-run", str(src), "--out", str(tmp_path / "out3"))
    assert "lut.json is not a LUT JSON object" in capsys.readouterr().err


def test_rerank_is_off_by_default_passed_on_and_checked(monkeypatch, capsys):
    assert _reproduce(monkeypatch, "--task", "deblur").rerank_steps == 0
    spec = _reproduce(monkeypatch, "--task", "deblur", "--rerank", "100", "--rerank-rungs", "3", "--rerank-eta", "2",
                      "--rerank-slack", "0.05")
    assert (spec.rerank_steps, spec.rerank_rungs, spec.rerank_eta, spec.rerank_slack) == (100, 3, 2, 0.05)
    assert spec.rerank_min_speedup is None
    spec = _reproduce(monkeypatch, "--task", "deblur", "--rerank", "100", "--rerank-min-speedup", "3")
    assert spec.rerank_min_speedup == 3
    for bad, message in ((["--rerank-min-speedup", "3"], "--rerank-min-speedup: expected > 0 with --rerank STEPS, got "
                                                         "3.0 without --rerank"),
                         (["--rerank", "100", "--rerank-min-speedup", "0"], "--rerank-min-speedup: expected > 0")):
        with pytest.raises(SystemExit):
            _reproduce(monkeypatch, "--task", "deblur", *bad)
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _reproduce(monkeypatch, "--task", "deblur", "--rerank", "100", "--rerank-eta", "1")
    assert "--rerank-eta: expected >= 2, got 1" in capsys.readouterr().err
