"""benchmarks/ranking.py's validation-set override (the rankings themselves are measured by the benchmark; the
override itself, supernet.config.with_validation_set, is tested in tests/supernet/test_config.py)."""
import sys
from pathlib import Path

import pytest

from benchmark_scripts import load_benchmark
from supernet.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _ranking_module():
    return load_benchmark("ranking")


def test_eval_set_refuses_keys_that_move_the_split(monkeypatch, capsys):
    mod = _ranking_module()
    monkeypatch.setattr(sys, "argv", ["ranking.py", "--supernet", "x.pt", "--config", "y.yaml",
                                      "--eval-set", "data.val_count=6"])
    with pytest.raises(SystemExit):
        mod.main()
    err = capsys.readouterr().err
    assert "data.val_count=6" in err and "data.val_crop" in err


def test_eval_set_with_a_bad_value_names_the_option(monkeypatch, capsys, tmp_path):
    mod = _ranking_module()
    cfg = load_config(ROOT / "configs" / "proxy" / "denoise.yaml")
    monkeypatch.setattr("supernet.checkpoint.load_model", lambda path: (None, cfg))
    monkeypatch.setattr(sys, "argv", ["ranking.py", "--supernet", "x.pt", "--config", "y.yaml", "--out",
                                      str(tmp_path / "out"), "--eval-set", "data.val_crops=2"])
    with pytest.raises(SystemExit):  # the config scores whole images (val_crop: 0), which take one crop
        mod.main()
    err = capsys.readouterr().err
    assert "--eval-set data.val_crops=2" in err and "val_crops" in err
    assert not (tmp_path / "out").exists()  # nothing written on bad input


def test_without_config_the_trainings_use_the_supernets_own(tmp_path):
    """No --config: train.py subnet falls back to the checkpoint's config, --set overrides of the supernet included."""
    mod = _ranking_module()
    own = mod.subnet_command("SSSSTSSS", tmp_path / "s.pt", None, 400, tmp_path / "sub", 1)
    assert "--config" not in own and own[own.index("--set") + 1] == "seed=1" and "--resume" not in own
    named = mod.subnet_command("SSSSTSSS", tmp_path / "s.pt", "configs/demo.yaml", 400, tmp_path / "sub", 0)
    assert named[named.index("--config") + 1] == "configs/demo.yaml"
    (tmp_path / "sub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "sub" / "checkpoints" / "last.pt").write_bytes(b"")
    assert mod.subnet_command("SSSSTSSS", tmp_path / "s.pt", None, 400, tmp_path / "sub", 0)[-1] == "--resume"
