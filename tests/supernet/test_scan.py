import os

import pytest
import torch

from supernet.scan import (chunked_scan, cuda_scan, decayed_cumsum, keep_triton_autotuning, mamba_available,
                           selective_scan, sequential_scan)


def _inputs(b, L, h, p, n, dtype=torch.float64, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *s: torch.randn(*s, generator=g, dtype=dtype).to(device)  # noqa: E731
    x = mk(b, L, h, p)
    dt = (torch.rand(b, L, h, generator=g, dtype=dtype) * 0.5 + 0.01).to(device)
    A = -(torch.rand(h, generator=g, dtype=dtype) + 0.1).to(device)
    return [t.requires_grad_() for t in (x, dt, A, mk(b, L, n), mk(b, L, n), mk(h, p))]


@pytest.mark.parametrize("b, L, h, p, n, q", [
    (2, 37, 1, 5, 4, 8),      # L not a multiple of the chunk
    (2, 300, 2, 3, 4, 16),    # several heads
    (1, 1100, 1, 4, 3, 8),    # 138 chunks: the blocked chunk-to-chunk scan recurses
    (1, 7, 1, 3, 2, 32),      # shorter than one chunk
])
def test_chunked_matches_sequential_forward_and_backward(b, L, h, p, n, q):
    args = _inputs(b, L, h, p, n)
    y1 = chunked_scan(*args, chunk_size=q)
    y2 = sequential_scan(*args)
    assert y1.shape == (b, L, h, p)
    assert torch.allclose(y1, y2, atol=1e-6, rtol=0)
    w = torch.randn_like(y1)
    g1 = torch.autograd.grad((y1 * w).sum(), args)
    g2 = torch.autograd.grad((y2 * w).sum(), args)
    for a, c in zip(g1, g2):
        assert torch.allclose(a, c, atol=1e-6, rtol=1e-9)


def test_strong_decay_stays_finite():
    x, dt, A, B, C, D = [t.detach() for t in _inputs(1, 200, 1, 4, 4, dtype=torch.float32)]
    y = chunked_scan(x, dt * 50, A * 20, B, C, D, chunk_size=32)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_triton_autotune_cache_is_a_default_the_user_can_turn_off(monkeypatch, preset, expected):
    if preset is None:
        monkeypatch.delenv("TRITON_CACHE_AUTOTUNING", raising=False)
    else:
        monkeypatch.setenv("TRITON_CACHE_AUTOTUNING", preset)
    keep_triton_autotuning()
    assert os.environ["TRITON_CACHE_AUTOTUNING"] == expected


def test_decayed_cumsum_matches_loop():
    g = -torch.rand(3, 100, dtype=torch.float64)
    X = torch.randn(3, 100, 5, dtype=torch.float64)
    ref, acc = [], torch.zeros(3, 5, dtype=torch.float64)
    for t in range(100):
        acc = torch.exp(g[:, t, None]) * acc + X[:, t]
        ref.append(acc)
    assert torch.allclose(decayed_cumsum(g, X, block=4), torch.stack(ref, 1), atol=1e-10)


def test_dispatch_rejects_unknown_impl_and_cpu_cuda():
    args = [t.detach() for t in _inputs(1, 8, 1, 2, 2)]
    with pytest.raises(ValueError, match="scan impl"):
        selective_scan(*args, impl="fast")
    with pytest.raises(RuntimeError, match="CUDA tensors"):
        cuda_scan(*args)
    assert torch.equal(selective_scan(*args, impl="auto"), chunked_scan(*args))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


needs_mamba = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("h, p, n, q", [(1, 48, 4, 32), (2, 64, 16, 64)])
@needs_mamba[0]
@needs_mamba[1]
def test_cuda_kernel_matches_chunked_scan(h, p, n, q):
    if not mamba_available():
        pytest.skip("mamba-ssm with its CUDA kernels is not importable (pip install 'ens-restore[cuda]')")
    args = [t.detach().float().requires_grad_() for t in _inputs(2, 4099, h, p, n, device="cuda")]
    y_cuda = cuda_scan(*args, chunk_size=q)
    y_ref = chunked_scan(*args, chunk_size=q)
    # the Triton kernels may use TF32 matmuls: compare relative to the output's scale
    assert _rel(y_cuda, y_ref) < 1e-2
    w = torch.randn_like(y_ref)
    for a, c in zip(torch.autograd.grad((y_cuda * w).sum(), args), torch.autograd.grad((y_ref * w).sum(), args)):
        assert _rel(a, c) < 2e-2


# the block options the shipped configs use: plain, pooled full-resolution stages, gated 4x4 pooling (derain-gated),
# conv_gate (denoise-conv-gate), and the MLP half without norms (the *-fast recipes)
BLOCK_OPTIONS = {
    "plain": {},
    "pool2": {"scan_pool": 2},
    "pool4-gate": {"scan_pool": 4, "gate": True},
    "conv-gate": {"conv_gate": True},
    "pool2-conv-gate": {"scan_pool": 2, "conv_gate": True},
    "no-norm-mlp2": {"norm": "none", "mlp_ratio": 2.0},
}


@pytest.mark.parametrize("options", list(BLOCK_OPTIONS.values()), ids=list(BLOCK_OPTIONS))
@needs_mamba[0]
@needs_mamba[1]
def test_ssm_block_cuda_path_matches_torch_path(options, perturb):
    if not mamba_available():
        pytest.skip("mamba-ssm with its CUDA kernels is not importable (pip install 'ens-restore[cuda]')")
    from supernet.ssm import SSMBlock
    torch.manual_seed(0)
    # perturbed on the CPU (the helper's generator is a CPU one): away from the identity init, so the update counts
    ref = perturb(SSMBlock(48, directions=["hw", "wh_rev"], scan_impl="torch", **options)).cuda()
    fast = SSMBlock(48, directions=["hw", "wh_rev"], scan_impl="cuda", **options).cuda()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, 48, 64, 64, device="cuda", requires_grad=True)
    y1, y2 = fast(x), ref(x)
    assert _rel(y1 - x, y2 - x) < 1e-2  # the update alone: the residual x would hide a wrong scan
    g1, = torch.autograd.grad(y1.square().sum(), x)
    g2, = torch.autograd.grad(y2.square().sum(), x)
    assert _rel(g1, g2) < 2e-2
