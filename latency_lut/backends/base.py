"""The backend interface: time one exported model at given input shapes on some device."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Sequence

from latency_lut.runners import RunResult


class BackendError(RuntimeError):
    """A backend could not be set up or used (no device, no runtime...)."""


class RunnerFailed(BackendError):
    """The runner ran but exited with a failing status; the message carries its output."""

    def __init__(self, command: str, status: int, output: str):
        tail = output if len(output) <= 4000 else "...\n" + output[-4000:]
        super().__init__(f"runner command exited with status {status}: {command}\nIts output was:\n"
                         f"{tail if tail.strip() else '<empty>'}")
        self.status, self.output = status, output


class Backend(ABC):
    """Time models on one device. Use as a context manager: ``open()`` prepares, ``close()`` cleans up."""

    name: str = "backend"
    #: file format of the models this backend times ("onnx", or "pt2" for torch eager)
    artifact: str = "onnx"

    def open(self) -> None:
        """Prepare the device (select it, push the runner). Idempotent."""

    def close(self) -> None:
        """Remove what was pushed or created."""

    @abstractmethod
    def measure(self, model_path: str | Path, input_shapes: Sequence[Sequence[int]], warmup: int, repeats: int,
                threads: int) -> RunResult:
        """Run ``warmup`` untimed then ``repeats`` timed inferences; return their stats in ms."""

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """Device description stored in the LUT's ``device`` field (model, SoC, ABI, OS, cores...)."""

    def __enter__(self) -> "Backend":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
