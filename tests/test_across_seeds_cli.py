"""benchmarks/across_seeds.py: runs compared from their stored records; diverged archs left out of the mean."""
import json
import subprocess
import sys
from pathlib import Path

from supernet.pipeline import format_table

ROOT = Path(__file__).resolve().parents[1]


def reproduce_record(path: Path, seed: int, out: str, psnrs: dict[str, float], diverged: tuple[str, ...] = (),
                     extra: str = "") -> str:
    rows = [{"label": "all-T" if a == "TTTTTTTT" else f"named {a}", "arch": a, "params_M": 1.0, "psnr": p,
             "ssim": 0.9, "predicted_ms": 10.0, "measured_ms": 10.0 / (3 if "T" not in a else 1),
             "speedup_vs_all_T": 3.0 if "T" not in a else 1.0, "onnx": f"{a}.onnx"} for a, p in psnrs.items()]
    rows += [{**r, "label": "ENS knee"} for r in rows if r["arch"] == "SSSSSSSS"]  # an arch on two rows
    summary = {"task": "deblur", "config": "c.yaml", "resolution": 64, "threads": 2, "finetune_steps": 5,
               "rows": rows, "pareto_png": "p.png", "minutes": 1.0,
               "diverged": {f"named {a}": {"arch": a, "message": "loss nan is not finite at step 3"} for a in diverged}}
    command = f".venv/bin/python benchmarks/reproduce.py --task deblur --set seed={seed} --out {out}{extra}"
    output = "training...\n" + format_table(summary)
    path.write_text(json.dumps({"name": path.stem, "command": command, "output": output}))
    return str(path)


def across(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/across_seeds.py", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_means_over_the_runs_that_finished_and_retimed_speedups(tmp_path):
    a = reproduce_record(tmp_path / "a.json", 0, "runs/a", {"TTTTTTTT": 30.0, "SSSSSSSS": 29.0})
    b = reproduce_record(tmp_path / "b.json", 1, "runs/b/", {"TTTTTTTT": 31.0, "SSSSSSSS": 30.5, "SSTSSSSS": 30.9})
    c = reproduce_record(tmp_path / "c.json", 2, "runs/c", {"TTTTTTTT": 30.0}, diverged=("SSSSSSSS",))
    retime = tmp_path / "r.json"
    retime.write_text(json.dumps({"name": "r", "command": "retime.py", "output": "\n".join([
        "runs/b: 10 round-robin rounds x 7 runs at 64x64, 1 threads, onnxruntime (median of the pooled runs)", "",
        "| | arch | median ms | speed-up vs all-T | per-round speed-up | the run's own measured speed-up |",
        "|---|---|---|---|---|---|",
        "| all-T | `TTTTTTTT` | 30.0 | 1.00x | 1.00x (1.00..1.00) | 1.00x |",
        "| all-S | `SSSSSSSS` | 9.0 | 3.33x | 3.30x (3.10..3.50) | 3.00x |"])}))
    r = across(a, b, c, "--retime", str(retime))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "[1] b (seed 1; runs/b; retimed at 1 thread)" in out and "[0] a (seed 0; runs/a)" in out
    assert "| `SSSSSSSS` | -1.00 | -0.50 | diverged | -0.75 | -1.00..-0.50 | 2 |" in out
    assert "| `SSTSSSSS` |  | -0.10 |  | -0.10 | -0.10..-0.10 | 1 |" in out
    assert out.count("| `SSSSSSSS` | -1.00") == 1  # one line per arch, however many rows name it
    assert "| `SSSSSSSS` |  | 3.33x |  | 3.33x |" in out  # the retimed table: only run b was retimed


def test_a_record_that_is_not_a_reproduce_run_is_named(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "other", "command": "x", "output": "no table"}))
    r = across(str(other))
    assert r.returncode != 0 and "record" in r.stderr and "no pipeline table" in r.stderr
    r = across("no_such_record_name")
    assert r.returncode != 0 and "no_such_record_name.json: no such benchmark record" in r.stderr


def test_absolute_psnr_spread_and_the_finetuning_seed(tmp_path):
    a = reproduce_record(tmp_path / "a.json", 0, "runs/a", {"TTTTTTTT": 30.0, "SSSSSSSS": 29.0})
    b = reproduce_record(tmp_path / "b.json", 0, "runs/b", {"TTTTTTTT": 30.4, "SSSSSSSS": 29.2},
                         extra=" --from-run runs/a --finetune-seed 2")
    c = reproduce_record(tmp_path / "c.json", 0, "runs/c", {"TTTTTTTT": 30.2}, diverged=("SSSSSSSS",))
    r = across(a, b, c)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "[1] b (seed 0, fine-tuning seed 2; runs/b)" in out and "[0] a (seed 0; runs/a)" in out
    assert "| `TTTTTTTT` | 30.00 | 30.40 | 30.20 | 30.20 | 30.00..30.40 | 0.20 | 3 |" in out
    assert "| `SSSSSSSS` | 29.00 | 29.20 | diverged | 29.10 | 29.00..29.20 | 0.14 | 2 |" in out
    one = across(a)
    assert "| `TTTTTTTT` | 30.00 | 30.00 | 30.00..30.00 |  | 1 |" in one.stdout  # no sd from one run
