"""Canonical LUT keys: one string per distinct block or fixed part, once-for-all style.

``{op}-c{channels}-in{H}x{W}-{op parameters}-{dtype}-{runtime}``, for example::

    transformer-c48-in256x256-h1-ffn2.66-bias0-lnWithBias-fp32-ort
    ssm-c96-in128x128-n8-e1-hd0-q32-dhw-k3-g1-p1-m0-fp32-ort
    patch_embed-c3to48-in256x256-bias0-fp32-ort      down-c48-in256x256-fp32-ort     up-c384-in32x32-fp32-ort
    reduce-c192+192to192-in64x64-bias0-fp32-ort      concat-c48+48-in256x256-fp32-ort
    output-c96to3-in256x256-bias0-fp32-ort           (3x3 conv + global residual)

H x W is the block's own input size (the padded image size divided by its stage's scale). Blocks with the same key
are measured once. The op parameters come from the model config; adding an op means adding one entry to
:data:`BLOCK_PARAMS`.
"""
from __future__ import annotations

from typing import Any, Callable

from supernet.ssm import SSMOptions

RUNTIME_TAGS: dict[str, str] = {"onnx": "ort", "pt2": "torch"}  # model file format -> key suffix


def num(x: float) -> str:
    """Compact number: 2.66 -> '2.66', 1.0 -> '1'."""
    return f"{float(x):g}"


def _transformer_params(cfg: dict[str, Any], heads: int, stage: str) -> str:
    del stage  # a transformer block is the same in every stage
    return (f"h{heads}-ffn{num(cfg.get('ffn_expansion_factor', 2.66))}-bias{int(bool(cfg.get('bias', False)))}"
            f"-ln{cfg.get('LayerNorm_type', 'WithBias')}")


def _ssm_params(cfg: dict[str, Any], heads: int, stage: str) -> str:
    del heads  # the SSM block has no attention heads
    return SSMOptions.from_any(cfg.get("ssm") or {}).for_stage(stage).key()  # a stage without the MLP: plain key


#: op name -> parameter part of its key (from the model config, the stage's head count and the stage's name)
BLOCK_PARAMS: dict[str, Callable[[dict[str, Any], int, str], str]] = {
    "transformer": _transformer_params,
    "ssm": _ssm_params,
}


def suffix(dtype: str, runtime: str) -> str:
    return f"{dtype}-{runtime}"


def block_key(op: str, cfg: dict[str, Any], channels: int, heads: int, hw: tuple[int, int], dtype: str,
              runtime: str, stage: str) -> str:
    if op not in BLOCK_PARAMS:
        raise ValueError(f"no LUT key format for block op {op!r}; known ops: {sorted(BLOCK_PARAMS)}")
    return f"{op}-c{channels}-in{hw[0]}x{hw[1]}-{BLOCK_PARAMS[op](cfg, heads, stage)}-{suffix(dtype, runtime)}"


def fixed_key(op: str, channels: str, hw: tuple[int, int], dtype: str, runtime: str, extra: str = "") -> str:
    """Key of a fixed part; ``channels`` is already formatted (``48``, ``3to48``, ``192+192to192``)."""
    mid = f"-{extra}" if extra else ""
    return f"{op}-c{channels}-in{hw[0]}x{hw[1]}{mid}-{suffix(dtype, runtime)}"
