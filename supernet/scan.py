"""Selective state-space scans with one signature and three implementations.

The recurrence (Mamba-2's scalar-decay SSD with one B/C group), per batch element, head ``h`` and time ``t``::

    state_t = exp(dt_t[h] * A[h]) * state_{t-1} + dt_t[h] * outer(B_t, x_t[h])      # (N, P)
    y_t[h]  = C_t @ state_t + D[h] * x_t[h]

Shapes: ``x`` (b, L, h, p), ``dt`` (b, L, h) (already positive), ``A`` (h,) (negative), ``B``/``C`` (b, L, n),
``D`` (h, p) or None; returns ``y`` (b, L, h, p).

- :func:`chunked_scan`: the CPU/export path. Matrix form inside chunks of ``chunk_size`` tokens (three matmuls),
  and a loop-free blocked "decayed cumulative sum" for the chunk-to-chunk states (recursing over groups of
  chunks, so no Python loop over chunks and no quadratic chunk-by-chunk matrix).
- :func:`sequential_scan`: the plain recurrence, one token at a time. A reference for tests only.
- :func:`cuda_scan`: mamba-ssm's fused Triton SSD kernel (``mamba_chunk_scan_combined``) when it imports.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Callable, Optional

import torch
from torch import Tensor

CUDA_INSTALL_HINT = "pip install 'ens-restore[cuda]'  (or: pip install mamba-ssm causal-conv1d --no-build-isolation)"


def _segment_decay(cum: Tensor) -> Tensor:
    """exp(cum_i - cum_j) for j <= i, else 0. (..., T) -> (..., T, T).

    The causal mask is added as a 0/-inf bias before the exp (one Add with a constant in ONNX, cheaper than
    Where), so the masked entries never overflow and get no gradient.
    """
    t = cum.shape[-1]
    seg = cum.unsqueeze(-1) - cum.unsqueeze(-2)  # (..., T_i, T_j)
    bias = torch.full((t, t), float("-inf"), dtype=cum.dtype, device=cum.device).triu(1)
    return (seg + bias).exp()


def decayed_cumsum(g: Tensor, X: Tensor, block: int = 32) -> Tensor:
    """P_t = sum_{s<=t} exp(g_{s+1} + ... + g_t) X_s, i.e. P_t = exp(g_t) P_{t-1} + X_t, without a loop over t.

    ``g`` (..., T) log-decays, ``X`` (..., T, F). Blocks of ``block`` steps are done in matrix form; the carries
    between blocks are the same problem ``block`` times shorter, solved recursively (depth log_block(T)).
    """
    t = g.shape[-1]
    if t <= block:
        return _segment_decay(g.cumsum(-1)) @ X
    nb = (t + block - 1) // block
    pad = nb * block - t
    if pad:  # zero decay and zero input: padded steps change nothing before them
        g = torch.nn.functional.pad(g, (0, pad))
        X = torch.nn.functional.pad(X, (0, 0, 0, pad))
    gb = g.reshape(*g.shape[:-1], nb, block)  # (..., T) -> (..., nb, block)
    Xb = X.reshape(*X.shape[:-2], nb, block, X.shape[-1])  # (..., T, F) -> (..., nb, block, F)
    cum = gb.cumsum(-1)
    local = _segment_decay(cum) @ Xb  # within-block prefix, (..., nb, block, F)
    ends = decayed_cumsum(cum[..., -1], local[..., -1, :], block)  # full P at every block end, (..., nb, F)
    carry = torch.nn.functional.pad(ends[..., :-1, :], (0, 0, 1, 0))  # P at the end of the previous block
    out = local + cum.exp().unsqueeze(-1) * carry.unsqueeze(-2)
    out = out.reshape(*X.shape[:-2], nb * block, X.shape[-1])
    return out[..., :t, :] if pad else out


def chunked_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                 chunk_size: int = 32) -> Tensor:
    """Chunked matrix-form scan (pure PyTorch, ONNX-exportable). See the module docstring for shapes."""
    b, L, h, p = x.shape
    n = B.shape[-1]
    q = min(chunk_size, L)
    c = (L + q - 1) // q  # ceil; not -(-L // q), which the ONNX trace turns into a truncating division
    pad = c * q - L
    if pad:  # dt = 0 on padded tokens: no decay, no input, so real tokens are unaffected
        x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad))
        dt = torch.nn.functional.pad(dt, (0, 0, 0, pad))
        B = torch.nn.functional.pad(B, (0, 0, 0, pad))
        C = torch.nn.functional.pad(C, (0, 0, 0, pad))
    if h == 1:  # one head: moving the size-1 head axis is a free reshape, no transpose
        xc = x.reshape(b, c, 1, q, p)
        dtc = dt.reshape(b, c, 1, q)
    else:
        xc = x.reshape(b, c, q, h, p).permute(0, 1, 3, 2, 4)  # (b, L, h, p) -> (b, c, h, q, p)
        dtc = dt.reshape(b, c, q, h).permute(0, 1, 3, 2)  # (b, L, h) -> (b, c, h, q)
    Bc = B.reshape(b, c, 1, q, n)
    Cc = C.reshape(b, c, 1, q, n)
    cum = (dtc * A.reshape(1, 1, h, 1)).cumsum(-1)  # (b, c, h, q) log-decay from chunk start
    # dt_j scales the narrow B_j (n wide) once, not the q x q scores; every wide product stays a plain matmul
    Bdt = Bc * dtc.unsqueeze(-1)  # (b, c, h, q, n)
    # intra-chunk: y_i = sum_{j<=i} (C_i . B_j dt_j) exp(cum_i - cum_j) x_j
    scores = (Cc @ Bdt.transpose(-1, -2)) * _segment_decay(cum)  # (b, c, h, q, q)
    y = scores @ xc  # (b, c, h, q, p)
    # chunk states: S = sum_j exp(cum_last - cum_j) dt_j B_j^T x_j. The transpose is the matmul's last step, so
    # onnxruntime folds it into the MatMul (a stand-alone 5-D Transpose of the narrow B cost as much as the matmul)
    Bw = Bdt * (cum[..., -1:] - cum).exp().unsqueeze(-1)  # (b, c, h, q, n)
    states = Bw.transpose(-1, -2) @ xc  # (b, c, h, n, p)
    # state entering each chunk: decayed cumulative sum over chunks, shifted by one
    s = states.permute(0, 2, 1, 3, 4).reshape(b, h, c, n * p)  # (b, c, h, n, p) -> (b, h, c, n*p)
    total = decayed_cumsum(cum[..., -1].permute(0, 2, 1), s)  # (b, h, c, n*p)
    entering = torch.nn.functional.pad(total[:, :, :-1], (0, 0, 1, 0))
    entering = entering.reshape(b, h, c, n, p).permute(0, 2, 1, 3, 4)  # (b, c, h, n, p)
    # scale the narrow C (n wide) rather than the wide y (p wide), and accumulate into y in the same matmul
    y = torch.baddbmm(y.reshape(-1, q, p), (cum.exp().unsqueeze(-1) * Cc).reshape(-1, q, n),
                      entering.reshape(-1, n, p)).reshape(b, c, h, q, p)
    if h == 1:
        y = y.reshape(b, c * q, 1, p)
    else:
        y = y.permute(0, 1, 3, 2, 4).reshape(b, c * q, h, p)
    if pad:
        y = y[:, :L]
        x = x[:, :L]
    if D is not None:
        y = y + x * D.reshape(1, 1, h, -1)
    return y


def sequential_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                    chunk_size: int = 32) -> Tensor:
    """The recurrence token by token (reference for tests; ``chunk_size`` is ignored)."""
    b, L, h, p = x.shape
    n = B.shape[-1]
    state = x.new_zeros(b, h, n, p)
    ys = []
    for t in range(L):
        decay = torch.exp(dt[:, t] * A).reshape(b, h, 1, 1)
        inp = (dt[:, t].reshape(b, h, 1, 1) * B[:, t].reshape(b, 1, n, 1) * x[:, t].reshape(b, h, 1, p))
        state = decay * state + inp
        ys.append((C[:, t].reshape(b, 1, n, 1) * state).sum(2))  # (b, h, p)
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + x * D.reshape(1, 1, h, -1)
    return y


_MAMBA_SCAN: Optional[Callable] = None


def mamba_available() -> bool:
    """True when CUDA is available and mamba-ssm's kernels import (never imports it on CPU-only machines)."""
    if not torch.cuda.is_available() or importlib.util.find_spec("mamba_ssm") is None:
        return False
    try:
        _load_mamba()
    except ImportError:
        return False
    return True


