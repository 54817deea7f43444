#!/usr/bin/env python
"""Train ENS: ``train.py supernet --config configs/denoise.yaml`` (teacher -> distill -> supernet),
``train.py subnet --arch A --from runs/x/supernet.pt``, ``train.py eval ...``, ``train.py export ...``.
Multi-GPU: ``torchrun --nproc_per_node=N train.py supernet ...``."""
import sys

from supernet.training.cli import main

if __name__ == "__main__":
    sys.exit(main())
