"""Latency runners: the command that times one model on the device, and the parser of what it prints.

Built in:

- ``ens``: our own :mod:`latency_lut.device_runner` (pushed as one file, run with the device's Python + onnxruntime);
  it prints one JSON line with every timed run.
- ``ort_perf_test``: ONNX Runtime's ``onnxruntime_perf_test`` (``-m times -r N -x threads -I``); it prints a
  summary (``Average inference time cost: X ms``, ``Min/P50/P90/... Latency: X s``, ``Total inference requests``),
  not the single runs, so p10 is unknown and its one untimed first inference is the warm-up.
- a user's own tool: a command template plus a regex whose every match (named group ``ms``, or group 1) is one
  timed run, in ``unit``.

Templates are ``str.format`` strings with ``{model}`` (path on the device), ``{shape_args}`` (``--shape AxBxCxD``
per input), ``{shapes}`` (shapes joined by ``,``), ``{warmup}``, ``{repeats}``, ``{threads}``, ``{dir}`` (the
directory holding the pushed runner files) and ``{python}``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from latency_lut.device_runner import RUNNER_TAG
from latency_lut.stats import Stats, summarize

DEVICE_RUNNER = Path(__file__).with_name("device_runner.py")
UNITS: dict[str, float] = {"us": 1e-3, "ms": 1.0, "s": 1e3}


class RunnerOutputError(RuntimeError):
    """The runner printed nothing we can parse; the message carries its output."""

    def __init__(self, runner: str, reason: str, output: str):
        tail = output if len(output) <= 4000 else "...\n" + output[-4000:]
        super().__init__(f"runner {runner!r}: {reason}. Its output was:\n{tail if tail.strip() else '<empty>'}")
        self.output = output


@dataclass(frozen=True)
class RunResult:
    """One measurement: stats (ms), per-run samples when the runner reports them, and the runtime it names."""

    stats: Stats
    samples_ms: tuple[float, ...] | None = None
    runtime: str | None = None


def parse_ens_json(text: str, warmup: int) -> RunResult:
    """The last ``{"ens_runner": ...}`` JSON line of our runner's output."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not (line.startswith("{") and RUNNER_TAG in line):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        ms = data.get("ms")
        if not isinstance(ms, list) or not ms:
            raise RunnerOutputError("ens", "its JSON line has no 'ms' list of run times", text)
        samples = tuple(float(v) for v in ms)
        return RunResult(summarize(samples, int(data.get("warmup", warmup))), samples, data.get("runtime"))
    raise RunnerOutputError("ens", f"no JSON line with {RUNNER_TAG!r} found", text)


_NUM = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_ORT_AVG = re.compile(r"Average inference time cost(?: total)?:\s*" + _NUM + r"\s*ms")
_ORT_REQ = re.compile(r"Total inference requests:\s*(\d+)")
_ORT_LAT = re.compile(r"\b(Min|Max|P50|P90|P95|P99|P999) Latency:\s*" + _NUM + r"\s*s\b")


def parse_ort_perf_test(text: str, warmup: int = 1) -> RunResult:
    """``onnxruntime_perf_test`` summary -> stats. Median is ``P50 Latency``; old builds without percentile lines
    only print the average, which then stands in for the median. The tool has no warm-up option: its one untimed
    first inference is recorded as the warm-up whatever ``warmup`` asked for."""
    del warmup
    avg = _ORT_AVG.search(text)
    req = _ORT_REQ.search(text)
    lat = {m.group(1): float(m.group(2)) * 1e3 for m in _ORT_LAT.finditer(text)}
    if avg is None and "P50" not in lat:
        raise RunnerOutputError("ort_perf_test", "no 'Average inference time cost' or 'P50 Latency' line", text)
    n = int(req.group(1)) if req else 1
    mean = float(avg.group(1)) if avg else None
    median = lat.get("P50", mean)
    stats = Stats(median=median, n=max(n, 1), warmup=1, p10=None, p90=lat.get("P90"), mean=mean,
                  min=lat.get("Min"), max=lat.get("Max"))
    return RunResult(stats, None, None)