def keep_triton_autotuning() -> None:
    """Ask Triton to keep autotune results on disk (in ``TRITON_CACHE_DIR``) unless the user chose otherwise.

    mamba-ssm autotunes each SSD kernel per shape and dtype on first use: on an H200, 34 keys took 178 s in one
    tiny training run (``benchmarks/results/gpu_train_tests_h200.log``); without the disk cache every new process
    pays that again. Set before the kernels are imported; ``TRITON_CACHE_AUTOTUNING=0`` turns it off.
    """
    os.environ.setdefault("TRITON_CACHE_AUTOTUNING", "1")


def _load_mamba() -> Callable:
    global _MAMBA_SCAN
    if _MAMBA_SCAN is None:
        keep_triton_autotuning()
        try:
            mod = importlib.import_module("mamba_ssm.ops.triton.ssd_combined")
        except Exception as e:  # a missing compiled extension raises ImportError or OSError
            raise ImportError(f"the CUDA scan needs mamba-ssm with its CUDA kernels ({e}); install with: "
                              f"{CUDA_INSTALL_HINT}") from e
        _MAMBA_SCAN = mod.mamba_chunk_scan_combined
    return _MAMBA_SCAN


def cuda_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
              chunk_size: int = 32) -> Tensor:
    """mamba-ssm's fused SSD kernel (one B/C group); same signature and result as :func:`chunked_scan`."""
    if not x.is_cuda:
        raise RuntimeError("the CUDA scan needs CUDA tensors; use scan_impl='torch' on CPU")
    fn = _load_mamba()
    return fn(x, dt, A, B.unsqueeze(2), C.unsqueeze(2), chunk_size, D=D)


SCANS: dict[str, Callable[..., Tensor]] = {"torch": chunked_scan, "reference": sequential_scan, "cuda": cuda_scan}


def selective_scan(x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Optional[Tensor] = None,
                   chunk_size: int = 32, impl: str = "auto") -> Tensor:
    """Dispatch: ``auto`` takes the CUDA kernel for CUDA tensors when mamba-ssm imports, else the chunked scan."""
    if impl == "auto":
        impl = "cuda" if x.is_cuda and mamba_available() else "torch"
    if impl not in SCANS:
        raise ValueError(f"scan impl must be 'auto' or one of {sorted(SCANS)}, got {impl!r}")
    return SCANS[impl](x, dt, A, B, C, D, chunk_size)
