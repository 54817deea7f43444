"""A seeded synthetic stand-in for (supernet PSNR, LUT latency), to test and tune the search without a model.

Latency is additive per stage (like a LUT): transformer blocks cost more, most at the high-resolution stages.
Quality is not additive: per-stage gains with diminishing returns, plus encoder/decoder pair interactions (a
transformer on both ends of a skip helps more than twice one end) and a small deterministic per-arch jitter
(as supernet PSNR has). Both count their calls so tests can check the cache.
"""
from __future__ import annotations

import hashlib

import numpy as np

from supernet.arch import STAGES, Arch

# Downsampling factor per stage (enc1..refinement): transformer cost ~ pixels x channels^2 at that stage.
_SCALES = np.array([1, 2, 4, 8, 4, 2, 1, 1], dtype=float)
_SKIP_PAIRS = ((0, 6), (1, 5), (2, 4))   # enc1-dec1, enc2-dec2, enc3-dec3


class SyntheticObjectives:
    """``quality(arch)`` (dB, higher is better) and ``latency(arch)`` (ms) for stage or block archs."""

    def __init__(self, seed: int = 0, blocks: tuple[int, ...] = (4, 6, 6, 8, 6, 6, 4, 4)) -> None:
        rng = np.random.default_rng(seed)
        self.seed = seed
        self.blocks = tuple(blocks)
        dims = 48 * 2 ** np.minimum(np.log2(_SCALES), 3)
        t_cost = (1 / _SCALES**2) * (dims / 48) ** 2 * rng.uniform(0.6, 1.4, len(STAGES))
        self.t_ms = 3.0 * t_cost / t_cost.sum() * len(STAGES)          # per stage, all blocks transformer
        self.s_ms = self.t_ms * rng.uniform(0.15, 0.45, len(STAGES))
        self.fixed_ms = 2.0
        self.gain = rng.uniform(0.05, 0.6, len(STAGES))
        self.pair = rng.uniform(0.05, 0.35, len(_SKIP_PAIRS))
        self.calls = {"quality": 0, "latency": 0}

    def _t_share(self, arch: Arch) -> np.ndarray:
        """Fraction of transformer blocks per stage."""
        return np.array([g.count("T") / len(g) for g in arch.stages])

    def quality(self, arch: Arch) -> float:
        self.calls["quality"] += 1
        t = self._t_share(arch)
        linear = float(self.gain @ t)
        inter = sum(w * t[i] * t[j] for w, (i, j) in zip(self.pair, _SKIP_PAIRS))
        digest = hashlib.sha256(f"{self.seed}:{arch}".encode()).digest()
        jitter = (digest[0] / 255.0 - 0.5) * 0.04
        return 28.0 + 2.5 * (1 - np.exp(-(linear + inter) / 1.5)) + jitter

    def latency(self, arch: Arch) -> float:
        self.calls["latency"] += 1
        t = self._t_share(arch)
        return float(self.fixed_ms + t @ self.t_ms + (1 - t) @ self.s_ms)
