"""Run logging on rank 0: a plain text log file, TensorBoard scalars and image grids, tqdm-safe console lines."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm


class RunLogger:
    """Writes ``<out>/train.log`` and TensorBoard events under ``<out>/tb``; does nothing on other ranks."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self._writer = None
        self._file = None
        if enabled:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.out_dir / "train.log", "a", buffering=1)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.out_dir / "tb"))

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        tqdm.write(message)
        self._file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self._writer is not None:
            self._writer.add_scalar(tag, value, step)

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        for k, v in values.items():
            self.scalar(f"{prefix}/{k}", v, step)

    def images(self, tag: str, inp: torch.Tensor, out: torch.Tensor, target: torch.Tensor, step: int,
               max_images: int = 4) -> None:
        """One grid: rows of input | output | target for the first ``max_images`` of a batch."""
        if self._writer is None:
            return
        from torchvision.utils import make_grid

        n = min(max_images, inp.shape[0])
        # (n, C, H, W) x3 -> (3n, C, H, W), interleaved so each row is one image's triple
        triples = torch.stack([inp[:n], out[:n], target[:n]], dim=1).flatten(0, 1)
        grid = make_grid(triples.detach().float().clamp(0, 1).cpu(), nrow=3, padding=2)
        self._writer.add_image(tag, grid, step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None
