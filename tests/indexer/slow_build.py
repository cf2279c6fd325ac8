"""Run a build with the fake encoder in its own process, for the test that kills one.

    python tests/indexer/slow_build.py CATALOG OUT_DIR BATCH_SIZE

Set INDEXER_FAKE_SLEEP to slow each encode call and INDEXER_FAKE_TRACE to watch progress.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from indexer_fakes import FakeEncoder

from indexer import build_index

if __name__ == "__main__":
    catalog, out, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    build_index(catalog, FakeEncoder(), out, batch_size=batch_size, progress=False)
