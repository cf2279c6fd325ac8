"""Atomic publishing on Milvus: a build killed at any point (a real process, SIGKILL)
leaves the alias, and so every search, on the version it named; the next build drops
the unfinished collection and publishes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from indexer_fakes import FakeEncoder, sample_rows, unit_queries, write_catalog
from milvus_support import MilvusLiteServer

from indexer.milvus import MilvusLocation, build_milvus_index, open_milvus_index
from indexer.milvus.connection import connect
from indexer.milvus.versions import list_versions, version_name

SCRIPT = Path(__file__).resolve().parent / "milvus_slow_build.py"
WAIT_S = 180.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusLiteServer]:
    running = MilvusLiteServer(tmp_path_factory.mktemp("milvus-server")).start()
    yield running
    running.stop()


def kill_at(
    step: str, catalog: Path, location: MilvusLocation, trace: Path, env: dict[str, str]
) -> None:
    """Start the slow build and SIGKILL it once it reaches `step`."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(catalog), location.uri, location.collection, str(trace)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + WAIT_S
    try:
        while step not in (trace.read_text().split() if trace.exists() else []):
            if process.poll() is not None:
                raise AssertionError(f"the build ended before {step}: {process.stderr.read()!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the build did not reach {step} in {WAIT_S} s")
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        process.stderr.close()  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize("step", ["insert", "create_index", "alter_collection_properties"])
def test_a_build_killed_part_way_leaves_the_alias_and_search_unchanged(
    server: MilvusLiteServer, tmp_path: Path, step: str, subprocess_env: dict[str, str]
) -> None:
    location = MilvusLocation(server.uri, collection=f"killed_at_{step}")
    old = write_catalog(tmp_path / "old", sample_rows()[:40])
    new = write_catalog(tmp_path / "new", sample_rows()[40:100])
    published = build_milvus_index(old, FakeEncoder(), location, progress=False)
    queries = unit_queries(4)
    with open_milvus_index(location) as before:
        expected = before.search(queries, 10, {"gender": "Men"}, target="product")

    kill_at(step, new, location, tmp_path / "trace", subprocess_env)

    with open_milvus_index(location) as after:
        assert after.collection == published.collection and len(after) == 40
        assert after.search(queries, 10, {"gender": "Men"}, target="product") == expected
    client = connect(location)
    try:
        leftovers = list_versions(client, location)
    finally:
        client.close()
    unfinished = version_name(location.collection, 2)
    assert leftovers == [published.collection, unfinished]

    again = build_milvus_index(new, FakeEncoder(), location, progress=False)
    assert again.dropped == (unfinished,)
    with open_milvus_index(location) as rebuilt:
        assert rebuilt.collection == again.collection and len(rebuilt) == 60
