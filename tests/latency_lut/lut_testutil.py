"""Helpers for the latency LUT tests (imported by name: pytest puts this folder on sys.path): fixture files and
a tiny hand-made ONNX model."""
from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).with_name("fixtures")


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def make_add_model(path: Path, shape: tuple[int, ...] = (1, 4, 8, 8), n_inputs: int = 2) -> Path:
    """A tiny ONNX model: Relu(sum of its inputs), built with onnx.helper (no torch export)."""
    import onnx
    from onnx import TensorProto, helper

    names = [f"x{i}" for i in range(n_inputs)]
    nodes, last = [], names[0]
    for i, name in enumerate(names[1:]):
        nodes.append(helper.make_node("Add", [last, name], [f"s{i}"]))
        last = f"s{i}"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
                                              for n in names],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def add_model(tmp_path: Path) -> Path:
    return make_add_model(tmp_path / "add.onnx")
