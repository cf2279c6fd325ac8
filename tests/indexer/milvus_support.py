"""Milvus Lite for the Milvus backend's tests: an embedded .db file per test, or a
Milvus Lite server in its own process on a loopback port (for tests that need a second
process on the same data, or a server that goes away and comes back).

The `test` extra installs milvus-lite; the tests skip only where it cannot be imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (the `test` extra has it)")
pytest.importorskip("pymilvus", reason="pymilvus is not installed (the `test` extra has it)")

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MilvusLiteServer:
    """`python -m milvus_lite server` on 127.0.0.1:port over data_dir; stop() kills it,
    start() brings it back on the same port and data."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MilvusLiteServer:
        command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir)]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-lite server exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"milvus-lite server did not listen on {self.port} in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


def release_local(db_path: Path) -> None:
    """Stop the in-process Milvus Lite server of a .db file (pymilvus keeps one per file
    until the process exits), releasing the file for another process."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(db_path))