def make_regex_parser(regex: str, unit: str = "ms") -> Callable[[str, int], RunResult]:
    """Parser for a user's tool: every match of ``regex`` is one timed run (named group ``ms`` or group 1)."""
    if unit not in UNITS:
        raise ValueError(f"--runner-unit {unit!r}: expected one of {sorted(UNITS)}")
    try:
        pattern = re.compile(regex, re.MULTILINE)
    except re.error as e:
        raise ValueError(f"--runner-regex {regex!r} is not a valid regular expression: {e}") from None
    if pattern.groups < 1:
        raise ValueError(f"--runner-regex {regex!r} needs a capture group (or a named group 'ms') for the time")

    def parse(text: str, warmup: int) -> RunResult:
        group = "ms" if "ms" in pattern.groupindex else 1
        samples = []
        for m in pattern.finditer(text):
            try:
                samples.append(float(m.group(group)) * UNITS[unit])
            except (TypeError, ValueError):
                raise RunnerOutputError("custom", f"regex matched {m.group(0)!r} but its group is not a number",
                                        text) from None
        if not samples:
            raise RunnerOutputError("custom", f"regex {regex!r} matched nothing", text)
        return RunResult(summarize(samples, warmup), tuple(samples), None)
    return parse


@dataclass(frozen=True)
class RunnerSpec:
    """How to time a model: command template, output parser, files to push next to the models."""

    name: str
    template: str
    parse: Callable[[str, int], RunResult]
    push: tuple[Path, ...] = field(default_factory=tuple)
    python: str = "python3"

    def command(self, model: str, shapes: Sequence[Sequence[int]], warmup: int, repeats: int, threads: int,
                directory: str, quote: Callable[[str], str]) -> str:
        dims = ["x".join(str(int(d)) for d in s) for s in shapes]
        try:
            return self.template.format(model=quote(model), shape_args=" ".join(f"--shape {d}" for d in dims),
                                        shapes=",".join(dims), warmup=int(warmup), repeats=int(repeats),
                                        threads=int(threads), dir=quote(directory), python=self.python)
        except (KeyError, IndexError) as e:
            raise ValueError(f"runner {self.name!r}: template {self.template!r} uses unknown placeholder {e}; "
                             "known: model, shape_args, shapes, warmup, repeats, threads, dir, python") from None


ENS_TEMPLATE = ("{python} {dir}/device_runner.py --model {model} {shape_args} --warmup {warmup} "
                "--repeats {repeats} --threads {threads}")
ORT_PERF_TEMPLATE = "{dir}/onnxruntime_perf_test -e cpu -m times -r {repeats} -x {threads} -I {model}"
BUILTIN_RUNNERS: tuple[str, ...] = ("ens", "ort_perf_test")


def make_runner(name: str = "ens", command: str | None = None, regex: str | None = None, unit: str = "ms",
                python: str = "python3", push: Sequence[str | Path] = ()) -> RunnerSpec:
    """A built-in runner by name (``command`` may override its template), or a custom one (``command`` + ``regex``).

    ``ort_perf_test`` expects the binary in ``{dir}``: pass it in ``push`` (or give a ``command`` with its path).
    """
    extra = tuple(Path(p) for p in push)
    for p in extra:
        if not p.is_file():
            raise FileNotFoundError(f"--runner-push {p}: no such file")
    if regex is not None:
        if not command:
            raise ValueError("a custom runner needs --runner-cmd (a command template) as well as --runner-regex")
        return RunnerSpec("custom", command, make_regex_parser(regex, unit), extra, python)
    if name == "ens":
        return RunnerSpec("ens", command or ENS_TEMPLATE, parse_ens_json, (DEVICE_RUNNER,) + extra, python)
    if name == "ort_perf_test":
        return RunnerSpec("ort_perf_test", command or ORT_PERF_TEMPLATE, parse_ort_perf_test, extra, python)
    raise ValueError(f"--runner {name!r}: expected one of {BUILTIN_RUNNERS}, or --runner-cmd with --runner-regex")
