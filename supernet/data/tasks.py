"""Restoration tasks as a registry: each names its default synthetic degradation and its evaluation protocol.

Code that differs per task looks the task up here instead of branching on its name.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One task. ``metric_channel``: ``rgb`` (all channels) or ``y`` (ITU-R BT.601 luma, as Restormer's
    deraining evaluation); ``crop_border``: pixels dropped at each border before scoring."""

    name: str
    degradation: str
    metric_channel: str
    crop_border: int = 0
    description: str = ""

    @property
    def y_channel(self) -> bool:
        """Whether PSNR/SSIM are computed on the Y channel (pass to :mod:`supernet.metrics`)."""
        return self.metric_channel == "y"


TASKS: dict[str, TaskSpec] = {
    "denoise": TaskSpec("denoise", "noise", "rgb", description="additive white Gaussian noise (or real noise)"),
    "derain": TaskSpec("derain", "rain", "y", description="rain streaks; scored on the Y channel"),
    "deblur": TaskSpec("deblur", "blur", "rgb", description="motion blur from camera-shake trajectories"),
}


def get_task(name: str) -> TaskSpec:
    """The task called ``name``; an unknown name fails listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}") from None
