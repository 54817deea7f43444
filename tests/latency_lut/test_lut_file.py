"""LUT file format: validation errors name the field; predict sums entries; missing keys and resolutions fail
with the build command."""
from __future__ import annotations

import json

import pytest

from latency_lut.enumerate import Layout
from latency_lut.lut import LUT, LUTError, MissingEntries
from latency_lut.stats import Stats

TINY = {"dim": 8, "num_blocks": [1, 1, 1, 2], "num_refinement_blocks": 1, "heads": [1, 1, 2, 2], "ssm": {}}


def full_lut(tmp_path, cfg=TINY) -> LUT:
    layout = Layout.from_config(cfg)
    entries = layout.all_entries([(32, 32)], "fp32", "ort")
    lut = LUT(device={"backend": "local", "model": "host"}, runtime={"tag": "ort", "dtype": "fp32"}, model=cfg,
              resolutions=[(32, 32)],
              entries={e.key: Stats(median=float(i + 1), n=3, warmup=1) for i, e in enumerate(entries)})
    lut.save(tmp_path / "lut.json")
    return lut


def test_roundtrip_and_predict_sums_path(tmp_path):
    lut = full_lut(tmp_path)
    again = LUT.load(tmp_path / "lut.json")
    assert again.entries == lut.entries and again.resolutions == [(32, 32)]
    keys = again.keys_for("TTTTTTTT", 32)
    # 11 fixed parts + one key per block (1+1+1+2+1+1+1+1 = 9 blocks)
    assert len(keys) == 11 + 9
    assert again.predict("TTTTTTTT", 32) == pytest.approx(sum(again.entries[k].median for k in keys))
    assert again.predict("TTTTTTTT", 32) != again.predict("SSSSSSSS", 32)
    # stage and block granularity of the same path agree; H, W not multiple of 8 use the padded size
    assert again.predict("TSTSTSTS", 32) == again.predict("T-S-T-SS-T-S-T-S", 32)
    assert again.predict("TSTSTSTS", 30, 27) == again.predict("TSTSTSTS", 32, 32)
    again.calibration = {"method": "linear", "scale": 1.0, "offset_ms": 5.0}
    assert again.predict("TTTTTTTT", 32) == pytest.approx(lut.predict("TTTTTTTT", 32) + 5.0)
    assert again.predict("TTTTTTTT", 32, calibrated=False) == lut.predict("TTTTTTTT", 32)


def test_breakdown_splits_a_path_into_blocks_and_fixed_parts(tmp_path):
    lut = full_lut(tmp_path)
    for arch in ("TTTTTTTT", "SSSSSSSS", "TSTSTSTS"):
        parts = lut.breakdown(arch, 32)
        assert sum(parts.values()) == pytest.approx(lut.predict(arch, 32, calibrated=False))
    t, s = lut.breakdown("TTTTTTTT", 32), lut.breakdown("SSSSSSSS", 32)
    assert t["ssm"] == 0 and s["transformer"] == 0 and t["transformer"] > 0 and s["ssm"] > 0
    assert t["fixed"] == s["fixed"] > 0  # the parts every arch shares
    mixed = lut.breakdown("TSTSTSTS", 32)
    assert 0 < mixed["transformer"] < t["transformer"] and 0 < mixed["ssm"] < s["ssm"]


def test_boundary_pair_calibration(tmp_path):
    lut = full_lut(tmp_path)
    layout = lut.layout
    pairs = layout.pair_entries([(32, 32)], "fp32", "ort")
    assert len(pairs) == 5 * 4  # 5 distinct block shapes x (T,T) (T,S) (S,T) (S,S)
    bounds = layout.arch_boundaries("T-S-T-ST-T-S-T-S", (32, 32), "fp32", "ort")
    # only latent (2 blocks) has a boundary inside a stage, plus dec1 -> refinement
    assert len(bounds) == 2
    assert bounds[0][0].startswith("pair-ssm-c64-in4x4") and "+transformer-c64-in4x4" in bounds[0][0]
    for p in pairs:  # every pair runs 1 ms faster than its two blocks apart
        a, b = p.key[len("pair-"):].split("+", 1)
        first = next(k for k in lut.entries if k.startswith(a))
        lut.entries[p.key] = Stats(median=lut.entries[first].median + lut.entries[b].median - 1.0, n=3, warmup=1)
    raw = lut.predict("T-S-T-ST-T-S-T-S", 32)
    lut.calibration = {"method": "boundary_pairs"}
    assert lut.predict("T-S-T-ST-T-S-T-S", 32) == pytest.approx(raw - 2.0)
    del lut.entries[layout.arch_boundaries("TTTTTTTT", (32, 32), "fp32", "ort")[0][0]]
    with pytest.raises(MissingEntries, match="pair-transformer-c64"):
        lut.predict("TTTTTTTT", 32)


def test_missing_entries_list_keys_and_command(tmp_path):
    lut = full_lut(tmp_path)
    ssm_keys = [k for k in lut.entries if k.startswith("ssm-")]
    for k in ssm_keys:
        del lut.entries[k]
    assert lut.predict("TTTTTTTT", 32) > 0
    with pytest.raises(MissingEntries) as e:
        lut.predict("STTTTTTT", 32)
    assert e.value.missing == [k for k in ssm_keys if "-c8-in32x32" in k]
    assert "python build_lut.py --backend local" in str(e.value) and "--resolution 32x32" in str(e.value)


def test_other_resolution_and_model_rejected(tmp_path):
    lut = full_lut(tmp_path)
    with pytest.raises(LUTError, match="(?s)built for 32x32, not 64x64.*--resolution 32x32 --resolution 64x64"):
        lut.predict("TTTTTTTT", 64)
    with pytest.raises(LUTError, match="dim: LUT 8 vs config 16"):
        lut.check_model({**TINY, "dim": 16})
    lut.check_model(dict(TINY))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("entries"), "missing field 'entries'"),
    (lambda d: d.update(version=99), "field 'version' is 99"),
    (lambda d: d.update(device=[]), "field 'device' must be an object"),
    (lambda d: d["runtime"].pop("tag"), "field 'runtime.tag'"),
    (lambda d: d.update(resolutions=[[256]]), r"field 'resolutions\[0\]'"),
    (lambda d: d["entries"][next(iter(d["entries"]))].update(median="fast"), r"entries\..*\.median"),
    (lambda d: d["entries"][next(iter(d["entries"]))].pop("n"), r"entries\..*missing field\(s\) \['n'\]"),
    (lambda d: d.update(fidelity={"mape": 1.0}), "fidelity.spearman"),
    (lambda d: d.update(extra=1), r"unknown field\(s\) \['extra'\]"),
    (lambda d: d.update(calibration={"method": "fit", "scales": {"transformer": -1, "ssm": 1}}), "calibration.scales"),
    (lambda d: d.update(calibration={"method": "fit"}), "calibration.scales"),
])
def test_load_validation_names_the_field(tmp_path, mutate, message):
    full_lut(tmp_path)
    data = json.loads((tmp_path / "lut.json").read_text())
    mutate(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(LUTError, match=message):
        LUT.load(tmp_path / "bad.json")


def test_load_missing_and_invalid_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_lut.py"):
        LUT.load(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(LUTError, match="not valid JSON"):
        LUT.load(tmp_path / "broken.json")
