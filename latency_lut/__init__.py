"""ENS latency lookup table: per-block latencies of the supernet measured on the host or a phone over ADB.

``LUT.load(path).predict(arch, H, W)`` -> milliseconds; ``build_lut.py`` (:func:`latency_lut.build.build`)
measures one. The file format is in ``latency_lut/SCHEMA.md``.
"""
from latency_lut.lut import LUT, LUTError, MissingEntries
from latency_lut.stats import Stats

__all__ = ["LUT", "LUTError", "MissingEntries", "Stats"]
