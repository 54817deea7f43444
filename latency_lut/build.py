"""The LUT build: enumerate -> export -> measure (resumable, in rounds) -> fidelity check on whole networks.

Every entry is written to the LUT file (atomically) as soon as it is measured, and so is every fidelity network:
an interrupted build (Ctrl-C, the phone unplugged, ``adb`` dying) loses nothing and the same command resumes
where it stopped. Fidelity: at least ``fidelity_archs`` whole networks (all-T, all-S, then seeded random archs,
alternating stage and block granularity) are exported and timed end to end on the same backend; the LUT stores
each one's predicted and measured time, their ``mape``, ``spearman`` and ``n``.

``rounds``: each entry and network is measured that many times in separate runner processes, round-robin, and the
runs are pooled. On a host shared with other work the load changes from minute to minute; measuring everything
once per round spreads it over all entries and networks alike, so it cancels in the prediction instead of
inflating whichever entries happened to run in a busy minute.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import spearmanr
from tqdm import tqdm

from supernet.arch import Arch
from supernet.export import DEFAULT_OPSET

from latency_lut.backends.base import Backend, BackendError
from latency_lut.enumerate import Layout, padded
from latency_lut.export_entries import EXPORTER, artifact_path, export_entry, export_module
from latency_lut.fit import fit_scales, leave_one_out_ape
from latency_lut.keys import RUNTIME_TAGS
from latency_lut.lut import CALIBRATIONS, FIT_MIN_NETWORKS, LUT, LUTError
from latency_lut.runners import RunnerOutputError
from latency_lut.stats import Stats, pool


@dataclass
class BuildOptions:
    """What to measure and how often."""

    resolutions: list[tuple[int, int]]
    warmup: int = 2
    repeats: int = 10
    threads: int = 2
    fidelity_archs: int = 10
    fidelity_warmup: int = 1
    fidelity_repeats: int = 5
    rounds: int = 1
    calibrate: str = "none"  # "none" | "boundary_pairs" (also time consecutive block pairs) | "fit" (scale blocks)
    seed: int = 0
    dtype: str = "fp32"
    workdir: Path | None = None
    keep_models: bool = False
    command: str = ""
    ops: Sequence[str] | None = None  # block ops to measure (default: every op the supernet has)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.resolutions:
            raise ValueError("at least one --resolution is needed")
        if self.repeats < 1 or self.warmup < 0 or self.threads < 1 or self.rounds < 1:
            raise ValueError(f"need --repeats >= 1, --warmup >= 0, --threads >= 1, --rounds >= 1; got "
                             f"{self.repeats}, {self.warmup}, {self.threads}, {self.rounds}")
        if self.fidelity_archs != 0 and self.fidelity_archs < 2:
            raise ValueError(f"--fidelity-archs must be 0 (skip) or >= 2 (all-T and all-S at least), "
                             f"got {self.fidelity_archs}")
        if self.calibrate not in CALIBRATIONS:
            raise ValueError(f"--calibrate {self.calibrate!r}: expected one of {CALIBRATIONS}")
        if self.calibrate == "fit" and self.fidelity_archs < FIT_MIN_NETWORKS:
            raise ValueError(f"--calibrate fit fits two block scales to the whole networks the build times, so it "
                             f"needs --fidelity-archs >= {FIT_MIN_NETWORKS}, got {self.fidelity_archs}")
        if self.dtype != "fp32":
            raise ValueError(f"dtype {self.dtype!r}: only fp32 is exported today")


class BuildError(RuntimeError):
    """A build step failed; what was measured so far is saved and the same command resumes."""


CALIBRATION_RECORDS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "boundary_pairs": {"method": "boundary_pairs",
                       "description": "every two directly consecutive blocks were also measured as one model; "
                                      "predict adds (pair - first - second) per boundary of the path"},
}


def fidelity_archs(sizes: Sequence[int], n: int, seed: int) -> list[Arch]:
    """all-T, all-S, then seeded random archs (stage and block granularity alternating), all distinct."""
    archs = [Arch.uniform(sizes, "T"), Arch.uniform(sizes, "S")]
    seen = {a.to_block(sizes) for a in archs}
    i = 0
    while len(archs) < n:
        gran = "stage" if i % 2 == 0 else "block"
        a = Arch.random(sizes, seed * 1000 + i, granularity=gran)
        i += 1
        if a.to_block(sizes) not in seen:
            seen.add(a.to_block(sizes))
            archs.append(a)
        if i > 100 * n:
            raise ValueError(f"cannot draw {n} distinct archs from this space")
    return archs


def fidelity_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """MAPE (%), max APE, Spearman rho and n of predicted vs measured."""
    pred = np.array([r["predicted_ms"] for r in rows], dtype=float)
    meas = np.array([r["measured_ms"] for r in rows], dtype=float)
    ape = np.abs(pred - meas) / meas * 100.0
    varies = len(rows) >= 2 and np.ptp(pred) > 0 and np.ptp(meas) > 0  # a rank correlation of a constant is undefined
    rho = float(spearmanr(pred, meas).statistic) if varies else None
    return {"n": len(rows), "mape": float(ape.mean()), "max_ape": float(ape.max()), "spearman": rho,
            "bias_pct": float(((pred - meas) / meas * 100.0).mean())}


def new_lut(model_cfg: dict[str, Any], backend: Backend, opts: BuildOptions) -> LUT:
    runtime = {"tag": RUNTIME_TAGS[backend.artifact], "dtype": opts.dtype, "format": backend.artifact,
               "exporter": EXPORTER if backend.artifact == "onnx" else "torch.export (.pt2)",
               "opset": DEFAULT_OPSET if backend.artifact == "onnx" else None,
               "runner": getattr(getattr(backend, "runner", None), "name", None), "version": None,
               "threads": opts.threads, "warmup": opts.warmup, "repeats": opts.repeats,
               "clock": getattr(backend, "clock", "wall")}
    return LUT(device={}, runtime=runtime, model=dict(model_cfg), resolutions=[], command=opts.command,
               created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def open_lut(out: Path, model_cfg: dict[str, Any], backend: Backend, opts: BuildOptions) -> LUT:
    """The LUT to fill: a fresh one, or the partial one at ``out`` (resume) after checking it matches."""
    fresh = new_lut(model_cfg, backend, opts)
    if not out.exists():
        return fresh
    lut = LUT.load(out)
    lut.check_model(model_cfg, where="--config")
    for k in ("tag", "dtype", "threads", "clock"):
        if lut.runtime.get(k) != fresh.runtime.get(k):
            raise LUTError(f"{out} holds a LUT with runtime.{k}={lut.runtime.get(k)!r}, this build uses "
                           f"{fresh.runtime.get(k)!r}: pass another --out (or delete {out}) to start a new LUT")
    return lut


def check_device(lut: LUT, meta: dict[str, Any], out: Path) -> None:
    """A resumed LUT must come from the same device (same backend, model and SoC)."""
    if not lut.device:
        return
    for k in ("backend", "model", "soc", "abi"):
        if lut.device.get(k) != meta.get(k):
            raise LUTError(f"{out} was measured on another device ({k}: {lut.device.get(k)!r} there, "
                           f"{meta.get(k)!r} now): pass another --out to build a LUT for this device")


def _measure(backend: Backend, path: Path, shapes, warmup: int, repeats: int, threads: int, what: str, out: Path):
    try:
        return backend.measure(path, shapes, warmup, repeats, threads)
    except (BackendError, RunnerOutputError) as e:
        raise BuildError(f"measuring {what} failed: {e}\nEverything measured so far is saved in {out}; fix the "
                         "cause and rerun the same command to resume.") from e


def rounds_done(stats: Stats | None, wanted: int) -> int:
    """Rounds an entry has; a summary-only runner's entry (no samples to pool) counts as complete."""
    if stats is None:
        return 0
    return wanted if stats.samples is None else int(stats.rounds or 1)


