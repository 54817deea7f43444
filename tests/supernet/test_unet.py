import random

import pytest
import torch

from supernet import Arch, HybridUNet, RestorationUNet
from supernet.inference import restore
from conftest import perturb_ssm

TINY = dict(dim=8, num_blocks=[1, 2, 1, 2], num_refinement_blocks=1, heads=[1, 2, 2, 4])


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return perturb_ssm(HybridUNet(**TINY)).eval()


@pytest.mark.parametrize("hw", [(16, 16), (21, 19), (9, 33), (5, 6)])
def test_any_input_size(net, hw):
    x = torch.rand(2, 3, *hw)
    assert net(x).shape == x.shape


@pytest.mark.parametrize("granularity", ["stage", "block"])
def test_extract_matches_supernet_path(net, granularity):
    rng = random.Random(0)
    x = torch.rand(1, 3, 24, 20)
    for _ in range(4):
        arch = net.sample_arch(rng, granularity)
        net.set_arch(arch)
        sub = net.extract(arch).eval()
        with torch.no_grad():
            assert (net(x) - sub(x)).abs().max() <= 1e-6
        assert isinstance(sub, RestorationUNet) and sub.arch == arch
        own = sum(p.numel() for p in sub.parameters())
        assert own < sum(p.numel() for p in net.parameters())


def test_extract_copies_weights(net):
    arch = Arch.uniform(net, "S")
    sub = net.extract(arch)
    with torch.no_grad():
        next(sub.parameters()).add_(1.0)
    assert not torch.equal(next(sub.parameters()), next(net.parameters()))


def test_parameter_counts_are_only_the_paths_own():
    big = HybridUNet()
    all_t = big.extract(Arch.uniform(big, "T"))
    assert sum(p.numel() for p in all_t.parameters()) == 26_126_644
    n_s = sum(p.numel() for p in big.extract(Arch.uniform(big, "S")).parameters())
    n_super = sum(p.numel() for p in big.parameters())
    assert n_super == 26_126_644 + n_s - sum(
        p.numel() for n, p in all_t.named_parameters() if not n.split(".")[0] in {
            "encoder_level1", "encoder_level2", "encoder_level3", "latent", "decoder_level3", "decoder_level2",
            "decoder_level1", "refinement"})


def test_set_arch_switches_slots(net):
    net.set_arch("T-SS-T-ST-S-TS-S-T")
    assert [slot.active[0].upper() for _, _, slot in net.slots()] == list("TSSTSTSTSST")
    assert str(net.arch) == "T-SS-T-ST-S-TS-S-T"
    net.set_arch(Arch.uniform(net, "T"))


def test_bad_inputs(net):
    with pytest.raises(ValueError, match="3 input channels"):
        net(torch.rand(1, 4, 16, 16))
    with pytest.raises(ValueError, match="4-D"):
        net(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="genes per stage"):
        net.set_arch("TTTT-TTTTTT-TTTTTT-TTTTTTTT-TTTTTT-TTTTTT-TTTT-TTTT")
    with pytest.raises(ValueError, match="letters"):
        net.set_arch("TTTTQTTT")


def test_rebuild_from_config(net):
    again = HybridUNet(**net.config)
    assert again.config == net.config
    assert again.load_state_dict(net.state_dict()) is not None


def test_tiled_restore_matches_whole_image(net):
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        whole = net(x)
        tiled = restore(net, x, tile=24, overlap=8)
    assert tiled.shape == whole.shape
    # tiles see less context, so only the structure must agree; an identity model must agree exactly
    assert torch.equal(restore(lambda t: t * 2, x, tile=16, overlap=4), x * 2)
    assert (tiled - whole).abs().mean() < 0.05
    with pytest.raises(ValueError, match="overlap must be in"):
        restore(net, x, tile=16, overlap=16)
