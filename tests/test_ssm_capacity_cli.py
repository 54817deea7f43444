"""benchmarks/ssm_capacity.py at a tiny size: variants parse, every variant trains from the one teacher, results are
reused on a rerun and refused when the settings changed (the figures themselves come from the benchmark)."""
import json
import sys

import pytest

from benchmark_scripts import load_benchmark
from test_pipeline import TINY


def test_variant_must_only_change_the_ssm_block():
    mod = load_benchmark("ssm_capacity")
    assert mod.parse_variant("baseline=") == ("baseline", [])
    assert mod.parse_variant("mlp=model.ssm.mlp_ratio=1|model.ssm.gate=true") == (
        "mlp", ["model.ssm.mlp_ratio=1", "model.ssm.gate=true"])
    with pytest.raises(SystemExit, match="model.dim=32"):
        mod.parse_variant("wide=model.dim=32")
    with pytest.raises(SystemExit, match="LABEL="):
        mod.parse_variant("no separator")


def _run(monkeypatch, capsys, out, *extra):
    mod = load_benchmark("ssm_capacity")
    argv = ["ssm_capacity.py", "--config", "configs/demo.yaml", "--out", str(out), "--finetune-steps", "2",
            "--resolution", "32", "--threads", "1", "--repeats", "1", "--latency-rounds", "1",
            "--variant", "base=", "--variant", "conv 5=model.ssm.d_conv=5", *extra]
    for kv in TINY:
        argv += ["--set", kv]
    monkeypatch.setattr(sys, "argv", argv)
    mod.main()
    return capsys.readouterr().out


@pytest.mark.slow
def test_tiny_run_trains_every_variant_and_resumes(tmp_path, monkeypatch, capsys):
    out = tmp_path / "cap"
    first = _run(monkeypatch, capsys, out)
    rows = [line for line in first.splitlines() if line.startswith("| ") and not line.startswith("| network")]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == ["all-T", "base", "conv 5"]
    assert "d_conv=5" in rows[2] and rows[0].rstrip().endswith("| 1.00x |")
    summary = json.loads((out / "ssm_capacity.json").read_text())
    assert summary["results"]["conv 5"]["ssm"]["d_conv"] == 5 and summary["results"]["base"]["ssm"]["d_conv"] == 3
    assert set(summary["latency_ms"]) == {"all-t", "base", "conv-5"}
    again = _run(monkeypatch, capsys, out, "--latency-rounds", "0")
    assert again.count("reusing") == 3  # all-T and both variants; nothing trains again
    assert "Not timed" in again and again.rstrip().endswith("| - | - |")
    with pytest.raises(SystemExit, match="finetune-steps"):
        _run(monkeypatch, capsys, out, "--finetune-steps", "3")
