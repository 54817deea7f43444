"""Load an official Restormer checkpoint into the transformer branch of a supernet (or into a static subnet)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

WRAPPER_KEYS = ("params", "params_ema", "state_dict", "model")


def _unwrap(checkpoint: Any, source: str) -> dict[str, torch.Tensor]:
    if isinstance(checkpoint, (str, Path)):
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"Restormer checkpoint {path} does not exist")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"cannot read Restormer checkpoint {path}: {e}") from e
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"{source}: expected a state dict or {{'params': state_dict}}, got {type(checkpoint).__name__}")
    for key in WRAPPER_KEYS:  # official files are {'params': state_dict}
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            checkpoint = checkpoint[key]
            break
    state = {}
    for k, v in checkpoint.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{source}: entry {k!r} is a {type(v).__name__}, not a tensor")
        state[k[len("module."):] if k.startswith("module.") else k] = v
    return state


def restormer_key_map(net: nn.Module) -> dict[str, str]:
    """Restormer key -> key in ``net``: block weights go to each slot's ``candidates.transformer``."""
    mapping = {}
    for key in net.state_dict():
        if ".candidates." in key:
            slot, rest = key.split(".candidates.", 1)
            op, sub = rest.split(".", 1)
            if op == "transformer":
                mapping[f"{slot}.{sub}"] = key
        elif not _is_ssm_key(net, key):
            mapping[key] = key
    return mapping


def _is_ssm_key(net: nn.Module, key: str) -> bool:
    """Keys of SSM blocks in a static subnet (they have no Restormer counterpart)."""
    from .ssm import SSMBlock
    parts = key.split(".")
    mod = net
    for p in parts[:-1]:
        mod = getattr(mod, p, None)
        if mod is None:
            return False
        if isinstance(mod, SSMBlock):
            return True
    return False


def load_restormer(net: nn.Module, checkpoint: Any, strict: bool = True) -> nn.Module:
    """Copy official Restormer weights (a path, ``{'params': sd}`` or a bare state dict) into ``net``.

    Fills the transformer candidate of every slot and the fixed parts (embedding, resamplers, reductions, output).
    Raises one error listing missing keys, unexpected keys and shape mismatches.
    """
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "checkpoint"
    state = _unwrap(checkpoint, source)
    mapping = restormer_key_map(net)
    own = net.state_dict()
    # listed in the network's own order, so the first lines show the first layer that differs
    missing = [k for k in mapping if k not in state]
    unexpected = [k for k in state if k not in mapping]
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[mapping[k]].shape)}"
                  for k in mapping if k in state and state[k].shape != own[mapping[k]].shape]
    if strict and (missing or unexpected or mismatched):
        cfg = getattr(net, "config", {})
        sizes = {k: cfg.get(k) for k in ("inp_channels", "out_channels", "dim", "num_blocks",
                                         "num_refinement_blocks", "heads", "bias", "LayerNorm_type")}
        lines = [f"{source} does not fit this network ({sizes}):"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", mismatched)):
            if items:
                shown = items[:20] + ([f"... and {len(items) - 20} more"] if len(items) > 20 else [])
                lines.append(f"  {title} ({len(items)}): " + ", ".join(shown))
        raise ValueError("\n".join(lines))
    with torch.no_grad():
        for k, target in mapping.items():
            if k in state and state[k].shape == own[target].shape:
                own[target].copy_(state[k].to(own[target].dtype))
    return net
