"""Endless, resumable training batches: epoch-seeded shuffles sharded across ranks, progressive patch sizes.

The position in the data is two ints (epoch, batches taken in that epoch); together with datasets whose crops
derive from (seed, epoch, index), restoring them replays exactly the batches an uninterrupted run would see.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from supernet.data.config import DataConfig
from supernet.training.distributed import DistEnv


@dataclass
class StreamState:
    epoch: int = 0
    offset: int = 0  # batches already taken in this epoch
    stage: int = -1  # index into data.progressive (-1: the fixed patch_size/batch_size)


def progressive_stage(progressive: list, step: int) -> int:
    """Index of the last ``[start_step, patch, batch]`` entry with ``start_step <= step`` (-1 if none)."""
    stage = -1
    for i, entry in enumerate(progressive):
        if int(entry[0]) <= step:
            stage = i
    return stage


class BatchStream:
    """``next(step)`` returns the batch for that step of a phase."""

    def __init__(self, dataset: Dataset, cfg: DataConfig, seed: int, env: DistEnv,
                 state: StreamState | None = None) -> None:
        self.dataset, self.cfg, self.seed, self.env = dataset, cfg, seed, env
        self.state = state or StreamState()
        self._iter = None

    def _sizes(self, stage: int) -> tuple[int, int]:
        if stage < 0:
            return self.cfg.patch_size, self.cfg.batch_size
        _, patch, batch = self.cfg.progressive[stage]
        return int(patch), int(batch)

    def _indices(self, epoch: int, batch_size: int) -> list[int]:
        n, world = len(self.dataset), self.env.world_size
        per_rank = n // world
        if per_rank < batch_size:
            raise ValueError(f"the training set has {n} items: fewer than batch_size {batch_size} x {world} "
                             "process(es); lower data.batch_size or raise data.repeat")
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(n, generator=g)[: per_rank * world]
        mine = perm[self.env.rank::world].tolist()
        usable = len(mine) // batch_size * batch_size
        return mine[:usable]

    def _open(self) -> None:
        patch, batch = self._sizes(self.state.stage)
        for hook, value in (("set_patch_size", patch), ("set_epoch", self.state.epoch)):
            if hasattr(self.dataset, hook):
                getattr(self.dataset, hook)(value)
        indices = self._indices(self.state.epoch, batch)[self.state.offset * batch:]
        if not indices:  # the epoch was used up exactly at the checkpoint
            self.state.epoch, self.state.offset = self.state.epoch + 1, 0
            return self._open()
        loader = DataLoader(self.dataset, batch_size=batch, sampler=indices, num_workers=self.cfg.num_workers,
                            drop_last=True, pin_memory=self.env.device.type == "cuda")
        self._iter = iter(loader)

    def next(self, step: int) -> dict:
        stage = progressive_stage(self.cfg.progressive, step)
        if stage != self.state.stage:  # a new patch/batch size starts a fresh epoch
            if self.state.stage != -1 or self.state.offset or self.state.epoch:
                self.state.epoch += 1
            self.state.stage, self.state.offset, self._iter = stage, 0, None
        if self._iter is None:
            self._open()
        try:
            batch = next(self._iter)
        except StopIteration:
            self.state.epoch, self.state.offset = self.state.epoch + 1, 0
            self._open()
            batch = next(self._iter)
        self.state.offset += 1
        return batch
