"""benchmarks/rerank_agreement.py on a run folder written by hand: rank agreements of the supernet's score and of
each rung with the table's full fine-tunings, and a folder without a re-ranking refused by name."""
import json
import sys

import pytest

from benchmark_scripts import load_benchmark


def write_run(run):
    """Rung 0 orders the 4 archs as the table does; the supernet's score orders them in reverse."""
    sup = {"SSTSSTSS": 26.0, "SSSTSSSS": 26.1, "STSSSSSS": 26.2, "SSSSSSSS": 26.3}
    rung0 = {"SSTSSTSS": 27.0, "SSSTSSSS": 26.8, "STSSSSSS": 26.5, "SSSSSSSS": 26.4}
    rung1 = {"SSTSSTSS": 27.6, "SSSTSSSS": 27.2}
    rungs = [{"steps": s, "results": [{"arch": a, "psnr": p, "supernet_psnr": sup[a], "latency_ms": 100.0}
                                      for a, p in r.items()]} for s, r in ((100, rung0), (300, rung1))]
    (run / "search" / "rerank").mkdir(parents=True)
    (run / "search" / "rerank" / "reranked.json").write_text(json.dumps(
        {"arch": "SSTSSTSS", "candidates": 4, "budget_ms": 100.0, "slack": 0.1, "rungs": rungs}))
    table = {"SSTSSTSS": 28.2, "SSSTSSSS": 27.7, "STSSSSSS": 27.0, "SSSSSSSS": 26.0, "TTTTTTTT": 28.3}
    (run / "summary.json").write_text(json.dumps({"finetune_steps": 1200,
                                                  "rows": [{"arch": a, "psnr": p} for a, p in table.items()]}))


def run_main(monkeypatch, *argv):
    mod = load_benchmark("rerank_agreement")
    monkeypatch.setattr(sys, "argv", ["rerank_agreement.py", *map(str, argv)])
    return mod.main()


def test_agreements_and_table(tmp_path, monkeypatch, capsys):
    write_run(tmp_path)
    assert run_main(monkeypatch, tmp_path) == 0
    out = capsys.readouterr().out
    assert "supernet score vs 100-step fine-tuning: Kendall tau -1.000, Spearman -1.000 (n=4)" in out
    assert "100-step vs 300-step fine-tuning: n/a (n=2)" in out
    assert "100-step fine-tuning vs the table's 1200-step one: Kendall tau +1.000" in out
    assert "supernet score vs the table's 1200-step fine-tuning: Kendall tau -1.000" in out
    assert "| `SSTSSTSS` | 26.00 | 27.00 | 27.60 | 28.20 |" in out
    assert "| `STSSSSSS` | 26.20 | 26.50 |  | 27.00 |" in out
    assert "TTTTTTTT" not in out.split("re-ranked choice")[1]  # all-T: no rung trained it


def test_a_run_without_a_reranking_is_named(tmp_path, monkeypatch, capsys):
    assert run_main(monkeypatch, tmp_path) == 2
    assert str(tmp_path / "search" / "rerank" / "reranked.json") + ": missing" in capsys.readouterr().err
