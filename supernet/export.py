"""ONNX export and onnxruntime sessions (the CPU deployment path and the host latency backend)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

DEFAULT_OPSET = 17


def export_onnx(module: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor], path: str | Path,
                opset: int = DEFAULT_OPSET) -> Path:
    """Export ``module`` at the example inputs' fixed shapes (TorchScript exporter: shape-specialised graph)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    names = ["input"] if len(args) == 1 else [f"input{i}" for i in range(len(args))]
    was_training = module.training
    module.eval()
    tmp = path.with_name(path.name + ".tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(tmp), opset_version=opset, input_names=names,
                              output_names=["output"], dynamo=False, do_constant_folding=True)
        tmp.replace(path)
    finally:
        module.train(was_training)
        if tmp.exists():
            tmp.unlink()
    return path


def ort_session(path: str | Path, threads: int = 2, spin: bool = True, profile_prefix: str | None = None):
    """An onnxruntime CPU session with explicit threads and denormals flushed to zero (see notes/ssm-cpu-speed).

    ``spin=False`` stops idle pool threads from busy-waiting: needed when several sessions are timed in
    alternation, where one session's spinning threads would steal the cores from the next one.
    ``profile_prefix`` turns on onnxruntime's per-node profiling (``session.end_profiling()`` writes the JSON).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(session, *inputs: torch.Tensor) -> torch.Tensor:
    """Run a session on torch tensors, return a torch tensor."""
    feeds = {i.name: t.detach().cpu().numpy() for i, t in zip(session.get_inputs(), inputs)}
    return torch.from_numpy(session.run(None, feeds)[0])
