"""The demo pipeline end to end at a tiny size: every artefact is produced and parses."""
import csv
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from supernet import Arch
from supernet.pipeline import (DIVERGED_MARKER, PipelineSpec, _finetune, _finetune_sets, format_table, measure_latency,
                               parse_table, run_pipeline, time_rounds)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "teacher.steps=3", "distill.steps=2", "supernet.steps=3", "teacher.warmup=0", "distill.warmup=0",
        "supernet.warmup=0", "data.patch_size=32", "data.batch_size=2", "data.val_count=1", "data.val_crop=32",
        "data.val_crops=1", "train.checkpoint_every=2", "train.log_every=1"]


@pytest.mark.slow
def test_tiny_pipeline_produces_every_artefact(tmp_path, capsys):
    spec = PipelineSpec(config="configs/demo.yaml", out=str(tmp_path / "demo"), resolution=32, threads=1,
                        finetune_steps=2, lut_repeats=2, lut_rounds=1, lut_fidelity_archs=3, latency_repeats=2,
                        latency_rounds=2,
                        search_args=["--pop-size", "8", "--generations", "2", "--offsprings", "4", "--screen", "0",
                                     "--no-progress"],
                        overrides=TINY, extra_archs=["STSTSTST"], budget_fraction=1.0, rerank_steps=1,
                        rerank_rungs=1, rerank_slack=0.0, rerank_max_candidates=2, rerank_min_speedup=0.5)
    summary = run_pipeline(spec)
    out = tmp_path / "demo"
    assert (out / "supernet" / "supernet.pt").is_file()
    lut = json.loads((out / "lut.json").read_text())
    assert lut["entries"] and lut["fidelity"]["n"] >= 3
    pareto = json.loads((out / "search" / "pareto.json").read_text())
    assert pareto and all(Arch.parse(p["arch"]) for p in pareto)
    assert (out / "search" / "pareto.png").stat().st_size > 0
    with open(out / "search" / "all_evaluated.csv") as f:
        assert len(list(csv.DictReader(f))) >= len(pareto)
    labels = [r["label"] for r in summary["rows"]]
    assert labels[:2] == ["all-T", "all-S"] and any(lab.startswith("ENS") for lab in labels)
    assert labels[-1] == "named STSTSTST" and (out / "subnet-STSTSTST" / "subnet.pt").is_file()
    # the re-ranking's choice (search/rerank/reranked.json) is fine-tuned like the others, after the search's rows
    reranked = json.loads((out / "search" / "rerank" / "reranked.json").read_text())
    assert labels[-2] == "ENS reranked" and summary["rows"][-2]["arch"] == reranked["arch"]
    # the measured floor timed every candidate and all-T on this host (a 0.5x floor: all pass; the cap then applies)
    measured = json.loads((out / "search" / "rerank" / "measured.json").read_text())
    assert measured["all_t"] == "TTTTTTTT" and measured["resolution"] == 32 and measured["threads"] == 1
    assert all(ms > 0 for ms in measured["ms"].values()) and reranked["candidates"] == 2
    assert reranked["speedup"] == measured["speedup"][reranked["arch"]]
    assert reranked["feasible"] and (out / "subnet-TTTTTTTT" / "subnet.pt").stat().st_mtime < (
        out / "search" / "rerank" / "reranked.json").stat().st_mtime  # all-T, a possible teacher, trains first
    for r in summary["rows"]:
        assert r["measured_ms"] > 0 and r["predicted_ms"] > 0 and 0 < r["ssim"] <= 1
        assert (out / "onnx" / f"{r['arch']}.onnx").is_file()
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]
    assert "speed-up" in format_table(summary)
    assert 0 < summary["input"]["ssim"] <= 1 and summary["input"]["n"] == 1
    assert "| degraded input |" in format_table(summary)
    parts = summary["lut_breakdown"]
    assert parts["fixed_ms"] > 0 and parts["transformer_blocks_ms"] > 0 and parts["ssm_blocks_ms"] > 0
    assert "Where the time goes" in format_table(summary)
    # a rerun reuses every finished step: no training, LUT or search command runs again
    log_before = (out / "pipeline.log").read_text()
    run_pipeline(spec)
    assert (out / "pipeline.log").read_text() == log_before
    # ... but not a fine-tuning drawn with another seed than the rerun asks for: the table would misname it
    with pytest.raises(ValueError, match="subnet-TTTTTTTT/subnet.pt: fine-tuned with seed 0, but this run "
                                         "fine-tunes with seed 5"):
        run_pipeline(replace(spec, finetune_seed=5))
    assert (out / "pipeline.log").read_text() == log_before and (out / "subnet-TTTTTTTT" / "subnet.pt").is_file()
    # ... nor a re-ranking with other settings: its choice would be reported as the new settings'
    with pytest.raises(ValueError, match=r"rerank/reranked.json: re-ranked with other settings than this run's "
                                         r"\(steps 1 there, 2 now\)"):
        run_pipeline(replace(spec, rerank_steps=2))
    assert (out / "pipeline.log").read_text() == log_before
    # benchmarks/retime.py times the run's ONNX files again and prints one row per arch
    proc = subprocess.run([sys.executable, "benchmarks/retime.py", "--run", str(out), "--rounds", "2", "--repeats",
                           "1", "--threads", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "`" in line]
    assert [line.split("|")[1].strip() for line in table] == labels
    assert "1.00x (1.00..1.00)" in table[0]


def test_retime_refuses_a_folder_without_a_run(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/retime.py", "--run", str(tmp_path)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode != 0 and str(tmp_path / "summary.json") in proc.stderr


def test_measure_latency_interleaves_rounds_and_pools_runs(tmp_path, monkeypatch):
    """Every round times every model once, in the same order, and the median is over all pooled runs."""
    import torch

    import latency_lut.backends.local as local
    from latency_lut.runners import RunResult
    from latency_lut.stats import summarize

    calls = []
    times = {"a.onnx": [[1.0, 2.0], [9.0, 3.0], [4.0, 5.0]], "b.onnx": [[7.0, 7.0], [1.0, 1.0], [7.0, 7.0]]}

    class FakeBackend:
        def measure(self, path, shapes, warmup, repeats, threads):
            name = Path(path).name
            ms = times[name][sum(c == name for c in calls)]
            calls.append(name)
            return RunResult(summarize(ms, warmup), tuple(ms), "fake")

        def close(self):
            calls.append("closed")

    monkeypatch.setattr(local, "LocalBackend", FakeBackend)
    models = {"a": torch.nn.Conv2d(3, 3, 1), "b": torch.nn.Conv2d(3, 3, 1)}
    got = measure_latency(models, 16, threads=1, repeats=2, out_dir=tmp_path, rounds=3)
    assert calls == ["a.onnx", "b.onnx"] * 3 + ["closed"]
    assert got == {"a": 3.5, "b": 7.0}
    with pytest.raises(ValueError, match="rounds"):
        measure_latency(models, 16, threads=1, repeats=2, out_dir=tmp_path, rounds=0)
    # the shared timer keeps each round's runs apart and reports every round's medians as it goes
    calls.clear()
    seen = []
    runs = time_rounds({"a": tmp_path / "a.onnx", "b": tmp_path / "b.onnx"}, (1, 3, 16, 16), threads=1, repeats=2,
                       rounds=3, on_round=lambda i, med: seen.append((i, med)))
    assert runs == {"a": times["a.onnx"], "b": times["b.onnx"]} and calls == ["a.onnx", "b.onnx"] * 3 + ["closed"]
    assert seen == [(0, {"a": 1.5, "b": 7.0}), (1, {"a": 6.0, "b": 1.0}), (2, {"a": 4.5, "b": 7.0})]


def _summary(all_t_psnr: float, input_psnr: float) -> dict:
    row = {"label": "all-T", "arch": "TT", "params_M": 1.0, "psnr": all_t_psnr, "ssim": 0.9, "predicted_ms": 2.0,
           "measured_ms": 2.0, "speedup_vs_all_T": 1.0, "onnx": "TT.onnx"}
    return {"task": "deblur", "config": "c.yaml", "resolution": 64, "threads": 1, "finetune_steps": 1, "rows": [row],
            "input": {"psnr": input_psnr, "ssim": 0.8, "n": 6}, "pareto_png": "p.png", "minutes": 0.1}


def test_table_warns_when_all_t_barely_beats_its_input():
    low = format_table(_summary(28.30, 28.16))
    assert "| degraded input |" in low and "-0.14" in low and "WARNING: all-T restores only +0.14 dB" in low
    assert "WARNING" not in format_table(_summary(30.9, 20.7))
    del_input = _summary(30.9, 20.7)
    del del_input["input"]  # a summary written before the row existed still renders
    assert "degraded input" not in format_table(del_input)


def test_table_names_the_finetuning_distillation():
    plain = format_table(_summary(30.9, 20.7))
    assert "fine-tuned 1 steps from the supernet\n" in plain and "distils" not in plain
    kd = _summary(30.9, 20.7)
    kd["finetune_distill"] = {"weight": 0.5, "teacher": "all-t"}
    assert "every arch but all-T also distils the fine-tuned all-T's output (0.5 x L1)" in format_table(kd)
    kd["finetune_distill"] = {"weight": 1.0, "teacher": "supernet"}
    assert "the supernet's all-T path's output (1 x L1)" in format_table(kd)
    kd["finetune_distill"] = {"weight": 3.0, "teacher": "all-t", "feature_weight": 0.02}
    assert ("every arch but all-T also distils the fine-tuned all-T's output (3 x L1) and stage features "
            "(0.02 x distance)") in format_table(kd)
    kd["finetune_distill"] = {"weight": 0.0, "teacher": "all-t", "feature_weight": 0.5}
    assert "also distils the fine-tuned all-T's stage features (0.5 x distance)\n" in format_table(kd)


def test_a_finetune_seed_reaches_every_finetuning_and_the_table(tmp_path):
    all_t, hybrid = Arch.parse("TTTTTTTT"), Arch.parse("SSSSTSSS")
    plain = PipelineSpec()
    assert _finetune_sets(plain, all_t, all_t, tmp_path) == [] == _finetune_sets(plain, hybrid, all_t, tmp_path)
    seeded = PipelineSpec(finetune_seed=4)
    assert _finetune_sets(seeded, all_t, all_t, tmp_path) == ["--set", "seed=4"]
    kd = PipelineSpec(finetune_seed=4, finetune_distill=3.0)
    assert _finetune_sets(kd, all_t, all_t, tmp_path)[:4] == ["--set", "seed=4", "--set", "subnet.distill_weight=0"]
    sets = _finetune_sets(kd, hybrid, all_t, tmp_path)
    assert sets[:4] == ["--set", "seed=4", "--set", "subnet.distill_weight=3"] and sets.count("seed=4") == 1
    with pytest.raises(ValueError, match="finetune_seed must be >= 0 or None, got -1"):
        PipelineSpec(finetune_seed=-1)
    summary = _summary(30.9, 20.7)
    assert "seed" not in format_table(summary).splitlines()[0]
    summary["finetune_seed"] = 4
    assert "steps from the supernet (batches drawn with seed 4, not the supernet's)" in format_table(summary)


def _exits(status: int, line: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; print({line!r}); sys.exit({status})"]


def test_a_diverged_finetuning_is_recorded_and_left_out_unless_the_arch_is_required(tmp_path, capsys):
    from supernet.training.cli import DIVERGED_EXIT

    log, sub = tmp_path / "pipeline.log", tmp_path / "subnet-SSSSSSSS"
    log.write_text("[subnet] an earlier step's loss nan is not finite\n")  # only this command's lines count
    msg = _finetune(_exits(DIVERGED_EXIT, "[subnet] loss nan is not finite at step 334: training stopped"), sub,
                    log, required=False)
    assert msg == "[subnet] loss nan is not finite at step 334: training stopped"
    assert (sub / DIVERGED_MARKER).read_text().strip() == msg and "left out of the table" in capsys.readouterr().out
    assert _finetune(_exits(0, "done"), tmp_path / "ok", log, required=False) is None
    with pytest.raises(SystemExit, match="exit 1"):  # any other failure stops the pipeline
        _finetune(_exits(1, "error: broken"), tmp_path / "broken", log, required=False)
    with pytest.raises(SystemExit, match=f"exit {DIVERGED_EXIT}"):  # all-T, the baseline, must train
        _finetune(_exits(DIVERGED_EXIT, "nan"), tmp_path / "all-t", log, required=True)
    assert not (tmp_path / "broken" / DIVERGED_MARKER).exists()


def test_the_diverged_message_drops_the_progress_bar_and_error_prefix(tmp_path):
    from supernet.training.cli import DIVERGED_EXIT

    # tqdm leaves its bar without a newline; train.py's stderr message then follows on the same line
    out = ("subnet:  28%|##| 333/1200 [00:22<02:27, loss=0.0084]\rsubnet:  28%|##| 334/1200 [00:22<02:27, loss=nan]"
           "error: [subnet] loss nan is not finite at step 334: training stopped")
    cmd = [sys.executable, "-c", f"import sys; sys.stdout.write({out!r} + '\\n'); sys.exit({DIVERGED_EXIT})"]
    msg = _finetune(cmd, tmp_path / "subnet-SSSSSSSS", tmp_path / "pipeline.log", required=False)
    assert msg == "[subnet] loss nan is not finite at step 334: training stopped"


def test_table_lists_diverged_archs_and_names_the_chosen_onnx():
    row = {"params_M": 1.0, "ssim": 0.9, "predicted_ms": 10.0, "measured_ms": 10.0, "speedup_vs_all_T": 1.0}
    summary = {"task": "deblur", "config": "c.yaml", "resolution": 64, "threads": 1, "finetune_steps": 5,
               "rows": [{**row, "label": "all-T", "arch": "TTTTTTTT", "psnr": 30.0, "onnx": "t.onnx"},
                        {**row, "label": "ENS knee", "arch": "SSTSSSSS", "psnr": 29.9, "onnx": "knee.onnx"},
                        {**row, "label": "named SSTSSTSS", "arch": "SSTSSTSS", "psnr": 29.95, "onnx": "n.onnx"}],
               "diverged": {"all-S": {"arch": "SSSSSSSS", "message": "loss nan is not finite at step 334"}},
               "pareto_png": "p.png", "minutes": 1.0}
    table = format_table(summary)
    assert "| all-S | `SSSSSSSS` | fine-tuning diverged, left out: loss nan is not finite at step 334 |" in table
    assert "ONNX of the chosen arch: knee.onnx" in table
    rows = parse_table("some log line\n" + table)  # read back, as benchmarks/across_seeds.py reads a record
    assert [(r["label"], r["arch"]) for r in rows] == [("all-T", "TTTTTTTT"), ("ENS knee", "SSTSSSSS"),
                                                       ("named SSTSSTSS", "SSTSSTSS"), ("all-S", "SSSSSSSS")]
    assert rows[1]["psnr"] == 29.9 and rows[1]["dpsnr"] == -0.1 and rows[1]["speedup"] == 1.0
    assert rows[3]["diverged"] == "loss nan is not finite at step 334"
    with pytest.raises(ValueError, match="no pipeline table"):
        parse_table("no table here")


def test_an_unknown_lut_calibration_is_refused_naming_it():
    with pytest.raises(ValueError, match="lut_calibrate must be one of none, boundary_pairs, fit, got 'pairs'"):
        PipelineSpec(lut_calibrate="pairs")
    with pytest.raises(ValueError, match="needs lut_fidelity_archs >= 5, got 3"):
        PipelineSpec(lut_calibrate="fit", lut_fidelity_archs=3)


@pytest.mark.parametrize("steps, floor", [(100, 0.0), (100, -1.0), (0, 3.0)])
def test_a_measured_floor_must_be_positive_and_needs_re_ranking(steps, floor):
    with pytest.raises(ValueError, match=f"rerank_min_speedup must be > 0 and needs rerank_steps > 0, got {floor}"):
        PipelineSpec(rerank_steps=steps, rerank_min_speedup=floor)
    assert PipelineSpec(rerank_steps=100, rerank_min_speedup=3.0).rerank_min_speedup == 3.0


def test_table_names_a_fitted_lut_and_its_leave_one_out_error():
    row = {"params_M": 1.0, "ssim": 0.9, "predicted_ms": 10.0, "measured_ms": 10.0, "speedup_vs_all_T": 1.0,
           "psnr": 30.0, "onnx": "t.onnx"}
    summary = {"task": "deblur", "config": "c.yaml", "resolution": 64, "threads": 1, "finetune_steps": 5,
               "rows": [{**row, "label": "all-T", "arch": "TTTTTTTT"},
                        {**row, "label": "ENS knee", "arch": "SSSSSSSS"}],
               "pareto_png": "p.png", "minutes": 1.0,
               "fidelity": {"mape": 0.5, "spearman": None, "n": 10,
                            "fit": {"scales": {"transformer": 0.9, "ssm": 1.1}, "loo_mape": 1.25, "loo_max_ape": 3.0}}}
    assert ("LUT fidelity: MAPE 0.50%, Spearman n/a over 10 whole networks (fitted to them; leave-one-out MAPE "
            "1.25%)") in format_table(summary)


def test_a_finished_lut_of_another_calibration_is_refused_not_reused(tmp_path):
    from supernet.pipeline import _check_lut_calibration

    lut = tmp_path / "lut.json"
    lut.write_text(json.dumps({"calibration": None, "fidelity": {"mape": 1.0}}))
    _check_lut_calibration(lut, "none")
    with pytest.raises(SystemExit, match=r"lut.json: built with calibration 'none', but this run asks for "
                                         r"'boundary_pairs' \(--lut-calibrate\); delete the file"):
        _check_lut_calibration(lut, "boundary_pairs")
    lut.write_text(json.dumps({"calibration": {"method": "boundary_pairs"}, "fidelity": {"mape": 1.0}}))
    _check_lut_calibration(lut, "boundary_pairs")
    with pytest.raises(SystemExit, match="built with calibration 'boundary_pairs'"):
        _check_lut_calibration(lut, "none")


def test_a_reused_rerank_result_that_is_not_json_is_refused_naming_the_file(tmp_path):
    from supernet.pipeline import _check_reused_rerank

    result = tmp_path / "rerank" / "reranked.json"
    result.parent.mkdir()
    result.write_text('{"arch": "SSTS')
    with pytest.raises(ValueError, match=r"rerank/reranked.json is not JSON .*delete .*rerank to re-rank again"):
        _check_reused_rerank(result, [sys.executable, "rerank.py"])
