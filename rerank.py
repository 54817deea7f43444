"""Re-rank a search's candidates by short fine-tunings: ``python rerank.py --search-dir <search out> --config ...``.

See ``python rerank.py --help``; the logic lives in ``search/rerank.py``.
"""
import sys

from search.rerank_cli import main

if __name__ == "__main__":
    sys.exit(main())
