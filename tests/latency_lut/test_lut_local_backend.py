"""The local backend and our runner on tiny models: in-process, in a fresh process, torch eager."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from latency_lut import device_runner
from latency_lut.backends.base import RunnerFailed
from latency_lut.backends.local import LocalBackend
from latency_lut.export_entries import export_module
from latency_lut.runners import RunnerOutputError, make_runner


def test_runner_script_prints_one_json_line(add_model):
    out = subprocess.run([sys.executable, device_runner.__file__, "--model", str(add_model), "--shape", "1x4x8x8",
                          "--shape", "1x4x8x8", "--warmup", "1", "--repeats", "3", "--threads", "1", "--no-spin"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["ens_runner"] == 1 and len(data["ms"]) == 3 and data["warmup"] == 1 and data["spin"] is False
    assert data["runtime"].startswith("onnxruntime ")
    bad = subprocess.run([sys.executable, device_runner.__file__, "--model", str(add_model), "--shape", "1x4x8x8"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "has 2 input(s)" in bad.stderr


def test_local_backend_in_process_and_isolated(add_model):
    shapes = [(1, 4, 8, 8), (1, 4, 8, 8)]
    with LocalBackend(isolate=False) as b:
        r = b.measure(add_model, shapes, warmup=1, repeats=5, threads=1)
        assert r.stats.n == 5 and len(r.samples_ms) == 5 and r.stats.p10 <= r.stats.median <= r.stats.p90
    with LocalBackend(spin=False, clock="cpu") as b:
        r = b.measure(add_model, shapes, warmup=0, repeats=2, threads=1)
        meta = b.metadata()
        assert "--no-spin --clock cpu" in b.runner.template
    assert r.stats.n == 2 and r.runtime.startswith("onnxruntime")
    assert meta["backend"] == "local" and meta["threads"] == 1 and meta["spin"] is False and meta["clock"] == "cpu"
    assert meta["timing_env"]["MALLOC_MMAP_MAX_"] == "0"


def test_cpu_clock_leaves_out_time_without_the_cpu():
    """The cpu clock counts only this process's CPU time: a run that sleeps costs ~0 cpu-ms but its wall time."""
    import time

    t_wall, t_cpu = device_runner.CLOCKS["wall"](), device_runner.CLOCKS["cpu"]()
    time.sleep(0.2)
    assert device_runner.CLOCKS["wall"]() - t_wall >= 0.19
    assert device_runner.CLOCKS["cpu"]() - t_cpu < 0.05
    with pytest.raises(ValueError, match="clock 'gpu'"):
        LocalBackend(clock="gpu")


def test_local_backend_custom_runner_errors(add_model):
    shapes = [(1, 4, 8, 8)]
    failing = make_runner(command="echo boom; exit 3", regex=r"(\d+) ms")
    with LocalBackend(failing) as b, pytest.raises(RunnerFailed, match="(?s)status 3.*boom"):
        b.measure(add_model, shapes, 0, 1, 1)
    silent = make_runner(command="echo nothing useful", regex=r"(\d+) ms")
    with LocalBackend(silent) as b, pytest.raises(RunnerOutputError, match="nothing useful"):
        b.measure(add_model, shapes, 0, 1, 1)
    fake = make_runner(command="for i in 1 2 3; do echo \"run $i: 1$i ms\"; done", regex=r"run \d: (\d+) ms")
    with LocalBackend(fake) as b:
        assert b.measure(add_model, shapes, 0, 3, 1).samples_ms == (11.0, 12.0, 13.0)


def test_torch_engine_on_pt2(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    path = export_module(module, ((1, 3, 8, 8),), tmp_path / "conv.pt2", "pt2")
    with LocalBackend(engine="torch", isolate=False) as b:
        assert b.artifact == "pt2"
        r = b.measure(path, [(1, 3, 8, 8)], warmup=1, repeats=3, threads=1)
    assert r.stats.n == 3 and r.runtime.startswith("torch ")


def test_runner_feeds_image_range_inputs_so_timed_runs_stay_finite(tmp_path):
    """A network trained on images can overflow on N(0, 1) inputs; the runner feeds [0, 1) like real images.
    sqrt is NaN on every negative input, so a normal feed would make half the output NaN."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Sqrt", ["x"], ["y"])], "sqrt", [x], [y])
    path = tmp_path / "sqrt.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))

    run, _ = device_runner.ort_callable(str(path), [(1, 3, 8, 8)], threads=1, seed=0)
    out = run()[0]
    assert np.isfinite(out).all()
    arrays = device_runner.input_arrays([(2, 5)], seed=3)
    assert arrays[0].dtype == np.float32 and 0 <= arrays[0].min() and arrays[0].max() < 1
    assert np.array_equal(arrays[0], device_runner.input_arrays([(2, 5)], seed=3)[0])
