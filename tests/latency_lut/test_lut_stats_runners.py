"""Statistics and runner-output parsers, on recorded outputs of the real runners."""
from __future__ import annotations

import pytest

from latency_lut.runners import (RunnerOutputError, make_regex_parser, make_runner, parse_ens_json,
                                 parse_ort_perf_test)
from latency_lut.stats import Stats, summarize
from lut_testutil import fixture_text


def test_summarize_median_ignores_outliers():
    base = [10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.3, 10.1, 9.9]
    s = summarize(base, warmup=3)
    s_out = summarize(base + [500.0], warmup=3)  # one run disturbed by another process
    assert s.n == 9 and s.warmup == 3
    assert s.p10 <= s.median <= s.p90
    assert abs(s_out.median - s.median) < 0.1
    assert s_out.mean > s.mean + 40  # the mean is moved; the median is not


def test_summarize_rejects_empty_and_bad():
    with pytest.raises(ValueError, match="no timed runs"):
        summarize([], 0)
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, float("nan")], 0)


def test_stats_json_roundtrip_and_validation():
    s = summarize([1.0, 2.0, 3.0], 1)
    assert Stats.from_json(s.to_json()) == s
    with pytest.raises(ValueError, match=r"e\.median"):
        Stats.from_json({"median": -1, "n": 3, "warmup": 0}, where="e")
    with pytest.raises(ValueError, match="missing field"):
        Stats.from_json({"median": 1.0}, where="e")
    with pytest.raises(ValueError, match="unknown field"):
        Stats.from_json({"median": 1.0, "n": 1, "warmup": 0, "avg": 1}, where="e")


def test_parse_ort_perf_test_with_percentiles():
    r = parse_ort_perf_test(fixture_text("ort_perf_test_1.20.txt"), warmup=5)
    assert r.stats.median == pytest.approx(23.6341)
    assert r.stats.p90 == pytest.approx(24.9785)
    assert r.stats.min == pytest.approx(22.6018)
    assert r.stats.mean == pytest.approx(24.0131)
    assert r.stats.n == 100 and r.stats.warmup == 1  # the tool's one untimed first run
    assert r.stats.p10 is None and r.samples_ms is None


def test_parse_ort_perf_test_total_variant_and_old_builds():
    r = parse_ort_perf_test(fixture_text("ort_perf_test_total.txt"))
    assert r.stats.median == pytest.approx(99.5086) and r.stats.mean == pytest.approx(98.961997)
    assert r.stats.n == 5
    old = parse_ort_perf_test(fixture_text("ort_perf_test_old.txt"))
    assert old.stats.median == pytest.approx(118.931) and old.stats.p90 is None


def test_parse_ort_perf_test_failure_shows_output():
    with pytest.raises(RunnerOutputError, match="GetFileLength"):
        parse_ort_perf_test(fixture_text("ort_perf_test_failed.txt"))


def test_parse_ens_json_skips_warnings():
    r = parse_ens_json(fixture_text("ens_runner.txt"), warmup=0)
    assert r.runtime == "onnxruntime 1.20.1"
    assert len(r.samples_ms) == 10 and r.stats.warmup == 2
    assert r.stats.median == pytest.approx(41.02, abs=0.05)  # the 95 ms outlier does not move it
    with pytest.raises(RunnerOutputError, match="Its output was:\n<empty>"):
        parse_ens_json("", 0)
    with pytest.raises(RunnerOutputError, match="Traceback"):
        parse_ens_json("Traceback (most recent call last):\nImportError: no onnxruntime\n", 0)


def test_regex_runner():
    parse = make_regex_parser(r"^iter \d+: (?P<ms>[\d.]+) us$", unit="us")
    r = parse("warming up\niter 0: 1500 us\niter 1: 1700 us\niter 2: 1600 us\n", 2)
    assert r.samples_ms == (1.5, 1.7, 1.6) and r.stats.median == pytest.approx(1.6)
    with pytest.raises(RunnerOutputError, match="matched nothing"):
        parse("nothing here", 0)
    with pytest.raises(ValueError, match="capture group"):
        make_regex_parser(r"\d+ ms")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        make_regex_parser(r"(")


def test_make_runner_templates():
    ens = make_runner("ens")
    cmd = ens.command("/d/m.onnx", [(1, 3, 8, 8), (1, 4, 8, 8)], 2, 5, 4, "/d", lambda s: s)
    assert cmd == ("python3 /d/device_runner.py --model /d/m.onnx --shape 1x3x8x8 --shape 1x4x8x8 --warmup 2 "
                   "--repeats 5 --threads 4")
    assert ens.push and ens.push[0].name == "device_runner.py"
    ort = make_runner("ort_perf_test")
    assert ort.command("m.onnx", [(1, 3, 8, 8)], 2, 50, 4, "/d", lambda s: s) == \
        "/d/onnxruntime_perf_test -e cpu -m times -r 50 -x 4 -I m.onnx"
    with pytest.raises(ValueError, match="unknown placeholder"):
        make_runner(command="run {modle}", regex=r"(\d+)").command("m", [(1,)], 0, 1, 1, "/d", str)
    with pytest.raises(ValueError, match="--runner 'tflite'"):
        make_runner("tflite")
    with pytest.raises(ValueError, match="needs --runner-cmd"):
        make_runner(regex=r"(\d+)")
