"""NSGA-II architecture search: ``python search.py --task denoise --supernet <ckpt> --lut <lut.json> --out ...``.

See ``python search.py --help``; the logic lives in the ``search`` package (``search/cli.py``).
"""
import sys

from search.cli import main

if __name__ == "__main__":
    sys.exit(main())
