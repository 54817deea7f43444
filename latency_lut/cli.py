"""``build_lut.py``'s argument parsing and wiring: config -> backend -> :func:`latency_lut.build.build`."""
from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from latency_lut.backends import BACKENDS
from latency_lut.backends.base import Backend
from latency_lut.enumerate import parse_resolution
from latency_lut.lut import CALIBRATIONS, FIT_MIN_NETWORKS
from latency_lut.runners import BUILTIN_RUNNERS, make_runner


def load_model_config(path: str | None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """HybridUNet constructor args from a training config (``model:`` section); defaults = Restormer size."""
    from supernet.config import load_config

    return dataclasses.asdict(load_config(path, list(overrides)).model)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Measure the supernet's per-block latency lookup table.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--backend", required=True, help=f"one of {', '.join(BACKENDS)}")
    p.add_argument("--config", help="training config whose model: section defines the supernet "
                                    "(default: Restormer-sized defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, e.g. model.dim=24")
    p.add_argument("--resolution", action="append", default=[], help="N or HxW (repeatable); default 256")
    p.add_argument("--out", required=True, help="LUT JSON file (resumed when it exists)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2, help="untimed runs per entry")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per entry")
    p.add_argument("--fidelity-archs", type=int, default=10, help="whole networks timed end to end (0: skip)")
    p.add_argument("--fidelity-warmup", type=int, default=1)
    p.add_argument("--fidelity-repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=1, help="measure everything this many times, round-robin, in "
                                                         "separate processes, and pool the runs (shared hosts)")
    p.add_argument("--calibrate", default="none", choices=list(CALIBRATIONS),
                   help="boundary_pairs: also measure every two consecutive blocks together and correct the sums "
                        "for work the runtime fuses or overlaps across block boundaries; fit: scale the "
                        "transformer and SSM block sums to the whole networks timed for fidelity (needs "
                        f"--fidelity-archs >= {FIT_MIN_NETWORKS}; reports the leave-one-out error)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random fidelity archs")
    p.add_argument("--keep-models", action="store_true", help="keep the exported entry/network models")
    p.add_argument("--engine", default="onnxruntime", choices=["onnxruntime", "torch"],
                   help="local backend: onnxruntime on .onnx, or torch eager on torch.export .pt2")
    p.add_argument("--no-spin", action="store_true", help="local backend: onnxruntime pool threads sleep instead "
                                                          "of spinning (a host shared with other work)")
    p.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                   help="local backend: wall = elapsed time; cpu = process CPU time (with --threads 1, leaves out "
                        "time other jobs on a shared host took the cores)")
    p.add_argument("--models-dir", help="where exported models go (reused across builds; default <out>_models)")
    p.add_argument("--in-process", action="store_true", help="local backend: time in this process (faster, "
                                                            "less isolated)")
    g = p.add_argument_group("adb")
    g.add_argument("--serial", help="device serial (default: the only attached device)")
    g.add_argument("--adb", default="adb", help="path of the adb client")
    g.add_argument("--adb-port", type=int, help="adb server port (adb -P)")
    g.add_argument("--remote-dir", default="/data/local/tmp/ens_lut")
    g.add_argument("--retries", type=int, default=3, help="retries of a transient adb failure (backoff 1,2,4.. s)")
    g.add_argument("--device-python", default="python3", help="the phone's Python that runs the ens runner")
    g.add_argument("--keep-remote", action="store_true", help="leave the pushed files on the device")
    r = p.add_argument_group("runner / timing")
    r.add_argument("--runner", default="ens", help=f"built-in runner: {', '.join(BUILTIN_RUNNERS)}")
    r.add_argument("--runner-cmd", help="command template (placeholders {model} {shape_args} {shapes} {warmup} "
                                        "{repeats} {threads} {dir} {python})")
    r.add_argument("--runner-regex", help="with --runner-cmd: regex whose every match is one run's time")
    r.add_argument("--runner-unit", default="ms", choices=["us", "ms", "s"])
    r.add_argument("--runner-push", action="append", default=[], help="extra file to push next to the runner "
                                                                      "(e.g. the onnxruntime_perf_test binary)")
    r.add_argument("--taskset", help="CPU mask for taskset, e.g. f0 (big cores)")
    r.add_argument("--cooldown", type=float, default=0.0, help="seconds to pause before each measurement")
    r.add_argument("--max-temp", type=float, help="adb: also wait until the hottest thermal zone is below this (C)")
    return p


def make_backend(a: argparse.Namespace) -> Backend:
    if a.backend not in BACKENDS:
        raise SystemExit(f"build_lut.py: unknown --backend {a.backend!r}; expected one of {', '.join(BACKENDS)}")
    python = shlex.quote(sys.executable) if a.backend == "local" else a.device_python
    runner = make_runner(a.runner, a.runner_cmd, a.runner_regex, a.runner_unit, python, a.runner_push)
    if a.backend == "local":
        from latency_lut.backends.local import LocalBackend

        return LocalBackend(runner, engine=a.engine, isolate=not a.in_process, taskset=a.taskset,
                            cooldown_s=a.cooldown, spin=not a.no_spin, clock=a.clock)
    from latency_lut.backends.adb import AdbBackend, AdbClient, Cooldown

    client = AdbClient(a.adb, a.serial, a.adb_port, retries=a.retries)
    cooldown = Cooldown(a.cooldown, a.max_temp) if (a.cooldown or a.max_temp is not None) else None
    return AdbBackend(client, runner, a.remote_dir, a.taskset, cooldown, keep=a.keep_remote)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main else None  # `kill` stops the runners too
    try:
        return _run(a, argv)
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, previous)


def _run(a: argparse.Namespace, argv: list[str]) -> int:
    from latency_lut.build import BuildError, BuildOptions, build
    from latency_lut.lut import LUTError

    try:
        backend = make_backend(a)
        cfg = load_model_config(a.config, a.set)
        opts = BuildOptions(resolutions=[parse_resolution(r) for r in (a.resolution or ["256"])],
                            warmup=a.warmup, repeats=a.repeats, threads=a.threads,
                            fidelity_archs=a.fidelity_archs, fidelity_warmup=a.fidelity_warmup,
                            fidelity_repeats=a.fidelity_repeats, rounds=a.rounds, seed=a.seed, calibrate=a.calibrate,
                            keep_models=a.keep_models, workdir=Path(a.models_dir) if a.models_dir else None,
                            command="python build_lut.py " + shlex.join(argv))
        build(cfg, backend, Path(a.out), opts)
    except (BuildError, LUTError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"build_lut.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nbuild_lut.py: interrupted; measured entries are saved in {a.out}; rerun the same command to "
              "resume", file=sys.stderr)
        return 130
    return 0
