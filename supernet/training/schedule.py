"""Optimiser and learning-rate schedule of one phase: AdamW + linear warm-up + cosine decay (timm), per step."""
from __future__ import annotations

from typing import Iterable

import torch
from timm.scheduler import CosineLRScheduler

from supernet.config import PhaseConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], pc: PhaseConfig) -> torch.optim.AdamW:
    """AdamW over ``params``. Parameters whose ``.grad`` is None in a step (unused candidates) are skipped by
    AdamW entirely, weight decay included, so the loop must zero grads with ``set_to_none=True``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the phase has no trainable parameters")
    return torch.optim.AdamW(params, lr=pc.lr, betas=tuple(pc.betas), weight_decay=pc.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, pc: PhaseConfig) -> CosineLRScheduler:
    """Stateless in the step: ``scheduler.step_update(step)`` sets the lr for that step, so resuming is exact."""
    return CosineLRScheduler(optimizer, t_initial=max(pc.steps, 1), lr_min=pc.lr_min, warmup_t=pc.warmup,
                             warmup_lr_init=pc.lr_min if pc.warmup else 0.0, warmup_prefix=False,
                             t_in_epochs=False)
