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
    perturb_ssm(SSMBlock(16, channel_attention=True, headdim=8, norm="none", scan_pool=2)),
    perturb_ssm(SSMBlock(16, mlp_ratio=2.0, mlp_conv=True, norm="none", scan_pool=2)),
    perturb_ssm(SSMBlock(16, conv_gate=True, norm="none", scan_pool=2)),
    perturb_ssm(SSMBlock(16, conv_gate=True, gate=True, mlp_ratio=1.0)),
    perturb_ssm(SSMBlock(16, bc_bound=0.5, conv_gate=True, norm="none", scan_pool=2)),
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


def test_ssm_export_keeps_wide_tensors_out_of_split_and_lone_transposes(tmp_path):
    """The graph shape the CPU speed depends on (shared/notes/ssm-cpu-speed.md): the inner-width x gets its own
    MatMul instead of being copied out of a Split, and B's transpose feeds a MatMul directly (onnxruntime folds it
    into the MatMul; a stand-alone 5-D Transpose of B cost as much as the matmul)."""
    onnx = pytest.importorskip("onnx")
    block = SSMBlock(16, d_state=4).eval()
    path = export_onnx(block, torch.randn(1, 16, 32, 32), tmp_path / "ssm.onnx")
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    last_dim = {v.name: v.type.tensor_type.shape.dim[-1].dim_value for v in graph.value_info
                if v.type.tensor_type.shape.dim}
    split_outputs = [o for n in graph.node if n.op_type == "Split" for o in n.output]
    assert split_outputs and all(last_dim[o] < block.d_inner for o in split_outputs)
    consumers = {i: n.op_type for n in graph.node for i in n.input}
    b_transposes = [n for n in graph.node if n.op_type == "Transpose" and last_dim.get(n.input[0]) == 4]
    assert b_transposes and all(consumers[n.output[0]] == "MatMul" for n in b_transposes)
