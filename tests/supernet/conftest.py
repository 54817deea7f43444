import pytest
import torch


def perturb_ssm(module: torch.nn.Module, scale: float = 0.2, seed: int = 0) -> torch.nn.Module:
    """SSM blocks start as the exact identity (zero out_proj, identity conv): give them random weights so that
    comparisons of paths, scans and exports see the scan's contribution."""
    from supernet.ssm import SSMBlock

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, SSMBlock):
                m.out_proj.weight.add_(torch.randn(m.out_proj.weight.shape, generator=g) * scale)
                m.conv.weight.add_(torch.randn(m.conv.weight.shape, generator=g) * scale)
    return module


@pytest.fixture
def perturb():
    return perturb_ssm


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is fastest and keeps the 2 shared CPUs free (2 threads made tiny steps ~10x slower
    on a busy machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
