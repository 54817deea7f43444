"""The objective functions: supernet PSNR, LUT latency, transformer penalty, parameter count."""
from __future__ import annotations

import pytest
import torch

from search_testutil import make_lut
from search.evaluators import LUTLatency, ParamCount, SupernetQuality, TransformerPenalty
from supernet import HybridUNet
from supernet.arch import Arch, all_stage_archs

TINY = dict(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, heads=[1, 1, 2, 2])


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return HybridUNet(**TINY).eval()


def test_quality_matches_the_project_evaluation(net):
    """Batched PSNR on stacked crops equals supernet.evaluation.evaluate image by image (another code path)."""
    from supernet.evaluation import evaluate

    g = torch.Generator().manual_seed(0)
    items = [{"input": torch.rand(3, 16, 16, generator=g), "target": torch.rand(3, 16, 16, generator=g),
              "name": str(i)} for i in range(3)]
    quality = SupernetQuality(net, items, batch_size=2)
    arch = Arch.parse("TSTSTSTS")
    expected = evaluate(net, items, "denoise", arch=arch)["psnr"]
    scores = quality.batch([arch, Arch.parse("SSSSSSSS"), arch])
    assert scores[0] == pytest.approx(expected, abs=1e-4)
    assert scores[0] == scores[2] != scores[1]               # deterministic; the path matters


def test_quality_rejects_an_empty_set(net):
    with pytest.raises(ValueError, match="empty"):
        SupernetQuality(net, [])


def test_penalty_count_and_flops(net):
    count = TransformerPenalty.count(net.stage_sizes)
    flops = TransformerPenalty.flops(net, resolution=16)
    for penalty in (count, flops):
        assert penalty(Arch.uniform(net, "T")) == pytest.approx(1.0)
        assert penalty(Arch.uniform(net, "S")) == 0.0
        values = {str(a): penalty(a) for a in all_stage_archs()}
        for a in all_stage_archs():          # adding a transformer never lowers the cost
            for i, g in enumerate(a.stages):
                if g == "S":
                    b = Arch("stage", a.stages[:i] + ("T",) + a.stages[i + 1:])
                    assert values[str(b)] > values[str(a)]
    assert count(Arch.parse("TSSSSSSS")) == pytest.approx(1 / sum(net.stage_sizes))
    # the FLOPs shares see what the count cannot: a full-resolution 2x-wide stage costs more than the latent one
    assert flops(Arch.parse("SSSSSSTS")) > flops(Arch.parse("SSSTSSSS")) / 2


def test_param_count_matches_extracted_subnet(net):
    params = ParamCount(net)
    for text in ("TTTTTTTT", "SSSSSSSS", "TSSTSTTS"):
        sub = net.extract(Arch.parse(text))
        assert params(Arch.parse(text)) * 1e6 == pytest.approx(sum(p.numel() for p in sub.parameters()))


def test_lut_latency_sums_the_lut(net):
    lut = make_lut(net.config, 64)
    latency = LUTLatency(lut, 64, model_config=net.config, stage_sizes=net.stage_sizes)
    t, s = latency(Arch.uniform(net, "T")), latency(Arch.uniform(net, "S"))
    assert t > s > 0
    mixed = Arch.parse("TSSSSSSS")
    assert s < latency(mixed) < t
    assert latency(mixed) == pytest.approx(lut.predict(mixed, 64, 64))


def test_lut_latency_names_what_is_missing(net):
    from latency_lut.lut import LUTError

    with pytest.raises(LUTError, match="build_lut.py"):          # another resolution
        LUTLatency(make_lut(net.config, 64), 128, stage_sizes=net.stage_sizes)
    with pytest.raises(LUTError, match="missing"):              # a hole in the table
        LUTLatency(make_lut(net.config, 64, skip="ssm"), 64, stage_sizes=net.stage_sizes)
    other = dict(net.config, dim=16)
    with pytest.raises(LUTError, match="another model"):        # LUT of another size
        LUTLatency(make_lut(other, 64), 64, model_config=net.config)
