import pytest
import torch

from supernet import Arch, HybridUNet
from supernet.blocks import TransformerBlock
from supernet.export import export_onnx, ort_session, run_onnx
from supernet.ssm import SSMBlock
from conftest import perturb_ssm

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("block", [
    TransformerBlock(16, 2, 2.66, False, "WithBias"),
    perturb_ssm(SSMBlock(16)),
    perturb_ssm(SSMBlock(16, directions=["hw", "wh_rev"], scan_pool=2, gate=True, headdim=8)),
])
def test_blocks_round_trip(block, tmp_path):
    torch.manual_seed(0)
    x = torch.randn(1, 16, 24, 20)
    path = export_onnx(block, x, tmp_path / "block.onnx")
    with torch.no_grad():
        assert (run_onnx(ort_session(path), x) - block.eval()(x)).abs().max() <= 1e-4


def test_extracted_subnet_round_trip(tmp_path):
    torch.manual_seed(0)
    net = perturb_ssm(HybridUNet(dim=8, num_blocks=[1, 1, 1, 2], num_refinement_blocks=1, heads=[1, 1, 2, 2]))
    sub = net.extract(Arch.parse("TSSTSTST")).eval()
    x = torch.rand(1, 3, 30, 26)
    path = export_onnx(sub, x, tmp_path / "sub.onnx")
    with torch.no_grad():
        assert (run_onnx(ort_session(path), x) - sub(x)).abs().max() <= 1e-4
