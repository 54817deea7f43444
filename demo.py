#!/usr/bin/env python
"""``make demo``: the whole ENS pipeline on the embedded default (bundled photos, host CPU as the device).

    python demo.py [--out runs/demo] [--config configs/demo.yaml]

Outputs go to ``runs/demo/``; rerunning reuses finished steps.
"""
import argparse
import sys

from supernet.pipeline import PipelineSpec, run_pipeline

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/demo.yaml")
    ap.add_argument("--out", default="runs/demo")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--finetune-steps", type=int, default=150)
    args = ap.parse_args()
    run_pipeline(PipelineSpec(config=args.config, out=args.out, resolution=args.resolution,
                              finetune_steps=args.finetune_steps))
    sys.exit(0)
