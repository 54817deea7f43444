"""Build each LUT entry as a small module at its real input shape and export it (ONNX; ``.pt2`` for torch eager).

Blocks and fixed parts are taken from a real :class:`supernet.HybridUNet` (the transformer/ssm candidate of the
stage's first slot, ``down1_2``, ``reduce_chan_level3``...), so an entry runs exactly the network's layers. The two
joins of the U-Net are wrapped with what the network's forward does around them: ``reduce`` = concat + 1x1 conv,
``concat`` = the level-1 concat, ``output`` = 3x3 conv + global residual.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from supernet.export import DEFAULT_OPSET, export_onnx
from supernet.unet import STAGE_MODULES

from latency_lut.enumerate import Entry

EXPORTER = f"torch.onnx.export (TorchScript exporter, constant folding) opset {DEFAULT_OPSET}"


class ConcatReduce(nn.Module):
    """``reduce(cat([up, skip], 1))`` as in the decoder levels 3 and 2."""

    def __init__(self, reduce: nn.Module) -> None:
        super().__init__()
        self.reduce = reduce

    def forward(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.reduce(torch.cat([up, skip], 1))


class Concat(nn.Module):
    """The level-1 skip join: concat only (the level-1 decoder works on 2*dim channels)."""

    def forward(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([up, skip], 1)


class OutputResidual(nn.Module):
    """``output(features) + image``: the last conv and Restormer's global residual."""

    def __init__(self, output: nn.Module) -> None:
        super().__init__()
        self.output = output

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.output(features) + image


#: entry op -> module built from the supernet (blocks use the stage's first slot; parts use their own module)
BUILDERS: dict[str, Callable[[nn.Module, Entry], nn.Module]] = {
    "patch_embed": lambda net, e: net.patch_embed,
    "down": lambda net, e: getattr(net, e.part),
    "up": lambda net, e: getattr(net, e.part),
    "reduce": lambda net, e: ConcatReduce(getattr(net, e.part)),
    "concat": lambda net, e: Concat(),
    "output": lambda net, e: OutputResidual(net.output),
}


def entry_module(net: nn.Module, entry: Entry) -> nn.Module:
    """The module an entry times, from a built HybridUNet."""
    if entry.is_block:
        slot = getattr(net, STAGE_MODULES[entry.stage])[0]
        if entry.op not in slot.candidates:
            raise ValueError(f"entry {entry.key}: the supernet's slots have no op {entry.op!r} "
                             f"(candidates: {list(slot.candidates)})")
        return slot.candidates[entry.op]
    if entry.op == "pair":  # two consecutive blocks of one stage (second slot when the stage has one)
        stage, ops = entry.part.split(":")
        first, second = ops.split("+")
        slots = getattr(net, STAGE_MODULES[stage])
        return nn.Sequential(slots[0].candidates[first], slots[min(1, len(slots) - 1)].candidates[second])
    if entry.op not in BUILDERS:
        raise ValueError(f"entry {entry.key}: no builder for fixed part {entry.op!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[entry.op](net, entry)


def example_inputs(shapes: tuple[tuple[int, ...], ...], seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(s, generator=gen) for s in shapes)  # the runner's range, [0, 1)


def export_module(module: nn.Module, shapes: tuple[tuple[int, ...], ...], path: Path, artifact: str) -> Path:
    """Export at fixed shapes: ``onnx`` through the supernet's exporter, ``pt2`` through ``torch.export``."""
    module = module.eval()
    inputs = example_inputs(shapes)
    if artifact == "onnx":
        return export_onnx(module, inputs, path)
    if artifact == "pt2":
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            program = torch.export.export(module, inputs)
        tmp = path.with_name(path.name + ".tmp")
        torch.export.save(program, str(tmp))
        tmp.replace(path)
        return path
    raise ValueError(f"unknown artifact format {artifact!r}; expected 'onnx' or 'pt2'")


def artifact_path(workdir: Path, name: str, artifact: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in name)
    return workdir / f"{safe}.{artifact}"


def export_entry(net: nn.Module, entry: Entry, workdir: Path, artifact: str = "onnx") -> Path:
    """Export one entry into ``workdir`` (reused when already there: a resumed build skips the export)."""
    path = artifact_path(workdir, entry.key, artifact)
    if path.is_file():
        return path
    return export_module(entry_module(net, entry), entry.input_shapes, path, artifact)
