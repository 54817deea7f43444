"""benchmarks/per_image_psnr.sh: usage and unfinished runs are clear errors (the evaluation is train.py eval's)."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "per_image_psnr.sh"


def _run(*args):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True)


def test_no_run_prints_usage():
    r = _run()
    assert r.returncode == 2 and "usage" in r.stderr and "RUN_DIR" in r.stderr
    assert _run("--tile", "128").returncode == 2


def test_unfinished_subnet_is_named(tmp_path):
    (tmp_path / "subnet-SSSS").mkdir()
    r = _run(str(tmp_path))
    assert r.returncode == 1 and "subnet-SSSS" in r.stderr and "no subnet.pt" in r.stderr


def test_held_out_photos_are_copied_before_the_runs_are_read(tmp_path):
    """--held-out first copies the held-out photos (failing loudly if it cannot), then reads the runs as usual."""
    (tmp_path / "subnet-SSSS").mkdir()
    r = _run("--held-out", str(tmp_path))
    assert r.returncode == 1 and "no subnet.pt" in r.stderr, r.stderr
    assert _run("--held-out").returncode == 2


def test_failed_evaluation_shows_its_error(tmp_path):
    (tmp_path / "subnet-SS").mkdir()
    (tmp_path / "subnet-SS" / "subnet.pt").write_text("not a checkpoint")
    r = _run(str(tmp_path))
    assert r.returncode == 1 and "train.py eval failed" in r.stderr and "subnet.pt" in r.stderr, r.stderr
