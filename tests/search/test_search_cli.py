"""search.py end to end on a tiny freshly initialised supernet checkpoint, and its bad-input errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from search_testutil import REPO, make_lut
from search.cli import main
from supernet.arch import Arch

SMALL = ["--pop-size", "4", "--generations", "2", "--offsprings", "2", "--val-limit", "1", "--no-progress"]


def model_config(ckpt):
    """The model section of the checkpoint's config: what build_lut.py --config records in a LUT."""
    from dataclasses import asdict

    from supernet.checkpoint import load_model

    _, cfg = load_model(ckpt)
    return asdict(cfg.model)


def test_search_without_lut_uses_the_penalty(tmp_path, tiny_ckpt):
    out = tmp_path / "run"
    assert main(["--task", "denoise", "--supernet", str(tiny_ckpt), "--out", str(out), *SMALL]) == 0
    front = json.loads((out / "pareto.json").read_text())
    assert front and all(0.0 <= r["transformer_cost"] <= 1.0 for r in front)
    assert Arch.load(out / "chosen.json").granularity == "stage"
    cache = json.loads((out / "cache.json").read_text())
    assert cache["context"]["task"] == "denoise" and len(cache["entries"]) <= 4 + 2


def test_search_with_lut_budget_and_resume(tmp_path, tiny_ckpt):
    lut_path = tmp_path / "lut.json"
    lut = make_lut(model_config(tiny_ckpt), 64, path=lut_path)
    budget = (lut.predict(Arch.parse("TTTTTTTT"), 64) + lut.predict(Arch.parse("SSSSSSSS"), 64)) / 2
    out = tmp_path / "run"
    args = ["--supernet", str(tiny_ckpt), "--lut", str(lut_path), "--budget-ms", f"{budget}", "--out", str(out),
            *SMALL]
    main(args)
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["best_under_budget"]["latency_ms"] <= budget and chosen["cost"] == "latency_ms"
    n_before = len(json.loads((out / "cache.json").read_text())["entries"])
    main([*args, "--resume", "--generations", "3"])          # continue for one more generation
    after = json.loads((out / "cache.json").read_text())["entries"]
    assert n_before < len(after) <= n_before + 2
    assert json.loads((out / "chosen.json").read_text())["generations"] == 3


def test_eval_set_scores_other_crops_of_the_held_out_images(tmp_path, tiny_ckpt):
    out = tmp_path / "whole"
    main(["--supernet", str(tiny_ckpt), "--out", str(out), "--eval-set", "data.val_crop=0", "--eval-set",
          "data.val_crops=1", *SMALL])
    data = json.loads((out / "cache.json").read_text())["context"]["data"]
    assert (data["val_crop"], data["val_crops"]) == (0, 1)  # a resume with other crops cannot reuse these scores
    with pytest.raises(ValueError, match=r"--eval-set 'data.val_count=2': only data.val_crop, data.val_crops"):
        main(["--supernet", str(tiny_ckpt), "--out", str(tmp_path / "bad"), "--eval-set", "data.val_count=2",
              *SMALL])
    assert not (tmp_path / "bad").exists()


def test_bad_inputs_are_named(tmp_path, tiny_ckpt):
    from latency_lut.lut import LUTError

    with pytest.raises(ValueError, match="unknown task 'sharpen'"):
        main(["--task", "sharpen", "--supernet", str(tiny_ckpt), "--out", str(tmp_path / "a"), *SMALL])
    with pytest.raises(ValueError, match="trained for task 'denoise'"):
        main(["--task", "derain", "--supernet", str(tiny_ckpt), "--out", str(tmp_path / "b"), *SMALL])
    other = dict(model_config(tiny_ckpt), dim=24)
    make_lut(other, 64, path=tmp_path / "other.json")
    with pytest.raises(LUTError, match="another model"):
        main(["--supernet", str(tiny_ckpt), "--lut", str(tmp_path / "other.json"), "--out", str(tmp_path / "c"),
              *SMALL])
    make_lut(model_config(tiny_ckpt), 64, path=tmp_path / "lut64.json")
    with pytest.raises(LUTError, match="not 128x128"):
        main(["--supernet", str(tiny_ckpt), "--lut", str(tmp_path / "lut64.json"), "--resolution", "128",
              "--out", str(tmp_path / "d"), *SMALL])
    config = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    config["train"]["out_dir"] = str(tmp_path / "runs")             # no supernet.pt there
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(FileNotFoundError, match="train.py supernet --config"):
        main(["--task", "denoise", "--config", str(tmp_path / "demo.yaml"), "--out", str(tmp_path / "e"), *SMALL])


def test_settings_are_checked_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="--exhaustive"):
        main(["--supernet", "/nonexistent", "--granularity", "block", "--exhaustive", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--budget-ms"):
        main(["--supernet", "/nonexistent", "--budget-ms", "-3", "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="/nonexistent"):
        main(["--supernet", "/nonexistent", "--out", str(tmp_path)])


def test_script_help_runs():
    done = subprocess.run([sys.executable, str(REPO / "search.py"), "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0 and "--budget-ms" in done.stdout and "--exhaustive" in done.stdout
