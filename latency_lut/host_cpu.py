"""Which CPU this host is, precisely enough to tell two CPU generations apart.

Virtual machines often report a generic model name ("AMD EPYC") for CPUs of different generations whose speed
ratios differ (a transformer block's matmuls gain more from full-width AVX-512 than an SSM block's memory-bound
steps), so the x86 family/model numbers and the widest vector extension are part of the description.
"""
from __future__ import annotations

import platform
from pathlib import Path


def _fields(text: str) -> dict[str, str]:
    """Each key's first value: the first processor's fields, plus lines that follow the processor blocks (ARM's
    ``Hardware``)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def describe_cpu(cpuinfo: str) -> str:
    """``/proc/cpuinfo`` text -> e.g. ``AMD EPYC (family 26 model 2, avx512)``; ARM: the ``Hardware`` line."""
    fields = _fields(cpuinfo)
    name = fields.get("model name") or fields.get("hardware") or platform.processor() or platform.machine()
    details = []
    if "cpu family" in fields and "model" in fields:
        details.append(f"family {fields['cpu family']} model {fields['model']}")
    flags = set(fields.get("flags", "").split())
    isa = next((f for f, flag in (("avx512", "avx512f"), ("avx2", "avx2"), ("avx", "avx")) if flag in flags), None)
    if isa:
        details.append(isa)
    return f"{name} ({', '.join(details)})" if details else name


def cpu_model() -> str:
    """This host's CPU (see :func:`describe_cpu`)."""
    try:
        return describe_cpu(Path("/proc/cpuinfo").read_text())
    except OSError:
        return platform.processor() or platform.machine()
