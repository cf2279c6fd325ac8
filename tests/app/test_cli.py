"""`fashion-retrieval serve` (app.cli.main) without starting a server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from app_fakes import FakeEncoder, FakeIndex, sample_products
from fastapi import FastAPI

import app.cli as app_cli
import app.main as app_main
from app.cli import build_parser, main, settings_from_args
from app.loading import Serving
from app.server import run_server
from app.settings import ServerSettings, Settings


def test_help_shows_options_and_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("--index", "--model", "--host", "--port", "example", "FASHION_ADMIN__TOKEN"):
        assert word in out
    assert "exit codes: 0 done; 1 error" in out and "2 usage error" in out and "130" in out
    assert "{auto,cpu,cuda}" in out


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FASHION_SERVER__PORT", "9000")
    monkeypatch.setenv("FASHION_SERVER__HOST", "0.0.0.0")
    monkeypatch.setenv("FASHION_INDEX__DEVICE", "cpu")
    args = build_parser().parse_args(["--port", "8123", "--index", str(tmp_path)])
    settings = settings_from_args(args)
    assert settings.server.port == 8123
    assert settings.server.host == "0.0.0.0"  # not given: the environment's
    assert settings.index.path == tmp_path
    assert settings.index.device == "cpu"  # merged with, not replaced by, the option


def test_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid setting: FASHION_SERVER__PORT:")
    assert err.count("\n") == 1  # one line


def test_an_unknown_device_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "gpu"])
    assert exit_info.value.code == 2
    assert "argument --device: invalid choice: 'gpu'" in capsys.readouterr().err


def test_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", str(tmp_path / "nope"), "--index", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    assert "nope" in err and "Traceback" not in err


def test_missing_index_is_a_clear_error(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--model", str(tiny_model_dir), "--index", str(tmp_path / "no-index")])
    assert code == 1
    err = capsys.readouterr().err
    assert "no-index" in err and "Traceback" not in err


async def start_and_stop(app: FastAPI) -> None:
    async with app.router.lifespan_context(app):
        pass


def test_ctrl_c_while_loading_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(settings: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(app_cli, "prepare", interrupted)
    assert main([]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize(("started", "interrupt", "code"), [(False, False, 1), (True, True, 130)])
def test_a_server_that_cannot_start_exits_1_and_ctrl_c_130(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    started: bool,
    interrupt: bool,
    code: int,
) -> None:
    """The model and index are loaded once (by the CLI, not again by the app's lifespan),
    and closed whatever happens to the server."""
    encoder = FakeEncoder()
    index = FakeIndex(sample_products(8), encoder)
    prepared = []

    def prepare(settings: Settings) -> Serving:
        prepared.append(settings)
        return Serving(model=encoder, index=index, index_path=tmp_path, open_index=str)

    def run_server(app: FastAPI, settings: object) -> bool:
        asyncio.run(start_and_stop(app))  # the lifespan serves what the CLI prepared
        if interrupt:
            raise KeyboardInterrupt  # uvicorn re-raises Ctrl+C after shutting down
        return started

    monkeypatch.setattr(app_cli, "prepare", prepare)
    monkeypatch.setattr(app_main, "prepare", lambda *a, **k: pytest.fail("prepared twice"))
    monkeypatch.setattr(app_cli, "run_server", run_server)
    closed = []
    monkeypatch.setattr(index, "close", lambda: closed.append(True))
    monkeypatch.setenv("FASHION_SERVER__PORT", "8000")
    assert main(["--index", str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: the server could not start" if code == 1 else "interrupted")
    assert len(prepared) == 1 and closed == [True]


def test_run_server_on_a_taken_port_returns_false(make_app: Callable[..., FastAPI]) -> None:
    """uvicorn exits (3) when it cannot bind; run_server reports it, the CLI exits 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = ServerSettings(host="127.0.0.1", port=port, log_level="critical")
        assert run_server(make_app(), settings) is False


def test_prepare_only_loads_and_exits_without_serving(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The compose init job: the index is built (by prepare) and closed; no server."""
    encoder = FakeEncoder()
    index = FakeIndex(sample_products(8), encoder)
    closed = []
    monkeypatch.setattr(index, "close", lambda: closed.append(True))
    serving = Serving(model=encoder, index=index, index_path=tmp_path, open_index=str)
    monkeypatch.setattr(app_cli, "prepare", lambda settings: serving)
    monkeypatch.setattr(app_cli, "run_server", lambda *a: pytest.fail("served"))
    assert main(["--prepare-only"]) == 0
    assert capsys.readouterr().out.startswith("Ready: 8 products with model fake-model-1")
    assert closed == [True]
