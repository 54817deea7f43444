"""How far can all-S get ahead of all-T for a given network shape? All-T vs all-S end to end on this CPU, per shape.

    python benchmarks/speedup_ceiling.py [--resolution 256] [--threads 2] [--repeats 5] [--rounds 3]
                                         [--variant 'LABEL=CONFIG[|KEY=VALUE...]' ...]

The speed-up any hybrid can reach is bounded by all-S's. The blocks are not the whole network: the patch
embedding, down/up-sampling and output convs are the same in every arch, so the shallower the U-Net, the larger
their share and the lower the bound. Each variant builds the config's network (untrained: latency does not depend
on the weights), extracts all-T and all-S, and times both in onnxruntime exactly as the pipeline's measured column
(``supernet.pipeline.measure_latency``: a fresh process per model, round-robin rounds, median of the pooled runs).
The default variants walk from the proxy recipe's depth to Restormer's at proxy width, then Restormer itself.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_VARIANTS = [
    "proxy (blocks 1,1,1,2 +1, dim 16)=configs/proxy/deblur.yaml",
    "proxy-deep (blocks 2,2,2,4 +2, dim 16)=configs/proxy/deblur-deep.yaml",
    "Restormer depth (4,6,6,8 +4), dim 16=configs/deblur.yaml|model.dim=16",
    "Restormer (4,6,6,8 +4, dim 48)=configs/deblur.yaml",
]


def parse_variant(text: str) -> tuple[str, str, list[str]]:
    label, sep, rest = text.partition("=")
    if not sep or not label.strip() or not rest:
        raise SystemExit(f"--variant {text!r}: expected 'LABEL=CONFIG[|KEY=VALUE...]'")
    config, *sets = rest.split("|")
    path = Path(config) if Path(config).is_file() else ROOT / config  # as given, else from the repository root
    if not path.is_file():
        raise SystemExit(f"--variant {text!r}: config file {config} not found")
    return label.strip(), str(path), sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", default=None, metavar="LABEL=CONFIG[|KEY=VALUE...]",
                    help="a network shape to time (repeatable); default: proxy depth -> Restormer")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    variants = [parse_variant(v) for v in (args.variant or DEFAULT_VARIANTS)]

    import torch

    from supernet import Arch
    from supernet.checkpoint import build_model
    from supernet.config import load_config
    from supernet.pipeline import measure_latency

    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, config, sets) in enumerate(variants):
            net = build_model(load_config(config, sets))
            blocks = sum(net.stage_sizes)
            models = {"T": net.extract(Arch.uniform(net, "T")), "S": net.extract(Arch.uniform(net, "S"))}
            ms = measure_latency(models, args.resolution, args.threads, args.repeats, Path(tmp) / str(i),
                                 rounds=args.rounds)
            rows.append((label, blocks, ms["T"], ms["S"]))
            print(f"{label}: all-T {ms['T']:.1f} ms, all-S {ms['S']:.1f} ms, {ms['T'] / ms['S']:.2f}x", flush=True)

    print(f"\nAll-T vs all-S at {args.resolution}x{args.resolution}, onnxruntime, {args.threads} threads, median of "
          f"{args.rounds} rounds x {args.repeats} runs (untrained weights)\n")
    print("| network | blocks | all-T ms | all-S ms | all-S speed-up (ceiling for any hybrid) |")
    print("|---|---|---|---|---|")
    for label, blocks, t, s in rows:
        print(f"| {label} | {blocks} | {t:.1f} | {s:.1f} | {t / s:.2f}x |")


if __name__ == "__main__":
    main()