def build(model_cfg: dict[str, Any], backend: Backend, out: str | Path, opts: BuildOptions,
          log: Callable[[str], None] = print, make_net: Callable[[dict[str, Any]], Any] | None = None) -> LUT:
    """Measure every missing entry and fidelity network, ``opts.rounds`` times each; returns the saved LUT.

    Round r measures every entry (in a seeded shuffled order) and then every fidelity network once, so load that
    varies over the build (other processes, thermal state) spreads over all of them alike instead of biasing
    whichever entries ran during a busy minute."""
    import torch
    from supernet.unet import HybridUNet

    out = Path(out)
    layout = Layout.from_config(model_cfg)
    lut = open_lut(out, model_cfg, backend, opts)
    workdir = Path(opts.workdir or out.with_name(out.stem + "_models"))
    res = [padded(r) for r in opts.resolutions]
    for r in res:
        if r not in lut.resolutions:
            lut.resolutions.append(r)
    entries = layout.all_entries(res, opts.dtype, lut.runtime["tag"], opts.ops)
    if opts.calibrate == "boundary_pairs":
        entries += layout.pair_entries(res, opts.dtype, lut.runtime["tag"], opts.ops)
    fid_hw = res[0]
    archs = fidelity_archs(layout.sizes, opts.fidelity_archs, opts.seed) if opts.fidelity_archs else []
    old = lut.fidelity if (lut.fidelity and tuple(lut.fidelity.get("resolution", ())) == fid_hw) else None
    rows: dict[str, dict[str, Any]] = {r["arch"]: r for r in (old["archs"] if old else []) if "samples" in r}
    R = opts.rounds
    todo = sum(R - min(R, rounds_done(lut.entries.get(e.key), R)) for e in entries)
    todo_nets = sum(R - min(R, rows[str(a)]["rounds"] if str(a) in rows else 0) for a in archs)
    log(f"LUT {out}: {len(entries)} entries at {', '.join(f'{h}x{w}' for h, w in res)} and {len(archs)} fidelity "
        f"networks, {R} round(s) each: {todo} entry and {todo_nets} network measurements to go")
    in_shape = (1, int(model_cfg.get("inp_channels", 3)), *fid_hw)
    cfg_id = hashlib.sha1(json.dumps(model_cfg, sort_keys=True).encode()).hexdigest()[:8]  # cached net exports

    with backend:
        meta = backend.metadata()
        check_device(lut, meta, out)
        net = (make_net or (lambda cfg: HybridUNet(**cfg)))(model_cfg).eval() if todo + todo_nets else None
        bar = tqdm(total=todo + todo_nets, desc="LUT", unit="run", dynamic_ncols=True)
        for r in range(R):
            order = list(entries)
            random.Random(opts.seed * 7919 + r).shuffle(order)
            for entry in order:
                if rounds_done(lut.entries.get(entry.key), R) > r:
                    continue
                bar.set_postfix_str(f"round {r + 1}/{R} {entry.key}", refresh=True)
                path = export_entry(net, entry, workdir, backend.artifact)
                result = _measure(backend, path, entry.input_shapes, opts.warmup, opts.repeats, opts.threads,
                                  f"entry {entry.key}", out)
                lut.entries[entry.key] = pool(lut.entries.get(entry.key), result.stats, result.samples_ms)
                _stamp(lut, backend, meta, opts)
                lut.save(out)
                bar.update(1)
            for arch in archs:
                row = rows.get(str(arch))
                if row is not None and row["rounds"] > r:
                    continue
                bar.set_postfix_str(f"round {r + 1}/{R} network {arch}", refresh=True)
                path = artifact_path(workdir, f"net-{cfg_id}-{arch}-{fid_hw[0]}x{fid_hw[1]}", backend.artifact)
                if not path.is_file():
                    with torch.no_grad():
                        export_module(net.extract(arch).eval(), (in_shape,), path, backend.artifact)
                result = _measure(backend, path, (in_shape,), opts.fidelity_warmup, opts.fidelity_repeats,
                                  opts.threads, f"network {arch}", out)
                prev = Stats(median=row["measured_ms"], n=row["n"], warmup=row["warmup"], rounds=row["rounds"],
                             samples=tuple(row["samples"])) if row else None
                st = pool(prev, result.stats, result.samples_ms)
                rows[str(arch)] = {"arch": str(arch), "predicted_ms": None, "measured_ms": st.median,
                                   "measured_p10": st.p10, "measured_p90": st.p90, "n": st.n,
                                   "warmup": st.warmup, "rounds": st.rounds or R, "samples": list(st.samples or ())}
                lut.fidelity = {"resolution": list(fid_hw), "complete": False, "mape": None, "spearman": None,
                                "n": len(rows), "archs": list(rows.values())}
                _stamp(lut, backend, meta, opts)
                lut.save(out)
                bar.update(1)
        bar.close()
        _stamp(lut, backend, meta, opts)
        lut.calibration = CALIBRATION_RECORDS.get(opts.calibrate)
        if opts.calibrate == "fit":
            lut.calibration = fit_calibration(lut, [rows[str(a)] for a in archs], fid_hw)
        if archs:
            finish_fidelity(lut, [rows[str(a)] for a in archs], fid_hw, opts)
            log(format_fidelity(lut.fidelity))
        lut.save(out)
    if not opts.keep_models:
        shutil.rmtree(workdir, ignore_errors=True)
    return lut


