"""A run killed with SIGKILL and resumed ends with exactly the weights of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from supernet.checkpoint import load_checkpoint
from supernet.config import load_config
from supernet.training import PathObjective, train_supernet

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "data.patch_size=16", "data.batch_size=2", "data.val_count=1", "data.val_crop=32", "data.repeat=1",
        "data.embedded_images=[astronaut,coffee,chelsea,rocket]", "train.device=cpu", "train.log_every=1",
        "train.checkpoint_every=2", "train.val_archs=[]", "teacher.steps=4", "distill.steps=3",
        "supernet.steps=24", "supernet.sandwich=true", "supernet.distill_weight=0.3", "train.ema_decay=0.9",
        "teacher.warmup=1", "distill.warmup=1", "supernet.warmup=2"]


def _cmd(out: Path, *extra: str) -> list[str]:
    sets = [a for o in TINY for a in ("--set", o)]
    return [sys.executable, str(ROOT / "train.py"), "supernet", "--config", str(ROOT / "configs" / "demo.yaml"),
            *sets, "--out", str(out), *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}



@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    # the uninterrupted reference runs in this process (one thread, like the subprocesses)
    train_supernet(load_config(ROOT / "configs" / "demo.yaml", TINY), ref)

    proc = subprocess.Popen(_cmd(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.pt"
    deadline, killed_at = time.time() + 240, None
    try:
        while time.time() < deadline and proc.poll() is None:
            if last.exists():
                ckpt = torch.load(last, map_location="cpu", weights_only=False)
                if ckpt["phase"] == "supernet" and not ckpt["phase_complete"] and ckpt["step"] >= 2:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_at = ckpt["step"]
                    break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_at is not None, "the run ended before it could be killed mid-phase"
    assert not (killed / "supernet.pt").exists()

    done = subprocess.run(_cmd(killed, "--resume"), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[supernet] resuming at step" in (killed / "train.log").read_text()

    a = load_checkpoint(ref / "supernet.pt")
    b = load_checkpoint(killed / "supernet.pt")
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        diff = [k for k in a[key] if not torch.equal(a[key][k], b[key][k])]
        assert not diff, f"{key} tensors differ after resume: {diff[:5]}"
    assert a["metrics"] == b["metrics"]


def test_resume_of_a_finished_run_is_a_no_op_and_fresh_start_refuses_to_overwrite(tmp_path):
    cfg = load_config(ROOT / "configs" / "demo.yaml", TINY + ["supernet.steps=2", "supernet.distill_weight=0"])
    train_supernet(cfg, tmp_path / "run")
    before = (tmp_path / "run" / "supernet.pt").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        train_supernet(cfg, tmp_path / "run")
    train_supernet(cfg, tmp_path / "run", resume=True)
    a, b = load_checkpoint(tmp_path / "run" / "supernet.pt"), torch.load(__import__("io").BytesIO(before),
                                                                          weights_only=False)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


class Crash(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way up can swallow it."""


def test_crash_mid_phase_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    cfg = load_config(ROOT / "configs" / "demo.yaml", TINY + ["supernet.steps=7"])
    train_supernet(cfg, tmp_path / "ref")
    original, calls = PathObjective.forward, {"n": 0}

    def crashing(self, *args):
        calls["n"] += 1
        if calls["n"] == 4 + 6:  # teacher: 4 calls; then supernet step 6 (checkpoint at step 4)
            raise Crash()
        return original(self, *args)

    monkeypatch.setattr(PathObjective, "forward", crashing)
    with pytest.raises(Crash):
        train_supernet(cfg, tmp_path / "run")
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 4
    monkeypatch.setattr(PathObjective, "forward", original)
    train_supernet(cfg, tmp_path / "run", resume=True)
    a, b = load_checkpoint(tmp_path / "ref" / "supernet.pt"), load_checkpoint(tmp_path / "run" / "supernet.pt")
    for key in ("model", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
