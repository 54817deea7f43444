"""benchmarks/goals.py: the goal is judged on ENS-chosen rows only, at the measured speed-up, from stored records."""
import json
import subprocess
import sys
from pathlib import Path

from supernet.pipeline import format_table

ROOT = Path(__file__).resolve().parents[1]


def record(path: Path, task: str, seed: int, rows: list[tuple[str, str, float, float]],
           diverged: tuple[str, ...] = ()) -> str:
    """A reproduce.py record whose table holds ``(label, arch, psnr, speed-up)`` rows (all-T first, 30 dB)."""
    table_rows = [{"label": label, "arch": arch, "params_M": 1.0, "psnr": psnr, "ssim": 0.9, "predicted_ms": 10.0,
                   "measured_ms": 30.0 / speedup, "speedup_vs_all_T": speedup, "onnx": f"{arch}.onnx"}
                  for label, arch, psnr, speedup in [("all-T", "TTTTTTTT", 30.0, 1.0), *rows]]
    summary = {"task": task, "config": "c.yaml", "resolution": 64, "threads": 1, "finetune_steps": 5,
               "rows": table_rows, "pareto_png": "p.png", "minutes": 1.0,
               "diverged": {label: {"arch": "SSTSSTSS", "message": "loss nan at step 3"} for label in diverged}}
    command = f".venv/bin/python benchmarks/reproduce.py --task {task} --scale proxy --set seed={seed} --out runs/x"
    path.write_text(json.dumps({"name": path.stem, "command": command, "output": "training...\n" +
                                format_table(summary)}))
    return str(path)


def goals(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/goals.py", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def row_of(out: str, name: str) -> list[str]:
    line = next(line for line in out.splitlines() if f"| {name} |" in line)
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_only_an_ens_choice_past_the_speedup_and_within_the_tolerance_meets_the_goal(tmp_path):
    met = record(tmp_path / "run_met.json", "deblur", 2, [("ENS knee", "SSSSSSSS", 28.5, 4.0),
                                                       ("ENS reranked", "SSSTSTSS", 29.95, 3.4)])
    named = record(tmp_path / "run_named.json", "deblur", 1, [("ENS knee", "SSSSSSSS", 29.5, 3.9),
                                                           ("named SSTSSTSS", "SSTSSTSS", 30.1, 3.5)])
    slow = record(tmp_path / "run_slow.json", "denoise", 0, [("ENS knee", "SSSSSSSS", 29.6, 3.2),
                                                          ("ENS best_under_budget", "STTSTSSS", 29.97, 2.9)],
                  diverged=("ENS reranked",))
    proc = goals(met, named, slow)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert row_of(out, "run_met")[3:5] == ["ENS reranked `SSSTSTSS` -0.05 dB at 3.40x", "yes"]
    cells = row_of(out, "run_named")  # the named hybrid is within 0.1 dB, but ENS chose all-S
    assert cells[3:7] == ["ENS knee `SSSSSSSS` -0.50 dB at 3.90x", "no", "none",
                          "named SSTSSTSS `SSTSSTSS` +0.10 dB at 3.50x"]
    cells = row_of(out, "run_slow")  # within 0.1 dB only below 3x; the diverged row counts for nothing
    assert cells[3:6] == ["ENS knee `SSSSSSSS` -0.40 dB at 3.20x", "no",
                          "ENS best_under_budget `STTSTSSS` -0.03 dB at 2.90x"]
    assert "deblur: 1 of 2 records meet it\n    met: seed 2, ENS reranked" in out
    assert "denoise: 0 of 1 records meet it\n    closest at >= 3x: seed 0, ENS knee `SSSSSSSS` -0.40 dB" in out
    assert "fastest within 0.1 dB (not meeting it): seed 0, ENS best_under_budget `STTSTSSS`" in out

    looser = goals(slow, "--speedup", "2.5").stdout  # the thresholds are options, not constants
    assert "denoise: 1 of 1 records meet it" in looser


def test_bad_records_and_thresholds_are_named(tmp_path):
    proc = goals(str(tmp_path / "missing.json"))
    assert proc.returncode != 0 and "missing.json: no such benchmark record" in proc.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "other", "command": "retime.py", "output": "no table"}))
    proc = goals(str(other))
    assert proc.returncode != 0 and "record other: no pipeline table" in proc.stderr
    proc = goals(str(other), "--tolerance", "-1")
    assert proc.returncode != 0 and "--tolerance must be >= 0 dB" in proc.stderr