def _stamp(lut: LUT, backend: Backend, meta: dict[str, Any], opts: BuildOptions) -> None:
    version = getattr(backend, "runtime", None) or lut.runtime.get("version")
    lut.device = {**meta, "threads": opts.threads, "runtime_version": version, "date": _today()}
    lut.runtime.update(version=version, rounds=opts.rounds)


def finish_fidelity(lut: LUT, rows: list[dict[str, Any]], hw: tuple[int, int], opts: BuildOptions) -> dict:
    """Predict every fidelity network from the finished entries and store the comparison."""
    for row in rows:
        row["predicted_ms"] = lut.predict(row["arch"], *hw)
        row["predicted_uncalibrated_ms"] = lut.predict(row["arch"], *hw, calibrated=False)
    raw = fidelity_summary([{**r, "predicted_ms": r["predicted_uncalibrated_ms"]} for r in rows])
    lut.fidelity = {"resolution": list(hw), "warmup": opts.fidelity_warmup, "repeats": opts.fidelity_repeats,
                    "rounds": opts.rounds, "complete": True, **fidelity_summary(rows), "archs": rows,
                    "uncalibrated": {k: raw[k] for k in ("mape", "max_ape", "bias_pct", "spearman")}}
    cal = lut.calibration or {}
    if cal.get("method") == "fit":  # in-sample figures above; the leave-one-out ones say what to expect elsewhere
        lut.fidelity["fit"] = {k: cal[k] for k in ("scales", "loo_mape", "loo_max_ape")}
    return lut.fidelity


