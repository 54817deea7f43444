"""The build on a tiny supernet: resumable after an interruption, fidelity recorded, CLI errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latency_lut.backends.local import LocalBackend
from latency_lut.build import BuildError, BuildOptions, build, fidelity_archs, fidelity_summary, format_fidelity
from latency_lut.cli import main as cli_main
from latency_lut.lut import LUT, LUTError

TINY = {"inp_channels": 3, "out_channels": 3, "dim": 4, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1,
        "heads": [1, 1, 1, 1], "ffn_expansion_factor": 2.66, "bias": False, "LayerNorm_type": "WithBias",
        "dual_pixel_task": False, "ssm": {}}


class CountingBackend(LocalBackend):
    """In-process onnxruntime timing that counts calls and can 'die' (KeyboardInterrupt) after N of them."""

    def __init__(self, die_after: int | None = None):
        super().__init__(isolate=False)
        self.calls: list[str] = []
        self.die_after = die_after

    def measure(self, model_path, input_shapes, warmup, repeats, threads):
        if self.die_after is not None and len(self.calls) >= self.die_after:
            raise KeyboardInterrupt
        self.calls.append(Path(model_path).name)
        return super().measure(model_path, input_shapes, warmup, repeats, threads)


MODELS: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def shared_models(tmp_path_factory):
    """One export folder for the module: a build reuses exported models found there, so tests export once."""
    MODELS["dir"] = tmp_path_factory.mktemp("lut_models")
    yield
    MODELS.clear()


def opts(**kw) -> BuildOptions:
    base = dict(resolutions=[(16, 16)], warmup=0, repeats=2, threads=1, fidelity_archs=3, fidelity_repeats=2,
                fidelity_warmup=0, workdir=MODELS["dir"], keep_models=True)
    return BuildOptions(**{**base, **kw})


def test_build_resumes_after_interruption(tmp_path):
    out = tmp_path / "lut.json"
    with pytest.raises(KeyboardInterrupt):
        build(TINY, CountingBackend(die_after=5), out, opts(fidelity_archs=0), log=lambda s: None)
    partial = LUT.load(out)
    assert len(partial.entries) == 5  # every measured entry was written before the interruption
    resumed = CountingBackend()
    lut = build(TINY, resumed, out, opts(), log=lambda s: None)
    assert len(resumed.calls) == 21 - 5 + 3  # only the missing entries, then the 3 fidelity networks
    assert not any(c.split(".")[0] in partial.entries for c in resumed.calls)
    assert len(lut.entries) == 21
    fid = lut.fidelity
    assert fid["complete"] and fid["n"] == 3 and [r["arch"] for r in fid["archs"]][:2] == ["TTTTTTTT", "SSSSSSSS"]
    for r in fid["archs"]:
        assert r["predicted_ms"] == pytest.approx(lut.predict(r["arch"], 16)) and r["measured_ms"] > 0
    assert 0 <= fid["mape"] and -1 <= fid["spearman"] <= 1
    assert lut.device["backend"] == "local" and lut.runtime["version"].startswith("onnxruntime")
    # a third run has nothing left to measure
    again = CountingBackend()
    build(TINY, again, out, opts(), log=lambda s: None)
    assert again.calls == []


def test_rounds_pool_runs_and_resume_mid_round(tmp_path):
    out = tmp_path / "lut.json"
    first = CountingBackend(die_after=21 + 2 + 4)  # round 1 (21 entries, 2 nets), then 4 entries of round 2
    with pytest.raises(KeyboardInterrupt):
        build(TINY, first, out, opts(rounds=2, fidelity_archs=2), log=lambda s: None)
    mid = LUT.load(out)
    assert sorted(e.rounds for e in mid.entries.values()) == [1] * 17 + [2] * 4
    rest = CountingBackend()
    lut = build(TINY, rest, out, opts(rounds=2, fidelity_archs=2), log=lambda s: None)
    assert len(rest.calls) == 17 + 2
    for st in lut.entries.values():
        assert st.rounds == 2 and st.n == 4 and len(st.samples) == 4  # 2 rounds x 2 repeats, pooled
        assert st.median == pytest.approx(float(np.median(st.samples)))
    assert all(r["rounds"] == 2 and r["n"] == 4 for r in lut.fidelity["archs"])
    assert lut.fidelity["complete"] and lut.runtime["rounds"] == 2


def test_resume_refuses_other_model(tmp_path):
    out = tmp_path / "lut.json"
    with pytest.raises(KeyboardInterrupt):
        build(TINY, CountingBackend(die_after=2), out, opts(fidelity_archs=0), log=lambda s: None)
    with pytest.raises(LUTError, match="dim: LUT 4 vs --config 8"):
        build({**TINY, "dim": 8}, CountingBackend(), out, opts(), log=lambda s: None)


def test_runner_failure_keeps_measured_entries(tmp_path):
    class Failing(CountingBackend):
        def measure(self, model_path, input_shapes, warmup, repeats, threads):
            if len(self.calls) == 3:
                from latency_lut.backends.base import RunnerFailed
                raise RunnerFailed("runner", 1, "Segmentation fault")
            return super().measure(model_path, input_shapes, warmup, repeats, threads)

    out = tmp_path / "lut.json"
    with pytest.raises(BuildError, match="(?s)Segmentation fault.*rerun the same command to resume"):
        build(TINY, Failing(), out, opts(), log=lambda s: None)
    assert len(LUT.load(out).entries) == 3


def test_fidelity_archs_and_summary():
    archs = fidelity_archs([4, 6, 6, 8, 6, 6, 4, 4], 10, seed=0)
    assert len(archs) == 10 and len({a.to_block([4, 6, 6, 8, 6, 6, 4, 4]) for a in archs}) == 10
    assert str(archs[0]) == "TTTTTTTT" and str(archs[1]) == "SSSSSSSS"
    assert {a.granularity for a in archs[2:]} == {"stage", "block"}
    assert fidelity_archs([4, 6, 6, 8, 6, 6, 4, 4], 10, seed=0) == archs
    s = fidelity_summary([{"predicted_ms": 110, "measured_ms": 100}, {"predicted_ms": 190, "measured_ms": 200},
                          {"predicted_ms": 300, "measured_ms": 300}])
    assert s["mape"] == pytest.approx(5.0) and s["spearman"] == pytest.approx(1.0) and s["n"] == 3


def test_cli_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit, match="unknown --backend 'tpu'"):
        cli_main(["--backend", "tpu", "--out", str(tmp_path / "x.json")])
    assert cli_main(["--backend", "local", "--resolution", "huge", "--out", str(tmp_path / "x.json")]) == 1
    assert "--resolution 'huge'" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("model:\n  dimm: 3\n")
    assert cli_main(["--backend", "local", "--config", str(tmp_path / "bad.yaml"), "--out",
                     str(tmp_path / "x.json")]) == 1
    assert "dimm" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_builds_with_local_subprocess_runner(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  dim: 4\n  num_blocks: [1, 1, 1, 1]\n  num_refinement_blocks: 1\n"
                   "  heads: [1, 1, 1, 1]\n")
    out = tmp_path / "lut.json"
    rc = cli_main(["--backend", "local", "--config", str(cfg), "--resolution", "16", "--out", str(out),
                   "--repeats", "2", "--warmup", "0", "--threads", "1", "--fidelity-archs", "2",
                   "--fidelity-repeats", "1"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["version"] == 1 and data["resolutions"] == [[16, 16]] and len(data["entries"]) == 21
    assert data["device"]["process_per_model"] is True and data["fidelity"]["n"] == 2
    assert data["command"].startswith("python build_lut.py --backend local")
    assert not (tmp_path / "lut_models").exists()  # exported models are removed unless --keep-models


@pytest.mark.slow
def test_boundary_pair_calibration_build(tmp_path):
    backend = CountingBackend()
    lut = build(TINY, backend, tmp_path / "lut.json", opts(calibrate="boundary_pairs", fidelity_archs=2),
                log=lambda s: None)
    assert len(lut.entries) == 21 + 5 * 4 and sum(k.startswith("pair-") for k in lut.entries) == 20
    assert lut.calibration["method"] == "boundary_pairs"
    for r in lut.fidelity["archs"]:
        assert r["predicted_ms"] == pytest.approx(lut.predict(r["arch"], 16))
        assert r["predicted_uncalibrated_ms"] == pytest.approx(lut.predict(r["arch"], 16, calibrated=False))
    assert set(lut.fidelity["uncalibrated"]) == {"mape", "max_ape", "bias_pct", "spearman"}
    with pytest.raises(ValueError, match="--calibrate 'magic'"):
        opts(calibrate="magic")


def test_fit_calibration_build(tmp_path):
    out = tmp_path / "lut.json"
    lut = build(TINY, CountingBackend(), out, opts(calibrate="fit", fidelity_archs=5), log=lambda s: None)
    cal = lut.calibration
    assert cal["method"] == "fit" and cal["n"] == 5 and cal["resolution"] == [16, 16]
    assert set(cal["scales"]) == {"transformer", "ssm"} and min(cal["scales"].values()) >= 0
    assert cal["loo_max_ape"] >= cal["loo_mape"] >= 0
    assert lut.fidelity["fit"] == {k: cal[k] for k in ("scales", "loo_mape", "loo_max_ape")}
    again = LUT.load(out)  # the fitted calibration is what a later search predicts with
    plain_sq = fitted_sq = 0.0
    for r in again.fidelity["archs"]:
        parts = again.breakdown(r["arch"], 16)
        expect = parts["fixed"] + sum(cal["scales"][k] * parts[k] for k in ("transformer", "ssm"))
        assert again.predict(r["arch"], 16) == pytest.approx(expect) == pytest.approx(r["predicted_ms"])
        plain_sq += ((r["predicted_uncalibrated_ms"] - r["measured_ms"]) / r["measured_ms"]) ** 2
        fitted_sq += ((r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"]) ** 2
    assert fitted_sq <= plain_sq + 1e-12  # scales (1, 1) are the plain sum, so the fit can only do better in-sample
    text = format_fidelity(again.fidelity)
    assert "fitted to these networks" in text and "leave-one-out MAPE" in text
    with pytest.raises(ValueError, match="--calibrate fit .* --fidelity-archs >= 5, got 3"):
        opts(calibrate="fit", fidelity_archs=3)


def test_fidelity_summary_of_constant_predictions_has_no_rank_correlation():
    s = fidelity_summary([{"predicted_ms": 5.0, "measured_ms": m} for m in (4.0, 5.0, 6.0)])
    assert s["spearman"] is None and s["mape"] == pytest.approx(100 * (0.25 + 0 + 1 / 6) / 3)
    assert "Spearman n/a (constant)" in format_fidelity({"resolution": [8, 8], "archs": [], **s})
