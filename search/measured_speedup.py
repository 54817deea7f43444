"""Measured speed-ups over all-T for the re-ranking's candidates, so only archs that are fast in fact are fine-tuned.

A LUT predicts a whole network within a few percent; at the edge of a 1/3 budget that is the difference between
2.9x and 3.1x. ``rerank.py --min-speedup X`` extracts every candidate and all-T from the supernet (latency does not
depend on the weights, so the inherited ones serve), exports them to ONNX and times them on this host exactly like the
pipeline's measured column (:func:`supernet.pipeline.measure_latency`: onnxruntime, a fresh process per model,
round-robin rounds, median of the pooled runs), with the threads, repeats and rounds the LUT was measured with. The
figures are kept in ``<out>/measured.json``: a resumed re-ranking reuses them, so its pool stays the same.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from search.fileio import atomic_write_text

MEASURED_FILE = "measured.json"

Measure = Callable[[Sequence[str]], dict[str, float]]  # archs (all-T included) -> median ms


def timing_of_lut(lut_path: str | Path) -> dict[str, int]:
    """threads / repeats / rounds the LUT was built with; refuses a LUT of another device (a phone: this host's
    timings would say nothing about it)."""
    from latency_lut.lut import LUT

    path = Path(lut_path)
    try:
        lut = LUT.load(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the LUT the search used: {e}") from None
    backend = lut.device.get("backend", "local")
    if backend != "local":
        raise ValueError(f"{path}: measured on another device (backend {backend!r}); --min-speedup times candidates "
                         f"on this host, which says nothing about that device (drop it, or search with a host LUT)")
    runtime = lut.runtime
    return {"threads": int(runtime.get("threads") or 1), "repeats": int(runtime.get("repeats") or 5),
            "rounds": int(runtime.get("rounds") or 3)}


def onnx_measure(supernet_path: Path, resolution: int, threads: int, repeats: int, rounds: int) -> Measure:
    """Times archs extracted from the supernet checkpoint (ONNX files in a temporary folder, removed after)."""

    def measure(archs: Sequence[str]) -> dict[str, float]:
        from supernet.checkpoint import load_model
        from supernet.pipeline import measure_latency

        supernet, cfg = load_model(supernet_path)
        models = {arch: supernet.extract(arch) for arch in archs}
        with tempfile.TemporaryDirectory(prefix="ens-rerank-onnx-") as tmp:
            return measure_latency(models, resolution, threads, repeats, Path(tmp), channels=cfg.model.inp_channels,
                                   rounds=rounds)

    return measure


def measured_speedups(archs: Sequence[str], all_t: str, out: Path, measure: Measure,
                      settings: dict[str, Any]) -> dict[str, Any]:
    """``{"all_t": arch, "ms": {arch: ms}, "speedup": {arch: all-T ms / ms}, **settings}`` for ``archs`` and all-T
    timed in the same rounds; read back from ``<out>/measured.json`` when that holds every arch under the same
    ``settings`` (timing options), else measured and written there."""
    path = Path(out) / MEASURED_FILE
    wanted = [all_t, *[a for a in archs if a != all_t]]
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
        except ValueError:
            cached = {}
        if (cached.get("all_t") == all_t and set(wanted) <= set(cached.get("ms", {}))
                and all(cached.get(k) == v for k, v in settings.items())):
            return cached
    ms = measure(wanted)
    missing = sorted(set(wanted) - set(ms))
    if missing:
        raise RuntimeError(f"latency measurement returned no time for {missing}")
    result = {"all_t": all_t, "ms": {a: ms[a] for a in wanted},
              "speedup": {a: ms[all_t] / ms[a] for a in wanted}, **settings}
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return result
