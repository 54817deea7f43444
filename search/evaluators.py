"""The search's objective functions, each ``fn(arch) -> float``.

* :class:`SupernetQuality` - PSNR of the supernet on that path over a fixed validation set (higher is better).
* :class:`LUTLatency` - the LUT's predicted latency at the target resolution (ms).
* :class:`TransformerPenalty` - the LUT-free proxy: the share of the network's transformer cost the arch keeps
  (per slot weight 1 = transformer count, or the FLOPs the transformer adds over the ssm at that slot).
* :class:`ParamCount` - parameters of the extracted path (millions), an optional third objective.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from supernet.arch import STAGES, Arch, stage_sizes_from
from supernet.metrics import psnr


class SupernetQuality:
    """Mean per-image PSNR of ``model`` with ``arch``'s path on fixed validation items.

    The items (``{"input", "target"}`` tensors, (C, H, W)) are read once and kept stacked by shape, so every arch
    sees exactly the same crops and noise and a population is scored without touching the dataset again.
    """

    def __init__(self, model: nn.Module, items: Sequence[Mapping[str, Any]], y_channel: bool = False,
                 crop_border: int = 0, batch_size: int = 8, device: str | torch.device | None = None,
                 progress: bool = False) -> None:
        if not items:
            raise ValueError("SupernetQuality: the validation set is empty (check data.val_count / val_crops)")
        if not hasattr(model, "set_arch"):
            raise TypeError(f"SupernetQuality needs a supernet with set_arch(), got {type(model).__name__}")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.y_channel, self.crop_border, self.progress = y_channel, crop_border, progress
        groups: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = defaultdict(list)
        for i, item in enumerate(items):
            x, t = item["input"], item["target"]
            if x.dim() != 3 or x.shape[1:] != t.shape[1:]:
                raise ValueError(f"validation item {i}: expected (C, H, W) input and target of one size, got "
                                 f"{tuple(x.shape)} and {tuple(t.shape)}")
            groups[tuple(x.shape)].append((x, t))
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        for pairs in groups.values():
            for s in range(0, len(pairs), batch_size):
                chunk = pairs[s:s + batch_size]
                self.batches.append((torch.stack([p[0] for p in chunk]).to(self.device),   # (B, C, H, W)
                                     torch.stack([p[1] for p in chunk]).to(self.device)))
        self.n_images = len(items)

    @classmethod
    def from_dataset(cls, model: nn.Module, dataset: Any, task: str, limit: int | None = None,
                     **kwargs: Any) -> "SupernetQuality":
        """Read ``dataset`` (a ``ValCrops``: fixed crops, fixed degradation seeds) for ``task``'s protocol."""
        from supernet.data.tasks import get_task

        spec = get_task(task)
        n = len(dataset) if limit is None else min(limit, len(dataset))
        items = [dataset[i] for i in range(n)]
        return cls(model, items, y_channel=spec.y_channel, crop_border=spec.crop_border, **kwargs)

    @torch.inference_mode()
    def __call__(self, arch: Arch) -> float:
        self.model.set_arch(arch)
        total = 0.0
        for x, t in self.batches:
            y = self.model(x).float().clamp(0, 1)
            for i in range(len(y)):
                total += psnr(y[i], t[i], data_range=1.0, y_channel=self.y_channel, crop_border=self.crop_border)
        return total / self.n_images

    def batch(self, archs: Sequence[Arch]) -> list[float]:
        previous = getattr(self.model, "arch", None)
        try:
            return [self(a) for a in tqdm(archs, desc="psnr", leave=False, disable=not self.progress)]
        finally:
            if previous is not None:
                self.model.set_arch(previous)


