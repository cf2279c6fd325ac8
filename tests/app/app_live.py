"""Run the service as a real process (uvicorn on 127.0.0.1, a free port) for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """Ctrl+C, as a person would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def server_env(base: dict[str, str], **settings: str) -> dict[str, str]:
    """`base` without its FASHION_* variables, plus `settings`, with the repo importable."""
    env = {k: v for k, v in base.items() if not k.startswith("FASHION_")}
    env.update(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), base.get("PYTHONPATH")]))
    return env


def _interruptible() -> None:
    """In the child before exec: Ctrl+C's default action. A shell starts background jobs
    with SIGINT ignored, which Python would inherit, and `stop` would not be Ctrl+C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_server(command: list[str], *, env: dict[str, str], log: Path, port: int) -> LiveServer:
    """Start `command` (which must listen on 127.0.0.1:`port`) and wait until /readyz is 200."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_interruptible,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", port, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"the server was not ready after {START_TIMEOUT_S} s:\n{server.output()}")


def serve_command(*args: str) -> list[str]:
    """`fashion-retrieval serve ARGS`, through the console script's module."""
    return [sys.executable, "-m", "fashion_retrieval", "serve", *args]
