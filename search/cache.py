"""Persistent evaluation cache keyed by the canonical arch string, so no arch is ever scored twice.

The file (``cache.json`` in the run directory) records the *context* the scores belong to (task, supernet
checkpoint, LUT, resolution, validation set): scores from another context are refused, not silently reused.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from search.fileio import atomic_write_text

CACHE_VERSION = 1


class CacheContextError(ValueError):
    """The cache file on disk was made for another supernet / LUT / resolution."""


class EvalCache:
    """``{arch string: {objective name: value}}``, written atomically after every batch of new scores."""

    def __init__(self, path: str | Path | None = None, context: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.context: dict[str, Any] = json.loads(json.dumps(dict(context or {})))  # normalise to JSON types
        self._entries: dict[str, dict[str, float]] = {}
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"evaluation cache {self.path} is not valid JSON ({e}); delete it to start afresh") from e
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or "entries" not in data:
            raise ValueError(f"evaluation cache {self.path}: expected {{'version': {CACHE_VERSION}, 'context', "
                             f"'entries'}}; delete it to start afresh")
        if data.get("context", {}) != self.context:
            diff = sorted(k for k in set(self.context) | set(data.get("context", {}))
                          if self.context.get(k) != data["context"].get(k))
            raise CacheContextError(
                f"evaluation cache {self.path} was made for another setup (differs in: {', '.join(diff)}); "
                f"use another --out directory or delete {self.path.name}")
        self._entries = {str(k): dict(v) for k, v in data["entries"].items()}

    # ---- mapping view --------------------------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        return str(key) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, key: object) -> dict[str, float] | None:
        entry = self._entries.get(str(key))
        return dict(entry) if entry is not None else None

    def items(self) -> Iterator[tuple[str, dict[str, float]]]:
        return ((k, dict(v)) for k, v in self._entries.items())

    # ---- updates -------------------------------------------------------------------------------------
    def put_many(self, scores: Mapping[str, Mapping[str, float]]) -> None:
        """Add scores and persist the whole cache atomically (it is small: one line per arch)."""
        if not scores:
            return
        for key, values in scores.items():
            self._entries[str(key)] = {k: float(v) for k, v in values.items()}
        self.flush()

    def flush(self) -> None:
        if self.path is None:
            return
        data = {"version": CACHE_VERSION, "context": self.context, "entries": self._entries}
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")
