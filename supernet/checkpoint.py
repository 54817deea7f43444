"""Checkpoints: one dict carrying weights, optimiser state, config, arch, phase, step and RNG states.

Written atomically (temp file in the same folder + ``os.replace``) so a run killed at any moment leaves either
the previous checkpoint or the new one, never a torn file. ``load_model`` rebuilds a network from the config
stored inside, so a checkpoint can be evaluated or searched on its own.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from supernet.arch import Arch
from supernet.config import Config, config_diff
from supernet.fileio import atomic_write
from supernet.fileio import atomic_write_text as _atomic_text

FORMAT_VERSION = 1
# Keys a resumed run may change without changing what it computes.
RESUME_MUTABLE: tuple[str, ...] = (
    "train.checkpoint_every", "train.val_every", "train.log_every", "train.image_every", "train.out_dir",
    "data.num_workers", "name",
)


class CheckpointMismatch(ValueError):
    """A checkpoint written under another config than the one given."""


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temp file next to ``path`` then rename it over ``path``."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | Path) -> Path:
    return _atomic_text(path, text)


def rng_state() -> dict:
    """This process's RNG states (python, numpy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint dict, with errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torn or foreign file
        raise ValueError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        keys = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"checkpoint {path} is not an ENS checkpoint (needs 'model' and 'config'; has {keys})")
    return ckpt


def check_config(ckpt: dict, cfg: Config, path: str | Path, ignore: tuple[str, ...] = RESUME_MUTABLE) -> None:
    """Raise :class:`CheckpointMismatch` listing the keys whose values differ between checkpoint and config."""
    diff = config_diff(ckpt["config"], cfg.to_dict(), ignore=ignore)
    if diff:
        raise CheckpointMismatch(
            f"checkpoint {path} was written with another config; differing keys (checkpoint -> given):\n  "
            + "\n  ".join(diff) + "\nUse the same config (or another --out) to resume.")


def config_of(ckpt: dict) -> Config:
    return Config.from_dict(ckpt["config"], source="checkpoint config")


def build_model(cfg: Config) -> nn.Module:
    """A fresh ``HybridUNet`` from the ``model`` section of a config."""
    from dataclasses import asdict

    from supernet import HybridUNet

    return HybridUNet(**asdict(cfg.model))


def load_model(path: str | Path, map_location: str | torch.device = "cpu", ema: bool = True
               ) -> tuple[nn.Module, Config]:
    """Rebuild the network stored in a checkpoint: a supernet, or an extracted subnet when it holds an arch
    and ``kind == "subnet"``. ``ema``: use the EMA weights when the checkpoint has them. Returns eval-mode model."""
    ckpt = load_checkpoint(path, map_location)
    cfg = config_of(ckpt)
    net = build_model(cfg)
    arch = Arch.parse(ckpt["arch"]) if ckpt.get("arch") else None
    if ckpt.get("kind") == "subnet":
        if arch is None:
            raise ValueError(f"checkpoint {path}: a subnet checkpoint must store its arch")
        net = net.extract(arch)
    state = ckpt["ema"] if ema and ckpt.get("ema") is not None else ckpt["model"]
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path}: weights do not fit the network built from its config: {e}") from e
    if arch is not None and ckpt.get("kind") != "subnet":
        net.set_arch(arch)
    return net.to(map_location).eval(), cfg
