"""Evaluation: protocol per task, padding to x8, tiled inference, per-image CSV, any arch or subnet."""
import csv
import warnings

import pytest
import torch
from torch import nn

from supernet.arch import Arch
from supernet.checkpoint import build_model
from supernet.config import load_config
from supernet.evaluation import evaluate, input_quality, pad_reflect, restore, tiled_forward
from supernet.metrics import psnr, ssim

TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]"]



class Shift(nn.Module):
    """A pointwise model (so tiles cannot change its output) with one parameter."""

    def __init__(self, delta: float = 0.05) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.tensor(delta))

    def forward(self, x):
        assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0, "evaluation must pad to a multiple of 8"
        return x + self.delta


def items(n=3, size=(3, 37, 45), seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        target = torch.rand(*size, generator=g)
        out.append({"input": (target + 0.1 * torch.randn(*size, generator=g)).clamp(0, 1), "target": target,
                    "name": f"img{i}.png"})
    return out


def test_pad_reflect_and_crop_back():
    x = torch.rand(1, 3, 37, 45)
    xp, h, w = pad_reflect(x)
    assert xp.shape[-2:] == (40, 48) and (h, w) == (37, 45) and torch.equal(xp[..., :37, :45], x)
    assert restore(Shift(0.0), x).shape == x.shape


@pytest.mark.parametrize("task, y_channel", [("denoise", False), ("deblur", False), ("derain", True)])
def test_protocol_follows_the_task_registry(task, y_channel, tmp_path):
    data = items()
    model = Shift(0.05)
    r = evaluate(model, data, task, csv_path=tmp_path / "e.csv")
    expect_p = [psnr((d["input"] + 0.05).clamp(0, 1), d["target"], y_channel=y_channel) for d in data]
    expect_s = [ssim((d["input"] + 0.05).clamp(0, 1), d["target"], y_channel=y_channel) for d in data]
    assert r["psnr"] == pytest.approx(sum(expect_p) / 3, abs=1e-4)
    assert r["ssim"] == pytest.approx(sum(expect_s) / 3, abs=1e-5)
    rows = list(csv.reader(open(tmp_path / "e.csv")))
    assert rows[0] == ["name", "psnr", "ssim"] and [r_[0] for r_ in rows[1:]] == ["img0.png", "img1.png",
                                                                                  "img2.png", "mean"]
    assert float(rows[-1][1]) == pytest.approx(r["psnr"], abs=1e-3)


def test_tiled_inference_matches_whole_image_for_a_pointwise_model():
    x = torch.rand(1, 3, 72, 104)
    whole = Shift(0.1)(x)
    for tile, overlap in [(32, 8), (48, 16), (64, 0)]:
        assert torch.allclose(tiled_forward(Shift(0.1), x, tile, overlap), whole, atol=1e-6)
    with pytest.raises(ValueError, match="eval.tile"):
        tiled_forward(Shift(), x, 30, 8)
    with pytest.raises(ValueError, match="eval.overlap"):
        tiled_forward(Shift(), x, 32, 32)


def test_tiled_inference_of_the_network_is_close_to_whole_image_and_same_shape():
    torch.manual_seed(0)
    net = build_model(load_config(None, TINY)).eval()
    x = torch.rand(1, 3, 50, 62)
    whole = restore(net, x)
    tiled = restore(net, x, tile=32, overlap=16)
    assert whole.shape == tiled.shape == x.shape
    assert (whole - tiled).abs().mean() < 0.5 * whole.abs().mean()


def test_any_arch_on_the_supernet_and_the_extracted_subnet_agree():
    torch.manual_seed(0)
    net = build_model(load_config(None, TINY))
    data = items(n=2, size=(3, 24, 40))
    arch = Arch.parse("STSTSTST")
    before = net.arch
    r_super = evaluate(net, data, "denoise", arch=arch)
    assert net.arch == before  # evaluation leaves the supernet's current path as it was
    r_sub = evaluate(net.extract(arch), data, "denoise")
    assert r_super["psnr"] == pytest.approx(r_sub["psnr"], abs=1e-4)
    r_other = evaluate(net, data, "denoise", arch="TTTTTTTT")
    assert r_other["psnr"] != pytest.approx(r_super["psnr"], abs=1e-6)
    assert net.training  # mode restored


def test_the_network_pads_odd_sizes_itself():
    torch.manual_seed(0)
    net = build_model(load_config(None, TINY)).eval()
    x = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        direct = net(x)
    assert direct.shape == x.shape
    assert torch.allclose(direct, restore(net, x), atol=1e-5)


@pytest.mark.parametrize("task", ["denoise", "derain"])
def test_input_quality_scores_the_degraded_inputs_by_the_task_protocol(task):
    data = items()
    from supernet.data.tasks import get_task

    spec = get_task(task)
    kw = dict(data_range=1.0, y_channel=spec.y_channel, crop_border=spec.crop_border)
    want = sum(psnr(d["input"][None], d["target"][None], **kw) for d in data) / len(data)
    got = input_quality(data, task)
    assert got["n"] == 3 and got["psnr"] == pytest.approx(want, abs=1e-6)
    assert got["ssim"] == pytest.approx(sum(ssim(d["input"][None], d["target"][None], **kw) for d in data) / 3,
                                        abs=1e-6)
    # a model that moves its input away from the target scores below the input
    assert evaluate(Shift(0.2), data, task)["psnr"] < got["psnr"]


class OverflowOn(Shift):
    """Pointwise, but its output is inf wherever the input is above ``limit`` (a stand-in for an overflowing block)."""

    def __init__(self, limit: float) -> None:
        super().__init__(0.0)
        self.limit = limit

    def forward(self, x):
        return torch.where(x > self.limit, torch.full_like(x, float("inf")), x + self.delta)


def test_non_finite_outputs_are_named_in_a_warning():
    data = items(n=3, size=(3, 16, 16))
    for item in data:
        item["input"] = item["input"] * 0.5
    data[1]["input"] = data[1]["input"] + 0.45  # only this image crosses the limit
    with pytest.warns(RuntimeWarning, match=r"not finite \(NaN/inf\) on 1 of 3 images \(img1.png\).*norm_stages"):
        evaluate(OverflowOn(0.9), data, "denoise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(OverflowOn(2.0), data, "denoise")  # finite everywhere: no warning
