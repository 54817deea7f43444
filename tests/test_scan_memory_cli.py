"""benchmarks/scan_memory.py: flooring dt at inference changes the SSM blocks only, and is undone by floor 0."""
import pytest
import torch

from benchmark_scripts import load_benchmark
from supernet.unet import HybridUNet


def _net(arch: str) -> HybridUNet:
    torch.manual_seed(0)
    net = HybridUNet(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, heads=[1, 1, 1, 1],
                     ssm={"norm": "none"}).eval()
    with torch.no_grad():  # SSM blocks start as the identity: give the scans something to add
        for name, p in net.named_parameters():
            if "out_proj" in name:
                p.normal_(0, 0.3)
    net.set_arch(arch)
    return net


def test_floor_dt_changes_every_ssm_block_and_floor_zero_undoes_it():
    mod = load_benchmark("scan_memory")
    net = _net("SSSSSSSS")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        y0 = net(x)
        assert mod.floor_dt(net, 1.0) == 9  # one SSM twin per block: 1+1+1+2 levels, 3 decoder, 1 refinement
        y1 = net(x)
        mod.floor_dt(net, 0.0)
        y2 = net(x)
    assert not torch.allclose(y0, y1, atol=1e-5)
    assert torch.equal(y0, y2)
    with pytest.raises(ValueError, match="dt_floor"):
        mod.floor_dt(net, 5.0)


def test_bad_arguments_name_the_option():
    mod = load_benchmark("scan_memory")
    assert mod.parse_floors("0, 0.3,1") == [0.0, 0.3, 1.0]
    for bad in ("a,b", "", "-1"):
        with pytest.raises(SystemExit, match="--floors"):
            mod.parse_floors(bad)
    with pytest.raises(SystemExit, match="no subnet-"):
        mod.checkpoints(["/nonexistent-run"], [])
    with pytest.raises(SystemExit, match="--checkpoint /nonexistent.pt"):
        mod.checkpoints([], ["/nonexistent.pt"])
