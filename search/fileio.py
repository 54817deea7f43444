"""Atomic file writes: a long search may be killed at any moment, and a half-written cache or state must not be."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from supernet.fileio import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_pickle"]


def atomic_pickle(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