def format_fidelity(fid: dict[str, Any]) -> str:
    lines = [f"fidelity at {fid['resolution'][0]}x{fid['resolution'][1]} ({fid['n']} networks):"]
    for r in fid["archs"]:
        ape = abs(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] * 100
        lines.append(f"  {r['arch']:<40} predicted {r['predicted_ms']:9.1f} ms  measured {r['measured_ms']:9.1f} ms"
                     f"  ({ape:4.1f}%)")
    lines.append(f"  MAPE {fid['mape']:.2f}%  max {fid['max_ape']:.2f}%  bias {fid['bias_pct']:+.2f}%  "
                 f"Spearman {format_rho(fid['spearman'])}  n {fid['n']}")
    raw = fid.get("uncalibrated")
    if raw and any(r.get("predicted_uncalibrated_ms") != r["predicted_ms"] for r in fid["archs"]):
        lines.append(f"  without calibration: MAPE {raw['mape']:.2f}%  max {raw['max_ape']:.2f}%  "
                     f"bias {raw['bias_pct']:+.2f}%  Spearman {format_rho(raw['spearman'])}")
    fit = fid.get("fit")
    if fit:
        lines.append(f"  fitted to these networks: transformer blocks x {fit['scales']['transformer']:.3f}, SSM blocks "
                     f"x {fit['scales']['ssm']:.3f}; leave-one-out MAPE {fit['loo_mape']:.2f}%  "
                     f"max {fit['loo_max_ape']:.2f}%")
    return "\n".join(lines)


def format_rho(rho: float | None) -> str:
    return "n/a (constant)" if rho is None else f"{rho:.3f}"


def fit_calibration(lut: LUT, rows: list[dict[str, Any]], hw: tuple[int, int]) -> dict[str, Any]:
    """The ``fit`` calibration record: block scales fitted to the timed networks, and their leave-one-out error."""
    data = [{**lut.breakdown(r["arch"], *hw), "measured_ms": r["measured_ms"]} for r in rows]
    loo = leave_one_out_ape(data)
    return {"method": "fit", "scales": fit_scales(data), "n": len(data), "resolution": list(hw),
            "loo_mape": float(np.mean(loo)), "loo_max_ape": float(np.max(loo)),
            "description": "fixed parts + scale x transformer blocks + scale x SSM blocks, the two scales fitted "
                           "(non-negative least squares on relative error) to the whole networks timed at "
                           "'resolution'; loo_*: each network predicted by the scales fitted to the others"}


def _today() -> str:
    return _dt.datetime.now(_dt.timezone.utc).date().isoformat()
