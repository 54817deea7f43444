#!/usr/bin/env python3
"""ENS's own latency runner: time one model, print one JSON line.

It is pushed to the device as a single file and needs only the standard library, numpy and onnxruntime (or torch
for ``--engine torch`` on a ``.pt2`` file from ``torch.export``). On the host the same file runs under the
project's Python, so the host build stands in for the phone's. Output, one line on stdout::

    {"ens_runner": 1, "engine": "onnxruntime", "runtime": "onnxruntime 1.32.0", "threads": 2,
     "warmup": 2, "ms": [12.1, 11.9, ...]}

Usage: ``python3 device_runner.py --model m.onnx --shape 1x48x256x256 [--shape ...] --warmup 2 --repeats 10
--threads 2``. Exit status 0 on success; errors go to stderr with a non-zero status.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable, Sequence

RUNNER_TAG = "ens_runner"
RUNNER_VERSION = 1


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--shape {text!r}: expected dims joined by 'x', e.g. 1x3x256x256") from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"--shape {text!r}: every dim must be a positive int")
    return shape


def ort_session(model: str, threads: int, spin: bool = True):
    """An onnxruntime CPU session with explicit threads and denormals flushed to zero (they cost 5x in MatMul).

    ``spin=False`` stops idle pool threads from busy-waiting, which only steals CPU on a host shared with other
    work; a dedicated phone keeps onnxruntime's default (spinning)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.set_denormal_as_zero", "1")
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    so.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def ort_callable(model: str, shapes: Sequence[tuple[int, ...]], threads: int, seed: int,
                 spin: bool = True) -> tuple[Callable, str]:
    import onnxruntime as ort

    sess = ort_session(model, threads, spin)
    inputs = sess.get_inputs()
    if len(inputs) != len(shapes):
        raise ValueError(f"{model} has {len(inputs)} input(s) ({[i.name for i in inputs]}), got {len(shapes)} --shape")
    feed = {i.name: a for i, a in zip(inputs, input_arrays(shapes, seed))}
    return (lambda: sess.run(None, feed)), f"onnxruntime {ort.__version__}"


def input_arrays(shapes: Sequence[tuple[int, ...]], seed: int) -> list:
    """The timed inputs: float32, uniform in [0, 1), the range of the images the networks are fed. Not N(0, 1): a
    trained network can overflow to inf/NaN on inputs far outside its range (the trained norm-free all-S of the
    deblur proxy does), and a run through NaNs is not the run a user times."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.random(s, dtype=np.float32) for s in shapes]


def torch_callable(model: str, shapes: Sequence[tuple[int, ...]], threads: int, seed: int,
                   spin: bool = True) -> tuple[Callable, str]:
    import torch

    del spin  # torch's intra-op pool has no such switch

    torch.set_num_threads(int(threads))
    torch.set_flush_denormal(True)
    module = torch.export.load(model).module()
    args = [torch.from_numpy(a) for a in input_arrays(shapes, seed)]

    def run():
        with torch.inference_mode():
            return module(*args)
    return run, f"torch {torch.__version__}"


ENGINES: dict[str, Callable] = {"onnxruntime": ort_callable, "torch": torch_callable}


#: ``wall``: elapsed time (what a user waits). ``cpu``: this process's CPU time, which leaves out the time the OS
#: gave the cores to other programs; with one thread it equals the wall time of an idle machine, so it is the
#: stable measure on a host shared with other jobs (not for several threads: it adds their times up).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def time_model(model: str, shapes: Sequence[tuple[int, ...]], warmup: int, repeats: int, threads: int,
               engine: str = "onnxruntime", seed: int = 0, spin: bool = True, clock: str = "wall") -> dict:
    """Run ``warmup`` untimed then ``repeats`` timed inferences; the result dict is the runner's JSON line."""
    if engine not in ENGINES:
        raise ValueError(f"--engine {engine!r}: expected one of {sorted(ENGINES)}")
    if clock not in CLOCKS:
        raise ValueError(f"--clock {clock!r}: expected one of {sorted(CLOCKS)}")
    now = CLOCKS[clock]
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats} warmup={warmup}")
    run, runtime = ENGINES[engine](model, shapes, threads, seed, spin)
    for _ in range(warmup):
        run()
    ms = []
    for _ in range(repeats):
        t0 = now()
        run()
        ms.append((now() - t0) * 1e3)
    return {RUNNER_TAG: RUNNER_VERSION, "engine": engine, "runtime": runtime, "threads": int(threads),
            "spin": bool(spin), "clock": clock, "warmup": int(warmup), "ms": [round(v, 4) for v in ms]}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--shape", action="append", required=True, help="input shape, e.g. 1x48x256x256; one per input")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--engine", default="onnxruntime", choices=sorted(ENGINES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-spin", action="store_true", help="onnxruntime: idle pool threads sleep instead of spinning")
    p.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="wall: elapsed; cpu: process CPU time")
    a = p.parse_args(argv)
    try:
        shapes = [parse_shape(s) for s in a.shape]
        result = time_model(a.model, shapes, a.warmup, a.repeats, a.threads, a.engine, a.seed, not a.no_spin,
                            a.clock)
    except Exception as e:  # the host parses stdout; the reason goes to stderr with a failing status
        print(f"ens_runner error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
