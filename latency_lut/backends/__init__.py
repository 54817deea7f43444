"""Measurement backends behind one interface (:class:`latency_lut.backends.base.Backend`): the host CPU
(``local``) and a phone over ADB (``adb``)."""
from latency_lut.backends.base import Backend, BackendError, RunnerFailed

__all__ = ["Backend", "BackendError", "RunnerFailed", "BACKENDS"]

BACKENDS: tuple[str, ...] = ("local", "adb")
