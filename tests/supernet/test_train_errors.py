"""Bad situations: a loss that turns NaN, a checkpoint from another config, bad command lines."""
import hashlib
from pathlib import Path

import pytest
import torch

from supernet.checkpoint import CheckpointMismatch, load_checkpoint
from supernet.config import load_config
from supernet.training import PathObjective, TrainingDiverged, train_supernet
from supernet.training import cli
from supernet.training.cli import DIVERGED_EXIT, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "data.patch_size=16", "data.batch_size=2", "data.val_count=1", "data.val_crop=32", "data.repeat=1",
        "data.embedded_images=[astronaut,coffee,chelsea,rocket]", "train.device=cpu", "train.log_every=1",
        "train.checkpoint_every=2", "train.val_archs=[]", "teacher.steps=6", "distill.enabled=false",
        "supernet.enabled=false"]



def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = load_config(None, TINY)
    calls = {"n": 0}
    seen = {}
    original = PathObjective.forward

    def poisoned(self, inp, target, archs):
        calls["n"] += 1
        loss, logs, out = original(self, inp, target, archs)
        if calls["n"] == 5:  # step 5: after the checkpoint of step 4
            last = tmp_path / "run" / "checkpoints" / "last.pt"
            seen["digest"] = digest(last)
            loss = loss * float("nan")
        return loss, logs, out

    monkeypatch.setattr(PathObjective, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"not finite at step 5.*phase teacher, step 4"):
        train_supernet(cfg, tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert digest(last) == seen["digest"]
    ckpt = load_checkpoint(last)
    assert ckpt["step"] == 4 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert not (tmp_path / "run" / "supernet.pt").exists()
    assert "not finite at step 5" in (tmp_path / "run" / "train.log").read_text()

    monkeypatch.setattr(PathObjective, "forward", original)  # the cause is fixed: resume finishes the run
    train_supernet(cfg, tmp_path / "run", resume=True)
    assert load_checkpoint(tmp_path / "run" / "supernet.pt")["phases_done"][0] == "teacher"


def test_a_divergence_before_any_checkpoint_says_so(tmp_path, monkeypatch):
    original = PathObjective.forward

    def poisoned(self, inp, target, archs):
        loss, logs, out = original(self, inp, target, archs)
        return loss * float("nan"), logs, out

    monkeypatch.setattr(PathObjective, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"not finite at step 1: training stopped; no checkpoint was written "
                                               r"yet\. Lower the phase's lr"):
        train_supernet(load_config(None, TINY), tmp_path / "run")


def test_resume_with_another_config_lists_the_differing_keys(tmp_path):
    train_supernet(load_config(None, TINY + ["teacher.steps=2"]), tmp_path / "run")
    before = digest(tmp_path / "run" / "checkpoints" / "last.pt")
    other = load_config(None, TINY + ["teacher.steps=2", "teacher.lr=0.5", "model.dim=16",
                                      "train.checkpoint_every=7"])
    with pytest.raises(CheckpointMismatch) as e:
        train_supernet(other, tmp_path / "run", resume=True)
    msg = str(e.value)
    assert "teacher.lr" in msg and "model.dim" in msg
    assert "checkpoint_every" not in msg  # cadence keys may change on resume
    assert digest(tmp_path / "run" / "checkpoints" / "last.pt") == before


def test_cli_reports_config_errors_without_traceback(tmp_path, capsys):
    rc = main(["supernet", "--config", str(ROOT / "configs" / "demo.yaml"), "--set", "train.lrr=1",
               "--out", str(tmp_path / "x")])
    assert rc == 2 and "train.lrr" in capsys.readouterr().err
    rc = main(["supernet", "--config", str(tmp_path / "missing.yaml")])
    assert rc == 2 and "missing.yaml" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("error, status", [(TrainingDiverged("loss nan is not finite"), DIVERGED_EXIT),
                                           (RuntimeError("out of memory"), 1)])
def test_cli_exit_status_tells_a_diverged_training_from_other_failures(monkeypatch, capsys, error, status):
    def fail(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "subnet", fail)
    assert main(["subnet", "--from", "x.pt", "--arch", "SSSSSSSS"]) == status
    assert str(error) in capsys.readouterr().err
