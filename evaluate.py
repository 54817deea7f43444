#!/usr/bin/env python
"""PSNR/SSIM of a supernet path or a subnet checkpoint: ``evaluate.py --checkpoint runs/x/supernet.pt --arch A``."""
import sys

from supernet.training.cli import eval_main

if __name__ == "__main__":
    sys.exit(eval_main())
