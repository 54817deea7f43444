import pytest
import torch

from supernet import Arch, HybridUNet, load_restormer

from restormer_reference import Restormer  # noqa: E402 (tests dir is on sys.path)

SMALL = dict(dim=8, num_blocks=[1, 2, 1, 2], num_refinement_blocks=1, heads=[1, 2, 2, 4])


@pytest.fixture(scope="module")
def official():
    torch.manual_seed(1)
    ref = Restormer().eval()
    with torch.no_grad():  # official LayerNorm weights start at 1/0: perturb so a mis-mapped key would show
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return ref


def test_default_all_t_reproduces_restormer(official, tmp_path):
    path = tmp_path / "deraining.pth"
    torch.save({"params": official.state_dict()}, path)
    net = HybridUNet()
    load_restormer(net, str(path))
    sub = net.extract(Arch.uniform(net, "T")).eval()
    assert set(sub.state_dict()) == set(official.state_dict())
    assert sum(p.numel() for p in sub.parameters()) == sum(p.numel() for p in official.parameters()) == 26_126_644
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        assert (sub(x) - official(x)).abs().max() < 1e-5
        net.set_arch(Arch.uniform(net, "T"))
        assert (net.eval()(x) - official(x)).abs().max() < 1e-5


@pytest.mark.parametrize("ln, channels", [("BiasFree", 3), ("WithBias", 1)])
def test_bare_state_dict_and_variants(ln, channels):
    torch.manual_seed(2)
    cfg = dict(SMALL, LayerNorm_type=ln, inp_channels=channels, out_channels=channels)
    ref = Restormer(**cfg).eval()
    net = load_restormer(HybridUNet(**cfg), {f"module.{k}": v for k, v in ref.state_dict().items()})
    x = torch.rand(2, channels, 17, 23)
    sub = net.extract(Arch.uniform(net, "T")).eval()
    with torch.no_grad():  # the reference needs multiples of 8; ours pads and crops
        xp = torch.nn.functional.pad(x, (0, 1, 0, 7), mode="reflect")
        assert (sub(x) - ref(xp)[..., :17, :23]).abs().max() < 1e-5


def test_mismatch_lists_keys():
    ref = Restormer(**SMALL)
    with pytest.raises(ValueError) as e:
        load_restormer(HybridUNet(**dict(SMALL, dim=16)), {"params": ref.state_dict()})
    assert "shape mismatches" in str(e.value) and "patch_embed.proj.weight" in str(e.value)
    state = ref.state_dict()
    state.pop("output.weight")
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as e:
        load_restormer(HybridUNet(**SMALL), state)
    assert "missing keys (1): output.weight" in str(e.value) and "unexpected keys (1): extra.weight" in str(e.value)
    with pytest.raises(FileNotFoundError):
        load_restormer(HybridUNet(**SMALL), "/nonexistent/restormer.pth")