class LUTLatency:
    """``lut.predict(arch, H, W)``; checks at construction that the LUT covers this model and resolution."""

    def __init__(self, lut: Any, height: int, width: int | None = None, model_config: Mapping | None = None,
                 stage_sizes: Any | None = None) -> None:
        self.lut, self.height, self.width = lut, int(height), int(width if width is not None else height)
        if model_config is not None and hasattr(lut, "check_model"):
            lut.check_model(dict(model_config), where="supernet checkpoint")
        if stage_sizes is not None:   # fail now, naming what to measure, rather than mid-search
            for letter in ("T", "S"):
                self(Arch.uniform(stage_sizes, letter, "block"))

    def __call__(self, arch: Arch) -> float:
        return float(self.lut.predict(arch, self.height, self.width))


class TransformerPenalty:
    """Share (0..1) of the all-transformer cost an arch keeps: ``sum of its transformer slots' weights / total``.

    ``weights`` has one positive number per block slot (canonical order). :meth:`count` weighs every block 1 (the
    paper's transformer-count penalty); :meth:`flops` weighs each by the FLOPs its transformer costs over its ssm
    at that stage's input size, so no hardware profiling is needed but high-resolution stages count more.
    """

    def __init__(self, stage_sizes: Any, weights: Sequence[float]) -> None:
        self.stage_sizes = stage_sizes_from(stage_sizes)
        if len(weights) != sum(self.stage_sizes) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"TransformerPenalty: need {sum(self.stage_sizes)} non-negative slot weights, "
                             f"not all zero; got {list(weights)}")
        self.raw = [float(w) for w in weights]
        self.total = sum(self.raw)      # summed in slot order, as __call__ does: all-transformer is exactly 1

    @property
    def weights(self) -> list[float]:
        """Per-slot share of the total (sums to 1)."""
        return [w / self.total for w in self.raw]

    @classmethod
    def count(cls, stage_sizes: Any) -> "TransformerPenalty":
        return cls(stage_sizes, [1.0] * sum(stage_sizes_from(stage_sizes)))

    @classmethod
    def flops(cls, model: nn.Module, resolution: int = 64) -> "TransformerPenalty":
        """Weights from FLOPs counted with ``torch.utils.flop_counter`` at ``resolution`` (block FLOPs grow
        linearly with H x W here, so a small probe gives the same shares as the target size)."""
        from torch.utils.flop_counter import FlopCounterMode

        dims, scales = model.stage_dims, model.stage_scales
        stage_index = {s: i for i, s in enumerate(STAGES)}
        weights = []
        param = next(model.parameters())
        for stage, _, slot in model.slots():
            i = stage_index[stage]
            side = max(resolution // scales[i], 1)
            x = torch.zeros(1, dims[i], side, side, device=param.device, dtype=param.dtype)  # (B, C, H, W)
            cost = {}
            for op in ("transformer", "ssm"):
                counter = FlopCounterMode(display=False)
                with counter, torch.inference_mode():
                    slot.candidates[op](x)
                cost[op] = counter.get_total_flops()
            weights.append(max(cost["transformer"] - cost["ssm"], 0.0))
        return cls(model.stage_sizes, weights)

    def __call__(self, arch: Arch) -> float:
        ops = [op for stage in arch.block_ops(self.stage_sizes) for op in stage]
        return sum(w if op == "transformer" else 0.0 for w, op in zip(self.raw, ops)) / self.total


class ParamCount:
    """Parameters (millions) of the path ``arch`` selects: the fixed parts plus the chosen candidate per slot."""

    def __init__(self, model: nn.Module) -> None:
        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        self.stage_sizes = model.stage_sizes
        self.per_slot: list[dict[str, int]] = []
        in_slots = 0
        for _, _, slot in model.slots():
            sizes = {op: count(m) for op, m in slot.candidates.items()}
            self.per_slot.append(sizes)
            in_slots += sum(sizes.values())
        self.fixed = count(model) - in_slots

    def __call__(self, arch: Arch) -> float:
        ops = [op for stage in arch.block_ops(self.stage_sizes) for op in stage]
        return (self.fixed + sum(s[op] for s, op in zip(self.per_slot, ops))) / 1e6
