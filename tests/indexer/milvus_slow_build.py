"""Run a Milvus build with the fake encoder in its own process, for the test that kills
one part way:

    python tests/indexer/milvus_slow_build.py CATALOG MILVUS_URI COLLECTION TRACE_FILE

Every call of the Milvus client that writes (insert, create_index, recording the
manifest, moving the alias) first appends its name to TRACE_FILE and then sleeps, so the
test can kill the build at each of them; inserts go 5 rows at a time.
"""

from __future__ import annotations

import sys
import time
from functools import wraps
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from indexer_fakes import FakeEncoder
from pymilvus import MilvusClient

from indexer.milvus import MilvusLocation, build_milvus_index
from indexer.milvus import build as milvus_build

TRACED = ("insert", "create_index", "alter_collection_properties", "alter_alias", "create_alias")


def traced(name: str, method: Any, trace: Path) -> Any:
    @wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with trace.open("a", encoding="utf-8") as handle:
            handle.write(f"{name}\n")
        time.sleep(0.5)
        return method(*args, **kwargs)

    return call


if __name__ == "__main__":
    catalog, uri, collection, trace = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    for name in TRACED:
        setattr(MilvusClient, name, traced(name, getattr(MilvusClient, name), trace))
    milvus_build.INSERT_ROWS = 5
    build_milvus_index(catalog, FakeEncoder(), MilvusLocation(uri, collection), progress=False)
