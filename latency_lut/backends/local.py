"""``local`` backend: time models on this host's CPU, each measurement in a fresh process.

A fresh process per model (the same runner file the phone gets, run by this Python) keeps one model's heap and
thread-pool state from leaking into the next. Timing hygiene: every process gets the same allocator settings
(``MALLOC_MMAP_MAX_=0``, a large ``MALLOC_TRIM_THRESHOLD_``) so glibc does not hand big buffers back to the OS
between runs (page faults slowed a 48-channel transformer block 2.5x), and explicit thread counts.
``isolate=False`` times in this process instead (fast, for tests).
"""
from __future__ import annotations

import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from latency_lut import device_runner
from latency_lut.backends.base import Backend, BackendError, RunnerFailed
from latency_lut.host_cpu import cpu_model
from latency_lut.runners import RunnerSpec, RunResult, make_runner
from latency_lut.stats import summarize

TIMING_ENV: dict[str, str] = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
                              "MALLOC_TOP_PAD_": str(1 << 28)}
ENGINES: dict[str, str] = {"onnxruntime": "onnx", "torch": "pt2"}


class LocalBackend(Backend):
    """Host CPU through onnxruntime (default) or torch eager (``engine="torch"``, models exported as ``.pt2``)."""

    name = "local"

    def __init__(self, runner: RunnerSpec | None = None, engine: str = "onnxruntime", isolate: bool = True,
                 taskset: str | None = None, cooldown_s: float = 0.0, timeout_s: float = 1800.0,
                 spin: bool = True, clock: str = "wall"):
        if engine not in ENGINES:
            raise ValueError(f"local backend engine {engine!r}: expected one of {sorted(ENGINES)}")
        if clock not in device_runner.CLOCKS:
            raise ValueError(f"clock {clock!r}: expected one of {sorted(device_runner.CLOCKS)}")
        self.engine, self.artifact, self.spin, self.clock = engine, ENGINES[engine], spin, clock
        self.runner = runner or make_runner("ens", python=shlex.quote(sys.executable))
        extra = (" --engine torch" if engine == "torch" else "") + ("" if spin else " --no-spin") + (
            f" --clock {clock}" if clock != "wall" else "")
        if extra and self.runner.name == "ens":
            self.runner = RunnerSpec("ens", self.runner.template + extra, self.runner.parse, self.runner.push,
                                     self.runner.python)
        if taskset and not shutil.which("taskset"):
            raise BackendError("--taskset needs the 'taskset' tool (util-linux) on this host")
        self.isolate, self.taskset, self.cooldown_s, self.timeout_s = isolate, taskset, cooldown_s, timeout_s
        self.runtime: str | None = None
        self.threads: int | None = None
        self._dir: str | None = None

    def open(self) -> None:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="ens_lut_local_")
            for f in self.runner.push:
                shutil.copy2(f, Path(self._dir) / Path(f).name)

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def measure(self, model_path: str | Path, input_shapes: Sequence[Sequence[int]], warmup: int, repeats: int,
                threads: int) -> RunResult:
        self.open()
        if self.cooldown_s > 0:
            time.sleep(self.cooldown_s)
        self.threads = threads
        if not self.isolate and self.runner.name == "ens":
            out = device_runner.time_model(str(model_path), [tuple(s) for s in input_shapes], warmup, repeats,
                                           threads, self.engine, spin=self.spin, clock=self.clock)
            result = RunResult(summarize(out["ms"], warmup), tuple(out["ms"]), out["runtime"])
        else:
            result = self._run_process(model_path, input_shapes, warmup, repeats, threads)
        self.runtime = result.runtime or self.runtime or self.runner.name
        return result

    def _run_process(self, model_path: str | Path, input_shapes: Sequence[Sequence[int]], warmup: int,
                     repeats: int, threads: int) -> RunResult:
        assert self._dir is not None
        cmd = self.runner.command(str(Path(model_path).resolve()), input_shapes, warmup, repeats, threads,
                                  self._dir, shlex.quote)
        if self.taskset:
            cmd = f"taskset {shlex.quote(self.taskset)} {cmd}"
        env = {**os.environ, **TIMING_ENV, "OMP_NUM_THREADS": str(threads)}
        # its own process group, so an interrupted build (Ctrl-C, timeout) takes the runner down with it
        proc = subprocess.Popen(cmd, shell=True, cwd=self._dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=self.timeout_s)
        except BaseException as e:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(e, subprocess.TimeoutExpired):
                raise BackendError(f"runner took longer than {self.timeout_s:.0f} s: {cmd}") from e
            raise
        if proc.returncode != 0:
            raise RunnerFailed(cmd, proc.returncode, output)
        return self.runner.parse(output, warmup)

    def metadata(self) -> dict[str, Any]:
        try:
            allowed = len(os.sched_getaffinity(0))
        except AttributeError:
            allowed = os.cpu_count() or 1
        return {
            "backend": self.name, "model": platform.node() or "host", "soc": cpu_model(),
            "abi": platform.machine(), "os": f"{platform.system()} {platform.release()}",
            "cores": os.cpu_count(), "cores_allowed": allowed, "threads": self.threads, "taskset": self.taskset,
            "runner": self.runner.name, "engine": self.engine, "spin": self.spin, "clock": self.clock,
            "runtime_version": self.runtime,
            "process_per_model": self.isolate, "timing_env": TIMING_ENV if self.isolate else {},
        }
