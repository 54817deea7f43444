"""Helpers of the search tests (imported by name: pytest puts this folder on sys.path): a synthetic problem factory,
a tiny supernet checkpoint, a hand-made LUT."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from search.cache import EvalCache
from search.problem import ArchProblem, Objective, Scorer
from search.synthetic import SyntheticObjectives

REPO = Path(__file__).resolve().parents[2]


def make_synthetic(seed: int = 0, budget: float | None = None, cache: str | Path | None = None,
                   granularity: str = "stage", blocks: tuple[int, ...] = (1,) * 8,
                   params: bool = False) -> tuple[ArchProblem, SyntheticObjectives]:
    """An ArchProblem on the synthetic objectives (latency cheap, quality expensive), counting calls."""
    syn = SyntheticObjectives(seed, blocks=blocks if granularity == "block" else (4, 6, 6, 8, 6, 6, 4, 4))
    objectives = [Objective("psnr", syn.quality, maximize=True), Objective("latency_ms", syn.latency, cheap=True)]
    if params:
        objectives.append(Objective("params_m", lambda a: float(a.count("T")), cheap=True))
    scorer = Scorer(objectives, EvalCache(cache, context={"synthetic": seed}))
    return ArchProblem(scorer, blocks, granularity, budget=budget), syn


@pytest.fixture
def synthetic():
    return make_synthetic


@pytest.fixture(scope="session")
def tiny_config():
    """The demo config with a smaller validation set (2 crops of 32 px)."""
    from supernet.config import load_config

    return load_config(REPO / "configs" / "demo.yaml", ["data.val_count=2", "data.val_crop=32", "data.val_crops=1"])


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, tiny_config) -> Path:
    """A freshly initialised demo-size supernet saved as an ENS checkpoint (what train.py writes)."""
    from supernet.checkpoint import atomic_save, build_model

    torch.manual_seed(0)
    net = build_model(tiny_config)
    path = tmp_path_factory.mktemp("ckpt") / "supernet.pt"
    atomic_save({"model": net.state_dict(), "config": tiny_config.to_dict(), "phase": "supernet", "step": 0}, path)
    return path


def make_lut(model_config: dict[str, Any], resolution: int, path: Path | None = None,
             skip: str | None = None) -> Any:
    """A LUT covering every entry of ``model_config`` at ``resolution``: ssm blocks cost a third of transformer
    ones, scaled by channels x pixels. ``skip``: leave out the entries whose key contains it."""
    from latency_lut.enumerate import Layout
    from latency_lut.lut import LUT
    from latency_lut.stats import Stats

    entries = {}
    for e in Layout.from_config(model_config).all_entries([(resolution, resolution)], "fp32", "ort"):
        if skip and skip in e.key:
            continue
        shape = e.input_shapes[0]
        work = shape[1] * shape[2] * shape[3] / 1e4
        factor = {"transformer": 3.0, "ssm": 1.0}.get(e.op, 0.2)
        entries[e.key] = Stats(median=round(factor * work, 6), n=5, warmup=1)
    lut = LUT(device={"backend": "local", "model": "test"}, runtime={"tag": "ort", "dtype": "fp32"},
              model=dict(model_config), resolutions=[(resolution, resolution)], entries=entries)
    if path is not None:
        lut.save(path)
    return lut
