#!/usr/bin/env python3
"""Build a latency lookup table for the supernet on the host CPU or a phone over ADB.

  python build_lut.py --backend local --config configs/denoise.yaml --resolution 256 --out luts/host.json
  python build_lut.py --backend adb [--serial S] --config configs/denoise.yaml --resolution 256 \\
      --resolution 512x768 --out luts/pixel7.json --threads 4 --taskset f0 --cooldown 10

Rerunning the same command resumes an interrupted build. See latency_lut/SCHEMA.md for the file format.
"""
from latency_lut.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
