"""Settings: FASHION_* environment variables, nested groups, the secret admin token."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings, env_var_names


def test_defaults() -> None:
    settings = Settings()
    assert settings.index.path is None
    assert settings.model.path is None
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.limits.max_upload_bytes == 10 * 1024 * 1024
    assert settings.admin_token is None
    assert settings.index.catalog.name == "catalog.csv" and settings.index.catalog.is_file()


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FASHION_INDEX__PATH", str(tmp_path))
    monkeypatch.setenv("FASHION_SERVER__PORT", "9001")
    monkeypatch.setenv("FASHION_LIMITS__MAX_UPLOAD_BYTES", "2048")
    monkeypatch.setenv("FASHION_BATCHING__MAX_WAIT_MS", "0.5")
    monkeypatch.setenv("FASHION_ADMIN__TOKEN", "s3cret")
    settings = Settings()
    assert settings.index.path == tmp_path
    assert settings.server.port == 9001
    assert settings.limits.max_upload_bytes == 2048
    assert settings.batching.max_wait_ms == 0.5
    assert settings.admin_token == "s3cret"
    assert "s3cret" not in repr(settings) and "s3cret" not in settings.model_dump_json()


def test_empty_token_means_admin_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASHION_ADMIN__TOKEN", "")
    assert Settings().admin_token is None


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASHION_SERVER__PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_env_var_names_cover_every_setting() -> None:
    names = env_var_names()
    assert "FASHION_INDEX__PATH" in names and "FASHION_ADMIN__TOKEN" in names
    assert len(names) == sum(
        len(group.annotation.model_fields)
        for group in Settings.model_fields.values()  # type: ignore[union-attr]
    )
    assert all(description for description in names.values())
