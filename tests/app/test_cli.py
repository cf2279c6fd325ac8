"""`fashion-retrieval serve` (app.cli.main) without starting a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import build_parser, main, settings_from_args


def test_help_shows_options_and_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("--index", "--model", "--host", "--port", "example", "FASHION_ADMIN__TOKEN"):
        assert word in out


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
    assert "port" in capsys.readouterr().err


def test_missing_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", str(tmp_path / "nope"), "--index", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fashion-retrieval serve: error:")
    assert "nope" in err and "Traceback" not in err


def test_missing_index_is_a_clear_error(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--model", str(tiny_model_dir), "--index", str(tmp_path / "no-index")])
    assert code == 1
    err = capsys.readouterr().err
    assert "no-index" in err and "Traceback" not in err
