"""benchmarks/lut_refit.py on a LUT whose whole networks were timed at known block scales: the fit recovers them
(in-sample error 0), leave-one-out is reported apart, and a LUT without a finished fidelity check is refused."""
import pytest

from benchmark_scripts import load_benchmark
from latency_lut.build import fidelity_archs
from latency_lut.enumerate import Layout
from latency_lut.lut import LUT
from latency_lut.stats import Stats

TINY = {"dim": 8, "num_blocks": [1, 1, 1, 2], "num_refinement_blocks": 1, "heads": [1, 1, 2, 2], "ssm": {}}


def timed_lut(path, s_t=0.7, s_s=1.4, n=6, calibration=None) -> LUT:
    """A LUT whose fidelity networks take exactly fixed + s_t * transformer + s_s * ssm blocks."""
    entries = Layout.from_config(TINY).all_entries([(32, 32)], "fp32", "ort")
    lut = LUT(device={"backend": "local", "model": "host", "threads": 1}, runtime={"tag": "ort", "dtype": "fp32"},
              model=TINY, resolutions=[(32, 32)], calibration=calibration,
              entries={e.key: Stats(median=float(i % 7 + 1), n=3, warmup=1) for i, e in enumerate(entries)})
    rows = []
    for arch in fidelity_archs(lut.layout.sizes, n, seed=0):
        parts = lut.breakdown(arch, 32)
        rows.append({"arch": str(arch), "predicted_ms": lut.predict(arch, 32),
                     "measured_ms": parts["fixed"] + s_t * parts["transformer"] + s_s * parts["ssm"]})
    lut.fidelity = {"resolution": [32, 32], "complete": True, "n": n, "mape": 0.0, "spearman": 1.0, "archs": rows}
    lut.save(path)
    return lut


def test_refit_recovers_the_scales_and_prints_every_method(tmp_path, capsys):
    refit = load_benchmark("lut_refit")
    lut = timed_lut(tmp_path / "lut.json")
    rows = refit.refit(lut, "lut.json")
    by = {r["method"].split(" (")[0]: r for r in rows}
    assert set(by) == {"plain", "as built", "fit, in-sample", "fit, leave-one-out"}
    assert "T x 0.700, S x 1.400" in rows[2]["method"]
    assert by["fit, in-sample"]["mape"] == pytest.approx(0, abs=1e-9)
    assert by["fit, leave-one-out"]["mape"] == pytest.approx(0, abs=1e-6)  # exact model: every subset agrees
    assert by["plain"]["mape"] > 5 and by["as built"]["mape"] == by["plain"]["mape"]  # built without calibration
    t, s = lut.fidelity["archs"][0], lut.fidelity["archs"][1]  # all-T, all-S
    assert by["plain"]["speedup_meas"] == pytest.approx(t["measured_ms"] / s["measured_ms"])
    assert by["fit, in-sample"]["speedup_pred"] == pytest.approx(by["plain"]["speedup_meas"])
    assert refit.main([str(tmp_path / "lut.json")]) == 0
    out = capsys.readouterr().out
    assert "fit, leave-one-out" in out and "measured" in out and "1 thread(s)" in out


def test_refit_refuses_luts_it_cannot_score(tmp_path, capsys):
    refit = load_benchmark("lut_refit")
    lut = timed_lut(tmp_path / "lut.json", n=3)
    assert refit.main([str(tmp_path / "lut.json")]) == 2
    assert "lut.json: needs a finished fidelity check with >= 4 whole networks" in capsys.readouterr().err
    lut.fidelity = None
    lut.save(tmp_path / "none.json")
    assert refit.main([str(tmp_path / "none.json")]) == 2
    assert "found 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        refit.main([str(tmp_path / "missing.json")])
    assert "missing.json does not exist" in capsys.readouterr().err
