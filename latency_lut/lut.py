"""The LUT file: per-entry latency statistics of one device + runtime, and ``predict(arch, H, W)``.

Schema (JSON, ``version`` 1; see ``latency_lut/SCHEMA.md``)::

    {
      "version": 1,
      "device":   {...},                    # backend metadata: model, soc, abi, os/android, cores, threads, ...
      "runtime":  {"tag": "ort", "dtype": "fp32", "format": "onnx", "exporter": "...", "runner": "ens",
                   "version": "onnxruntime 1.32.0", "threads": 2, "warmup": 2, "repeats": 10},
      "model":    {...},                    # HybridUNet constructor args the keys were made from
      "resolutions": [[256, 256]],          # H, W the blocks were measured for
      "entries":  {"<key>": {"median": ms, "p10": ms, "p90": ms, "n": int, "warmup": int, ...}},
      "calibration": null | {"method": "boundary_pairs" | "fit" | "linear", ...},
      "fidelity": null | {"resolution": [H, W], "n": int, "mape": %, "spearman": rho, "max_ape": %,
                          "archs": [{"arch": str, "predicted_ms": ms, "measured_ms": ms, ...}], ...},
      "created": ISO date, "command": "python build_lut.py ..."
    }

``predict`` is the sum of the entry medians along the arch's path (fixed parts included), corrected by the
calibration when the build recorded one.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernet.arch import Arch

from latency_lut.enumerate import Layout, padded, parse_resolution
from latency_lut.fit import FITTED_PARTS, predict_with
from latency_lut.stats import Stats

SCHEMA_VERSION = 1
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "version": int, "device": dict, "runtime": dict, "model": dict, "resolutions": list, "entries": dict,
}
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "calibration": (dict, type(None)), "fidelity": (dict, type(None)), "created": str, "command": str,
}
RUNTIME_REQUIRED: tuple[str, ...] = ("tag", "dtype")
CALIBRATIONS: tuple[str, ...] = ("none", "boundary_pairs", "fit")  # build_lut.py --calibrate
FIT_MIN_NETWORKS = 5  # --calibrate fit: two scales, and enough networks left for a meaningful leave-one-out error


class LUTError(ValueError):
    """A LUT file is malformed, or does not cover what was asked of it."""


class MissingEntries(LUTError):
    """Keys an arch needs that the LUT has not measured."""

    def __init__(self, missing: list[str], command: str):
        self.missing = missing
        shown = "\n  ".join(missing[:20]) + ("\n  ..." if len(missing) > 20 else "")
        super().__init__(f"{len(missing)} LUT entr{'y is' if len(missing) == 1 else 'ies are'} missing:\n  {shown}\n"
                         f"Measure them with:\n  {command}")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a temp file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a LUT is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass
class LUT:
    """Latencies of one device + runtime for one model config. Load with :meth:`load`; query with :meth:`predict`."""

    device: dict[str, Any]
    runtime: dict[str, Any]
    model: dict[str, Any]
    resolutions: list[tuple[int, int]]
    entries: dict[str, Stats] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    fidelity: dict[str, Any] | None = None
    created: str = ""
    command: str = ""
    version: int = SCHEMA_VERSION
    path: Path | None = None
    _keys: dict[tuple[str, int, int], list] = field(default_factory=dict, repr=False, compare=False)

    # ---- file I/O ----------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version, "device": self.device, "runtime": self.runtime, "model": self.model,
            "resolutions": [list(r) for r in self.resolutions],
            "entries": {k: s.to_json() for k, s in self.entries.items()},
            "calibration": self.calibration, "fidelity": self.fidelity, "created": self.created,
            "command": self.command,
        }

    def save(self, path: str | Path | None = None) -> Path:
        path = Path(path or self.path or "")
        if not str(path):
            raise LUTError("LUT.save: no path given and the LUT was not loaded from a file")
        write_json_atomic(path, self.to_json())
        self.path = path
        return path

    @classmethod
    def from_json(cls, data: Any, where: str = "LUT") -> "LUT":
        """Validate and build; errors name the bad field (``<file>: entries.<key>.median: ...``)."""
        if not isinstance(data, dict):
            raise LUTError(f"{where}: top level must be a JSON object, got {type(data).__name__}")
        for name, typ in REQUIRED.items():
            if name not in data:
                raise LUTError(f"{where}: missing field '{name}' (required: {', '.join(REQUIRED)})")
            if not isinstance(data[name], typ) or isinstance(data[name], bool):
                raise LUTError(f"{where}: field '{name}' must be {_tname(typ)}, got {type(data[name]).__name__}")
        for name, typ in OPTIONAL.items():
            if name in data and not isinstance(data[name], typ):
                raise LUTError(f"{where}: field '{name}' must be {_tname(typ)}, got {type(data[name]).__name__}")
        unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise LUTError(f"{where}: unknown field(s) {unknown}")
        if data["version"] != SCHEMA_VERSION:
            raise LUTError(f"{where}: field 'version' is {data['version']}, this code reads version {SCHEMA_VERSION}"
                           " (rebuild the LUT with build_lut.py)")
        for k in RUNTIME_REQUIRED:
            if not isinstance(data["runtime"].get(k), str):
                raise LUTError(f"{where}: field 'runtime.{k}' must be a string")
        resolutions = []
        for i, r in enumerate(data["resolutions"]):
            if not (isinstance(r, list) and len(r) == 2 and all(isinstance(d, int) and d > 0 for d in r)):
                raise LUTError(f"{where}: field 'resolutions[{i}]' must be [H, W] positive ints, got {r!r}")
            resolutions.append((r[0], r[1]))
        entries = {}
        for key, stats in data["entries"].items():
            try:
                entries[key] = Stats.from_json(stats, where=f"entries.{key}")
            except ValueError as e:
                raise LUTError(f"{where}: field {e}") from None
        cal = data.get("calibration")
        if cal is not None and cal.get("method") == "fit":
            scales = cal.get("scales")
            if not (isinstance(scales, dict) and set(FITTED_PARTS) <= set(scales)
                    and all(isinstance(scales[p], (int, float)) and scales[p] >= 0 for p in FITTED_PARTS)):
                raise LUTError(f"{where}: field 'calibration.scales' must map {', '.join(FITTED_PARTS)} to numbers "
                               f">= 0, got {scales!r}")
        fid = data.get("fidelity")
        if fid is not None:
            for k in ("mape", "spearman", "n", "archs"):
                if k not in fid:
                    raise LUTError(f"{where}: field 'fidelity.{k}' is missing")
        return cls(device=data["device"], runtime=data["runtime"], model=data["model"], resolutions=resolutions,
                   entries=entries, calibration=data.get("calibration"), fidelity=fid,
                   created=data.get("created", ""), command=data.get("command", ""), version=data["version"])

    @classmethod
    def load(cls, path: str | Path) -> "LUT":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"LUT file {path} does not exist; build it with "
                                    f"'python build_lut.py --backend local --config <config> --out {path}'")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise LUTError(f"{path}: not valid JSON: {e}") from None
        lut = cls.from_json(data, where=str(path))
        lut.path = path
        return lut

    # ---- queries -----------------------------------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        return Layout.from_config(self.model)

    def build_command(self, resolution: tuple[int, int] | None = None) -> str:
        """The build_lut.py command that (re)measures this LUT, optionally at one more resolution."""
        res = list(self.resolutions)
        if resolution is not None and resolution not in res:
            res.append(resolution)
        backend = self.device.get("backend", "local")
        parts = ["python build_lut.py", f"--backend {backend}"]
        if backend == "adb" and self.device.get("serial"):
            parts.append(f"--serial {self.device['serial']}")
        parts.append("--config <the model's config>")
        parts += [f"--resolution {h}x{w}" for h, w in res]
        parts.append(f"--out {self.path or '<this LUT>'}")
        return " ".join(parts)

    def keys_for(self, arch: Arch | str, h: int, w: int | None = None) -> list[str]:
        """Keys along ``arch``'s path at H x W, with multiplicity."""
        hw = padded(parse_resolution([h, w if w is not None else h]))
        cache_key = (str(arch), *hw)
        if cache_key in self._keys:  # the search asks for the same archs again and again
            return self._keys[cache_key]
        covered = {padded(r) for r in self.resolutions}
        if hw not in covered:
            raise LUTError(f"LUT {self.path or ''} was built for {_res(self.resolutions)}, not {hw[0]}x{hw[1]}; add "
                           f"the resolution with:\n  {self.build_command(hw)}")
        keys = [e.key for e in self.layout.arch_entries(arch, hw, self.runtime["dtype"], self.runtime["tag"])]
        self._keys[cache_key] = keys
        return keys

    def _boundaries(self, arch: Arch | str, hw: tuple[int, int]) -> list[tuple[str, str, str]]:
        cache_key = ("pairs:" + str(arch), *hw)
        if cache_key not in self._keys:
            self._keys[cache_key] = self.layout.arch_boundaries(arch, hw, self.runtime["dtype"], self.runtime["tag"])
        return self._keys[cache_key]  # type: ignore[return-value]

    def missing(self, keys: list[str]) -> list[str]:
        return sorted({k for k in keys if k not in self.entries})

    def predict(self, arch: Arch | str, h: int, w: int | None = None, calibrated: bool = True) -> float:
        """Predicted latency (ms) of ``arch`` at H x W: sum of entry medians, then the calibration if any.

        Calibration ``boundary_pairs``: for every two blocks that follow each other directly, add what running them
        together costs beyond running them apart (``pair - first - second``, measured as its own entry), which
        captures work the runtime fuses or overlaps across a block boundary. ``fit``: ``fixed + s_T * transformer
        blocks + s_S * SSM blocks`` with the scales fitted to the build's whole networks (``latency_lut/fit.py``).
        ``linear``: ``sum * scale + offset``.
        """
        if calibrated and (self.calibration or {}).get("method") == "fit":
            return predict_with(self.calibration["scales"], self.breakdown(arch, h, w))
        keys = self.keys_for(arch, h, w)
        method = (self.calibration or {}).get("method") if calibrated else None
        hw = padded(parse_resolution([h, w if w is not None else h]))
        bounds = self._boundaries(arch, hw) if method == "boundary_pairs" else []
        missing = self.missing(keys + [p for p, _, _ in bounds])
        if missing:
            raise MissingEntries(missing, self.build_command())
        total = sum(self.entries[k].median for k in keys)
        e = self.entries
        total += sum(e[p].median - e[a].median - e[b].median for p, a, b in bounds)
        if method == "linear":
            total = total * float(self.calibration.get("scale", 1.0)) + float(self.calibration.get("offset_ms", 0.0))
        return float(total)

    def breakdown(self, arch: Arch | str, h: int, w: int | None = None) -> dict[str, float]:
        """Uncalibrated ms along ``arch``'s path split into ``transformer`` blocks, ``ssm`` blocks and ``fixed``
        parts (embedding, resamplers, reductions, concatenations, output): what bounds any speed-up from blocks."""
        keys = self.keys_for(arch, h, w)
        missing = self.missing(keys)
        if missing:
            raise MissingEntries(missing, self.build_command())
        parts = {"transformer": 0.0, "ssm": 0.0, "fixed": 0.0}
        for k in keys:
            kind = k.split("-", 1)[0]
            parts[kind if kind in parts else "fixed"] += self.entries[k].median
        return parts

    def check_model(self, model_config: dict[str, Any], where: str = "config") -> None:
        """Raise if the LUT was built for another model config (its keys would not match)."""
        diffs = [k for k in sorted(set(self.model) | set(model_config)) if self.model.get(k) != model_config.get(k)]
        if diffs:
            detail = ", ".join(f"{k}: LUT {self.model.get(k)!r} vs {where} {model_config.get(k)!r}" for k in diffs)
            raise LUTError(f"LUT {self.path or ''} was built for another model ({detail}); rebuild it with:\n  "
                           f"{self.build_command()}")


def _tname(typ: type | tuple[type, ...]) -> str:
    types = typ if isinstance(typ, tuple) else (typ,)
    names = {dict: "an object", list: "a list", int: "an integer", str: "a string", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _res(resolutions: list[tuple[int, int]]) -> str:
    return ", ".join(f"{h}x{w}" for h, w in resolutions) or "no resolution"
