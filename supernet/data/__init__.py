"""Restoration data: tasks, sources (embedded photos, paired folders, clean folders), crops and degradations.

``build_datasets(cfg, task, seed)`` is the entry point the training loop calls; sources are a registry
(:data:`SOURCE_BUILDERS`), tasks another (:data:`~supernet.data.tasks.TASKS`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from supernet.data.config import DataConfig, DegradationConfig
from supernet.data.datasets import FolderPairs, PairSource, SyntheticPairs, TrainCrops, ValCrops
from supernet.data.degradations import resolve_kind
from supernet.data.folders import find_pairs
from supernet.data.sources import EMBEDDED_IMAGES, EmbeddedImages, FolderImages, ImageList, Subset, split_indices
from supernet.data.tasks import TASKS, TaskSpec, get_task

__all__ = ["DataConfig", "DegradationConfig", "TASKS", "TaskSpec", "get_task", "build_datasets", "TrainCrops",
           "ValCrops", "EMBEDDED_IMAGES", "SOURCE_BUILDERS"]


def _split(images: ImageList, cfg: DataConfig) -> tuple[ImageList, ImageList]:
    train_idx, val_idx = split_indices(len(images.names), cfg.val_count, cfg.val_fraction, cfg.split_seed)
    return Subset(images, train_idx), Subset(images, val_idx)


def _synthetic(train: ImageList, val: ImageList, cfg: DataConfig, kind: str) -> tuple[PairSource, PairSource]:
    val_degradation = dataclasses.replace(cfg.degradation, sigma_range=[])  # validation at the fixed sigma
    return SyntheticPairs(train, kind, cfg.degradation), SyntheticPairs(val, kind, val_degradation)


def _embedded(cfg: DataConfig, kind: str) -> tuple[PairSource, PairSource]:
    images = EmbeddedImages(cfg.embedded_images or list(EMBEDDED_IMAGES), cfg.grayscale)
    return _synthetic(*_split(images, cfg), cfg, kind)


def _clean(cfg: DataConfig, kind: str) -> tuple[PairSource, PairSource]:
    images = FolderImages.from_folder(cfg.train_dir, cfg.grayscale, "data.train_dir")
    if cfg.val_dir:
        train, val = images, FolderImages.from_folder(cfg.val_dir, cfg.grayscale, "data.val_dir")
    else:
        train, val = _split(images, cfg)
    return _synthetic(train, val, cfg, kind)


def _paired(cfg: DataConfig, kind: str) -> tuple[PairSource, PairSource]:
    train = find_pairs(cfg.train_dir, cfg.input_subdir, cfg.target_subdir, cfg.input_tag, cfg.target_tag,
                       key="data.train_dir")
    if cfg.val_dir:
        val = find_pairs(cfg.val_dir, cfg.val_input_subdir or cfg.input_subdir,
                         cfg.val_target_subdir or cfg.target_subdir, cfg.input_tag, cfg.target_tag, key="data.val_dir")
    else:
        train_idx, val_idx = split_indices(len(train), cfg.val_count, cfg.val_fraction, cfg.split_seed)
        train, val = [train[i] for i in train_idx], [train[i] for i in val_idx]
    return FolderPairs(train, cfg.grayscale), FolderPairs(val, cfg.grayscale)


SOURCE_BUILDERS: dict[str, Callable[[DataConfig, str], tuple[PairSource, PairSource]]] = {
    "embedded": _embedded,
    "clean": _clean,
    "paired": _paired,
}


def build_datasets(cfg: DataConfig, task: str, seed: int) -> tuple[TrainCrops, ValCrops]:
    """(train, val) datasets for ``task`` from ``cfg``. Train crops follow ``seed``; the split and the
    validation degradations follow ``cfg.split_seed`` only. The patch size is the one in force at step 0
    (``cfg.stage_at(0)``); the loop calls ``train.set_patch_size`` when the progressive schedule moves on."""
    spec = get_task(task)
    kind = resolve_kind(cfg.degradation, spec.degradation)
    train_src, val_src = SOURCE_BUILDERS[cfg.source](cfg, kind)
    patch = cfg.stage_at(0)[0]
    train = TrainCrops(train_src, patch, cfg.repeat, cfg.augment, seed, cfg.pad_small)
    val = ValCrops(val_src, cfg.val_crop, cfg.val_crops, cfg.split_seed, cfg.pad_small)
    return train, val
