"""benchmarks/activation_scale.py: one max |output| per block of the path, in forward order; NaN where not finite."""
import math

import torch

from benchmark_scripts import load_benchmark
from supernet.unet import HybridUNet


def test_block_scales_name_every_block_and_flag_overflow():
    mod = load_benchmark("activation_scale")
    torch.manual_seed(0)
    net = HybridUNet(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, heads=[1, 1, 1, 1],
                     ssm={"norm": "none"}).eval()
    net.set_arch("SSSSSSSS")
    x = torch.rand(1, 3, 16, 16)
    scales = mod.block_scales(net, x)
    assert [n for n, _ in scales] == ["encoder_level1.0", "encoder_level2.0", "encoder_level3.0", "latent.0",
                                      "latent.1", "decoder_level3.0", "decoder_level2.0", "decoder_level1.0",
                                      "refinement.0"]
    assert all(math.isfinite(v) and v > 0 for _, v in scales)
    with torch.no_grad():  # an overflowing latent block: it and everything after it is reported as NaN
        net.latent[1].candidates["ssm"].out_proj.weight.fill_(float("inf"))
    scales = dict(mod.block_scales(net, x))
    assert math.isfinite(scales["latent.0"]) and math.isnan(scales["latent.1"]) and math.isnan(scales["refinement.0"])
