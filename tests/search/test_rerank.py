"""Re-ranking the search's candidates by short fine-tunings: pool, rung plan, successive halving, resume, errors,
and ``rerank.py`` end to end on a tiny checkpoint."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from latency_lut.lut import SCHEMA_VERSION
from search_testutil import REPO
from search.measured_speedup import timing_of_lut
from search.rerank import RerankSettings, candidate_pool, format_rerank, rung_plan, run_rerank

# supernet score and predicted latency per arch: the supernet prefers the archs the fine-tuning ranks last
EVALUATED = {"SSSSSSSS": (26.0, 100.0), "STSSSSSS": (26.5, 110.0), "SSTSSTSS": (25.9, 118.0),
             "SSSTSSSS": (26.3, 105.0), "SSTSSSSS": (26.1, 104.0), "TTTTTTTT": (27.0, 300.0),
             "STTSSSSS": (26.4, 125.0)}
# what a fine-tuning reaches: grows with the steps, ranks differently from the supernet
FINETUNED = {"SSTSSTSS": 28.0, "SSSTSSSS": 27.5, "SSTSSSSS": 26.9, "STSSSSSS": 26.8, "SSSSSSSS": 26.2}


def write_search(folder, budget=110.0, cost="latency_ms", lut_device=None, lut_threads=1):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["arch,psnr,latency_ms,granularity,transformer_blocks,feasible,on_front"]
    lines += [f"{a},{p},{ms},stage,{a.count('T')},{ms <= budget},False" for a, (p, ms) in EVALUATED.items()]
    (folder / "all_evaluated.csv").write_text("\n".join(lines) + "\n")
    lut = folder / "lut.json"  # a valid LUT with no entries: the measured floor reads where and how it was timed
    lut.write_text(json.dumps({"version": SCHEMA_VERSION, "device": lut_device or {"backend": "local"},
                               "runtime": {"tag": "ort", "dtype": "float32", "threads": lut_threads, "repeats": 5,
                                           "rounds": 3},
                               "model": {}, "resolutions": [[64, 64]], "entries": {}}))
    (folder / "chosen.json").write_text(json.dumps({"budget": budget, "cost": cost, "supernet": "x.pt",
                                                    "resolution": 64, "lut": str(lut)}))
    return folder


class FakeFineTune:
    """Records every call; a fine-tuning of ``steps`` reaches FINETUNED[arch] - 10 / steps (None: diverged)."""

    def __init__(self, diverge=()):
        self.calls, self.diverge = [], set(diverge)

    def __call__(self, arch, steps, folder):
        self.calls.append((arch, steps, folder.name, folder.parent.name))
        return None if arch in self.diverge else FINETUNED[arch] - 10.0 / steps


def settings(tmp_path, **kw):
    return RerankSettings(supernet=tmp_path / "supernet.pt", config="configs/demo.yaml",
                          search_dir=write_search(tmp_path / "search"), out=tmp_path / "rerank", progress=False, **kw)


def test_rung_plan_shrinks_by_eta_and_stops_at_one():
    assert rung_plan(21, 100, 3, 2) == [(21, 100), (7, 300)]
    assert rung_plan(5, 10, 2, 5) == [(5, 10), (3, 20), (2, 40), (1, 80)]
    assert rung_plan(1, 100, 3, 3) == [(1, 100)]


def test_candidate_pool_keeps_the_slack_budget_best_supernet_score_first():
    records = [{"arch": a, "psnr": p, "latency_ms": ms} for a, (p, ms) in EVALUATED.items()]
    pool = candidate_pool(records, 110.0, 0.1, 32)
    assert [r["arch"] for r in pool] == ["STSSSSSS", "SSSTSSSS", "SSTSSSSS", "SSSSSSSS", "SSTSSTSS"]
    assert [r["arch"] for r in candidate_pool(records, 110.0, 0.0, 2)] == ["STSSSSSS", "SSSTSSSS"]


def test_successive_halving_picks_what_the_fine_tuning_ranks_first(tmp_path):
    fake = FakeFineTune()
    summary = run_rerank(settings(tmp_path, steps=10, eta=2, rungs=3), finetune=fake)
    assert summary["arch"] == "SSTSSTSS" and summary["steps"] == 40 and summary["candidates"] == 5
    assert not summary["feasible"]  # 118 ms: over the 110 ms budget, within the 10% slack
    assert [(len(r["results"]), r["steps"]) for r in summary["rungs"]] == [(5, 10), (3, 20), (2, 40)]
    assert [r["arch"] for r in summary["rungs"][1]["results"]] == ["SSTSSTSS", "SSSTSSSS", "SSTSSSSS"]
    assert {c[3] for c in fake.calls} == {"rung0-10steps", "rung1-20steps", "rung2-40steps"}
    assert json.loads((tmp_path / "rerank" / "reranked.json").read_text()) == summary
    text = format_rerank(summary)
    assert "re-ranked choice: SSTSSTSS" in text and "over the budget" in text and "| `SSSTSSSS` | 27.25 |" in text


def test_a_diverged_fine_tuning_ranks_last_and_is_not_trained_longer(tmp_path):
    fake = FakeFineTune(diverge={"SSTSSTSS"})
    summary = run_rerank(settings(tmp_path, steps=10, eta=2, rungs=2), finetune=fake)
    assert summary["arch"] == "SSSTSSSS"
    assert summary["rungs"][0]["results"][-1] == {"arch": "SSTSSTSS", "psnr": None, "supernet_psnr": 25.9,
                                                  "latency_ms": 118.0}
    assert ("SSTSSTSS", 20) not in [(c[0], c[1]) for c in fake.calls]


def test_a_folder_resumes_only_with_the_settings_it_was_started_with(tmp_path):
    """Finished fine-tunings are read back, not trained again: a rerun with other settings would rank them as if
    trained with the new ones, so it is refused, naming the file and what differs; the same settings resume."""
    first = run_rerank(settings(tmp_path, steps=10, eta=2, rungs=2), finetune=FakeFineTune())
    stored = json.loads((tmp_path / "rerank" / "settings.json").read_text())
    assert stored == first["settings"] and stored["steps"] == 10 and stored["overrides"] == []
    again = run_rerank(settings(tmp_path, steps=10, eta=2, rungs=2), finetune=FakeFineTune())
    assert again["arch"] == first["arch"]
    fake = FakeFineTune()
    with pytest.raises(ValueError, match=r"rerank/settings.json: this folder was re-ranked with other settings "
                                         r"\(steps 10 there, 20 now; overrides \[\] there, \['seed=1'\] now\)"):
        run_rerank(settings(tmp_path, steps=20, eta=2, rungs=2, overrides=["seed=1"]), finetune=fake)
    assert not fake.calls and json.loads((tmp_path / "rerank" / "settings.json").read_text()) == stored


def test_a_config_or_teacher_spelt_another_way_is_the_same_setting(tmp_path, monkeypatch):
    """``configs/x.yaml``, ``./configs/x.yaml`` and its absolute path are one file; another file, or a teacher path
    that no longer exists, is not."""
    from search.rerank import settings_mismatch, settings_record

    monkeypatch.chdir(REPO)
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"")
    stored = settings_record(settings(tmp_path, overrides=[f"subnet.teacher={teacher}", "seed=1"]))
    same = settings(tmp_path, overrides=[f"subnet.teacher={tmp_path}/./teacher.pt", "seed=1"])
    assert settings_mismatch(stored, same) is None
    for config in ("./configs/demo.yaml", str(Path("configs/demo.yaml").resolve())):
        assert settings_mismatch(stored, replace(same, config=config)) is None
    assert "config 'configs/demo.yaml' there, 'configs/denoise.yaml' now" in settings_mismatch(
        stored, replace(same, config="configs/denoise.yaml"))
    assert "overrides" in settings_mismatch(stored, replace(same, overrides=[f"subnet.teacher={teacher}", "seed=2"]))
    gone = dict(stored, overrides=[f"subnet.teacher={tmp_path}/moved/teacher.pt", "seed=1"])
    assert "overrides" in settings_mismatch(gone, same)


@pytest.mark.parametrize("kw, message", [({"steps": 0}, "steps: expected >= 1"), ({"eta": 1}, "eta: expected >= 2"),
                                         ({"slack": -0.1}, "slack: expected >= 0"),
                                         ({"min_speedup": 0.0}, "min_speedup: expected > 0")])
def test_bad_settings_are_named(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        settings(tmp_path, **kw)


def test_a_search_without_a_lut_or_candidates_is_refused(tmp_path):
    write_search(tmp_path / "penalty", cost="transformer_cost")
    s = settings(tmp_path)
    s.search_dir = tmp_path / "penalty"
    with pytest.raises(ValueError, match="without a LUT"):
        run_rerank(s, finetune=FakeFineTune())
    s = settings(tmp_path, budget_ms=50.0)
    with pytest.raises(ValueError, match="raise --slack or the budget"):
        run_rerank(s, finetune=FakeFineTune())
    (tmp_path / "penalty" / "chosen.json").write_text("{not json")
    s.search_dir = tmp_path / "penalty"
    with pytest.raises(ValueError, match="chosen.json: not JSON"):
        run_rerank(s, finetune=FakeFineTune())
    write_search(tmp_path / "penalty")
    with open(tmp_path / "penalty" / "all_evaluated.csv", "a") as f:
        f.write("SSSSSSST,n/a,99.0,stage,1,True,False\n")
    with pytest.raises(ValueError, match="all_evaluated.csv: psnr and latency_ms must be numbers"):
        run_rerank(s, finetune=FakeFineTune())
    s.search_dir = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="all_evaluated.csv: missing"):
        run_rerank(s, finetune=FakeFineTune())


# measured on the host: all-T 300 ms; SSTSSTSS faster than the LUT predicts (118 ms), STSSSSSS slower (110 ms)
MEASURED = {"TTTTTTTT": 300.0, "SSSSSSSS": 100.0, "STSSSSSS": 120.0, "SSTSSTSS": 95.0, "SSSTSSSS": 105.0,
            "SSTSSSSS": 104.0}


class FakeMeasure:
    def __init__(self):
        self.calls = []

    def __call__(self, archs):
        self.calls.append(list(archs))
        return {a: MEASURED[a] for a in archs}


def test_a_measured_floor_fine_tunes_only_archs_that_are_fast_in_fact(tmp_path, capsys):
    measure = FakeMeasure()
    s = settings(tmp_path, steps=10, eta=2, rungs=2, min_speedup=3.0, max_candidates=1)
    s.progress = True
    summary = run_rerank(s, finetune=FakeFineTune(), measure=measure)
    # every arch within 110 ms x 1.1 timed once with all-T first; only 300/100 and 300/95 reach 3x; the cap applies
    # to those that pass (best supernet score first: SSSSSSSS 26.0 before SSTSSTSS 25.9)
    assert measure.calls == [["TTTTTTTT", "STSSSSSS", "SSSTSSSS", "SSTSSSSS", "SSSSSSSS", "SSTSSTSS"]]
    assert summary["candidates"] == 1 and summary["arch"] == "SSSSSSSS" and summary["speedup"] == 3.0
    s.max_candidates = 32
    s.out = tmp_path / "rerank-all"
    summary = run_rerank(s, finetune=FakeFineTune(), measure=measure)
    assert [r["arch"] for r in summary["rungs"][0]["results"]] == ["SSTSSTSS", "SSSSSSSS"]
    assert summary["arch"] == "SSTSSTSS" and summary["speedup"] == pytest.approx(300 / 95)
    assert summary["min_speedup"] == 3.0 and summary["measured"]["ms"]["TTTTTTTT"] == 300.0
    measured = json.loads((s.out / "measured.json").read_text())
    assert measured["threads"] == 1 and measured["resolution"] == 64 and measured["speedup"]["STSSSSSS"] == 2.5
    text = format_rerank(summary)
    assert "measured speed-up |" in text and "| 3.16x |" in text
    assert "measured 3.16x faster than all-T (floor 3x)" in text
    assert "2 of 5 candidates >= 3x faster than all-T" in capsys.readouterr().out
    # a rerun reads the timings back (the pool stays the same); other timing options time again
    (s.out / "reranked.json").unlink()
    assert run_rerank(s, finetune=FakeFineTune(), measure=measure)["arch"] == "SSTSSTSS" and len(measure.calls) == 2
    write_search(tmp_path / "search", lut_threads=2)
    run_rerank(s, finetune=FakeFineTune(), measure=measure)
    assert len(measure.calls) == 3 and json.loads((s.out / "measured.json").read_text())["threads"] == 2


def test_a_measured_floor_no_candidate_reaches_or_a_phone_lut_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no candidate measured >= 5x faster .* SSTSSTSS, 3.16x.*measured.json"):
        run_rerank(settings(tmp_path, min_speedup=5.0), finetune=FakeFineTune(), measure=FakeMeasure())
    assert not (tmp_path / "rerank" / "settings.json").exists()  # nothing fine-tuned: a lower floor may rerun here
    s = settings(tmp_path, min_speedup=3.0)
    search = write_search(s.search_dir, lut_device={"backend": "adb", "serial": "R5C"})
    with pytest.raises(ValueError, match=r"lut.json: measured on another device \(backend 'adb'\); --min-speedup"):
        run_rerank(s, finetune=FakeFineTune(), measure=FakeMeasure())
    (search / "lut.json").write_text("{")
    with pytest.raises(ValueError, match="cannot read the LUT the search used: .*lut.json: not valid JSON"):
        timing_of_lut(search / "lut.json")
    (search / "lut.json").write_text(json.dumps({"device": {"backend": "local"}}))
    with pytest.raises(ValueError, match="lut.json: missing field 'version'"):
        timing_of_lut(search / "lut.json")
    chosen = json.loads((search / "chosen.json").read_text())
    (search / "chosen.json").write_text(json.dumps({k: v for k, v in chosen.items() if k != "resolution"}))
    with pytest.raises(ValueError, match="chosen.json: no 'resolution'"):
        run_rerank(s, finetune=FakeFineTune(), measure=FakeMeasure())


TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "supernet.warmup=0", "data.patch_size=32", "data.batch_size=2", "data.val_count=1", "data.val_crop=32",
        "data.val_crops=1", "train.checkpoint_every=2", "train.log_every=1"]


@pytest.mark.slow
def test_rerank_cli_fine_tunes_resumes_and_names_bad_options(tmp_path):
    """rerank.py on a tiny freshly initialised supernet: 2 candidates x 1 step, then the best x 2 steps; a rerun
    trains nothing again."""
    from supernet.checkpoint import atomic_save, build_model
    from supernet.config import load_config

    cfg = load_config(REPO / "configs" / "demo.yaml", TINY)
    ckpt = tmp_path / "supernet.pt"
    atomic_save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict(), "phase": "supernet", "step": 0},
                ckpt)
    search = write_search(tmp_path / "search", budget=104.0)
    cmd = [sys.executable, "rerank.py", "--search-dir", str(search), "--supernet", str(ckpt), "--config",
           "configs/demo.yaml", "--steps", "1", "--eta", "2", "--slack", "0",
           *[a for kv in TINY for a in ("--set", kv)]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = search / "rerank"
    summary = json.loads((out / "reranked.json").read_text())
    assert [(len(r["results"]), r["steps"]) for r in summary["rungs"]] == [(2, 1), (1, 2)]
    assert summary["arch"] in ("SSSSSSSS", "SSTSSSSS") and summary["feasible"]
    assert (out / "rung1-2steps" / f"subnet-{summary['arch']}" / "subnet.pt").is_file()
    assert "re-ranked choice:" in proc.stdout
    log = (out / "rerank.log").read_text()
    assert log.count("$ ") == 3
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert rerun.returncode == 0 and (out / "rerank.log").read_text() == log  # finished fine-tunings are read back
    bad = subprocess.run(cmd + ["--eta", "1"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 2 and "--eta: expected >= 2, got 1" in bad.stderr


def test_rerank_cli_passes_min_speedup_and_names_a_bad_one(tmp_path, capsys):
    from search.rerank_cli import settings_from_args

    (tmp_path / "supernet.pt").write_bytes(b"")
    base = ["--search-dir", str(write_search(tmp_path / "search")), "--supernet", str(tmp_path / "supernet.pt"),
            "--config", "configs/demo.yaml"]
    assert settings_from_args(base).min_speedup is None
    assert settings_from_args(base + ["--min-speedup", "3"]).min_speedup == 3.0
    with pytest.raises(SystemExit):
        settings_from_args(base + ["--min-speedup", "-1"])
    assert "--min-speedup: expected > 0, got -1.0" in capsys.readouterr().err
