"""benchmarks/op_profile.py: onnxruntime's per-node profile summed per operator type."""
import json

import torch
from benchmark_scripts import load_benchmark


def _op_profile():
    return load_benchmark("op_profile")


def test_kernel_times_are_summed_per_operator_and_divided_by_runs(tmp_path):
    events = [
        {"cat": "Session", "name": "model_run", "dur": 9000, "args": {}},
        {"cat": "Node", "name": "/norm/LayerNormalization_kernel_time", "dur": 2000,
         "args": {"op_name": "LayerNormalization"}},
        {"cat": "Node", "name": "/norm/LayerNormalization_fence_before", "dur": 50,
         "args": {"op_name": "LayerNormalization"}},
        {"cat": "Node", "name": "/MatMul_kernel_time", "dur": 1000, "args": {"op_name": "MatMul"}},
        {"cat": "Node", "name": "/MatMul_1_kernel_time", "dur": 3000, "args": {"op_name": "MatMul"}},
    ]
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(events))
    assert _op_profile().kernel_ms_by_op(path, runs=2) == {"LayerNormalization": 1.0, "MatMul": 2.0}


def test_profile_block_covers_the_ssm_block_graph(tmp_path):
    from supernet.ssm import SSMBlock

    by_op = _op_profile().profile_block(SSMBlock(8).eval(), torch.randn(1, 8, 16, 16), tmp_path / "ssm.onnx",
                                        threads=1, warmup=1, runs=2)
    assert {"LayerNormalization", "CumSum", "Exp"} <= set(by_op) and all(ms >= 0 for ms in by_op.values())
    assert sum(by_op.values()) > 0


def test_norm_free_ssm_block_has_no_layernorm_node(tmp_path):
    from supernet.ssm import SSMBlock

    by_op = _op_profile().profile_block(SSMBlock(8, norm="none").eval(), torch.randn(1, 8, 16, 16),
                                        tmp_path / "ssm.onnx", threads=1, warmup=1, runs=1)
    assert "LayerNormalization" not in by_op and {"CumSum", "Exp"} <= set(by_op)


def test_model_args_take_config_base_and_overrides():
    from benchmark_scripts import ROOT

    from latency_lut.cli import load_model_config as build  # what op_profile.py and block_latency.py call

    restormer = build(None)
    assert restormer["dim"] == 48 and restormer["num_blocks"] == [4, 6, 6, 8]  # Restormer's defaults
    deep = build(str(ROOT / "configs" / "proxy" / "denoise-deep.yaml"), ["model.ssm.norm=none"])
    assert deep["num_blocks"] == [2, 2, 2, 4] and deep["dim"] == 16 and deep["ssm"]["norm"] == "none"
