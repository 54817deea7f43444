"""benchmarks/retime.py on several runs at once: one table per run, timed in the same rounds; mismatches refused."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from supernet.export import export_onnx

ROOT = Path(__file__).resolve().parents[1]


def fake_run(folder: Path, size: int, threads: int = 1) -> Path:
    """A finished run as retime.py reads it: summary.json rows pointing at ONNX files (two 1 x 1 convs)."""
    rows = []
    for label, arch, width in (("all-T", "TT", 8), ("all-S", "SS", 4)):
        net = torch.nn.Sequential(torch.nn.Conv2d(3, width, 1), torch.nn.Conv2d(width, 3, 1))
        path = export_onnx(net, torch.randn(1, 3, size, size), folder / "onnx" / f"{arch}.onnx")
        rows.append({"label": label, "arch": arch, "onnx": str(path),
                     "speedup_vs_all_T": 1.0 if arch == "TT" else 2.0})
    (folder / "summary.json").write_text(json.dumps({"threads": threads, "rows": rows}))
    return folder


def retime(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/retime.py", "--rounds", "1", "--repeats", "1", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def tables(stdout: str) -> list[list[list[str]]]:
    out: list[list[list[str]]] = []
    for line in stdout.splitlines():
        if line.startswith("| |"):
            out.append([])
        elif line.startswith("| ") and "`" in line:
            out[-1].append([c.strip() for c in line.strip("|").split("|")])
    return out


def test_two_runs_are_timed_together_and_each_gets_its_table(tmp_path):
    a, b = fake_run(tmp_path / "a", 16), fake_run(tmp_path / "b", 16)
    proc = retime("--run", str(a), "--run", str(b))
    assert proc.returncode == 0, proc.stderr
    rounds = [line for line in proc.stdout.splitlines() if line.startswith("round ")]
    assert len(rounds) == 1 and all("[0] TT" in r and "[1] SS" in r for r in rounds)
    got = tables(proc.stdout)
    assert [[row[0] for row in t] for t in got] == [["all-T", "all-S"]] * 2
    assert all(len(row) == 7 for t in got for row in t)  # the extra column: speed-up over run [0]'s all-T
    assert got[0][0][3] == "1.00x" and got[0][0][6] == "1.00x" and got[1][0][3] == "1.00x"
    assert f"[1] {b}:" in proc.stdout


def test_one_run_keeps_the_single_table(tmp_path):
    proc = retime("--run", str(fake_run(tmp_path / "a", 16)))
    assert proc.returncode == 0, proc.stderr
    got = tables(proc.stdout)
    assert len(got) == 1 and all(len(row) == 6 for row in got[0]) and "[0]" not in proc.stdout


def test_runs_at_different_resolutions_or_threads_are_refused(tmp_path):
    a, b = fake_run(tmp_path / "a", 16), fake_run(tmp_path / "b", 24)
    proc = retime("--run", str(a), "--run", str(b))
    assert proc.returncode != 0 and "differ" in proc.stderr and str(b / "onnx" / "SS.onnx") in proc.stderr
    c = fake_run(tmp_path / "c", 16, threads=2)
    proc = retime("--run", str(a), "--run", str(c))
    assert proc.returncode != 0 and "--threads" in proc.stderr
