"""Where a block's time goes in onnxruntime: per-operator kernel time of the transformer and SSM blocks.

    python benchmarks/op_profile.py --config configs/proxy/denoise.yaml [--set model.ssm.norm=none]
                                    [--size 256] [--threads 2] [--runs 20]

For every distinct stage shape of the config's network (channels x resolution) both candidates are exported as in
the LUT, run ``--runs`` times under onnxruntime's profiler (after warm-up), and their kernel time is summed per
operator type (per run). Prints, per block, the total and the operator types that take most of it, so a change
to the SSM block's graph can aim at what dominates on this CPU. Kernel sums leave out the session's own overhead.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def kernel_ms_by_op(profile: Path, runs: int) -> dict[str, float]:
    """onnxruntime profile JSON -> {operator type: kernel ms per run}; warm-up runs are excluded by the caller."""
    by_op: dict[str, float] = collections.defaultdict(float)
    for event in json.loads(profile.read_text()):
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            by_op[event["args"].get("op_name", "?")] += event["dur"] / 1e3 / runs
    return dict(by_op)


def profile_block(module, x, path: Path, threads: int, warmup: int, runs: int) -> dict[str, float]:
    from supernet.export import export_onnx, ort_session

    export_onnx(module, x, path)
    warm = ort_session(path, threads, spin=False)
    feed = {warm.get_inputs()[0].name: x.numpy()}
    for _ in range(warmup):  # warm-up in a session of its own, so the profile holds only the measured runs
        warm.run(None, feed)
    sess = ort_session(path, threads, spin=False, profile_prefix=str(path.with_suffix("")))
    for _ in range(runs):
        sess.run(None, feed)
    return kernel_ms_by_op(Path(sess.end_profiling()), runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="YAML whose model: mapping sets the network")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. model.ssm.norm=none (repeatable)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--top", type=int, default=6, help="operator types listed per block")
    a = ap.parse_args()
    if a.runs < 1 or a.size < 8 or a.threads < 1:
        ap.error("--runs and --threads must be >= 1 and --size >= 8")

    import torch

    from latency_lut.cli import load_model_config
    from supernet import STAGES, HybridUNet

    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    net = HybridUNet(**load_model_config(a.config, a.overrides)).eval()
    sets = "".join(f" --set {o}" for o in a.overrides)
    print(f"onnxruntime kernel time per run at {a.size}x{a.size}, {a.threads} threads, {a.runs} runs "
          f"({a.config}{sets}); share of the block's kernel total")
    with tempfile.TemporaryDirectory(prefix="ens_opprof_") as tmp_dir:  # the ONNX files and profiles
        tmp = Path(tmp_dir)
        totals = {"transformer": 0.0, "ssm": 0.0}
        profiled: dict[tuple[int, int], dict[str, dict[str, float]]] = {}
        for si, stage in enumerate(STAGES):
            c, s = net.stage_dims[si], a.size // net.stage_scales[si]
            if (c, s) not in profiled:
                slot = net.slots()[sum(net.stage_sizes[:si])][2]
                x = torch.randn(1, c, s, s)
                profiled[(c, s)] = {op: profile_block(slot.candidates[op], x, tmp / f"{op}_{c}_{s}.onnx", a.threads,
                                                      a.warmup, a.runs) for op in ("transformer", "ssm")}
                for op, by_op in profiled[(c, s)].items():
                    total = sum(by_op.values())
                    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:a.top]
                    shares = ", ".join(f"{name} {100 * ms / total:.0f}%" for name, ms in top)
                    print(f"{stage:10s} {c:4d}ch {s:4d}x{s:<4d} {op:11s} {total:7.2f} ms: {shares}", flush=True)
            for op, by_op in profiled[(c, s)].items():
                totals[op] += net.stage_sizes[si] * sum(by_op.values())
    print(f"all blocks (kernel sums x blocks per stage): transformer {totals['transformer']:.1f} ms, "
          f"ssm {totals['ssm']:.1f} ms, ratio {totals['transformer'] / totals['ssm']:.2f}x")


if __name__ == "__main__":
    main()
