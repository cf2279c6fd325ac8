"""`fashion-retrieval index build/info/verify/update --backend milvus` on Milvus Lite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from indexer_fakes import FakeEncoder, sample_rows, write_catalog
from milvus_support import release_local

from indexer.cli import main
from indexer.milvus import cli as milvus_cli


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(milvus_cli, "load_model", lambda *args, **kwargs: FakeEncoder())
    yield tmp_path / "shop.db"
    release_local(tmp_path / "shop.db")


def test_build_info_verify_update(capsys, tmp_path: Path, db: Path) -> None:
    catalog = write_catalog(tmp_path / "catalog", sample_rows()[:30])
    where = ["--backend", "milvus", "--milvus-uri", db, "--collection", "shop"]
    code, out, err = _run(capsys, "build", "--catalog", catalog, *where, "--quiet")
    assert code == 0, err
    assert "published shop__v000001 as collection 'shop'" in out and "30 products" in out
    code, out, _ = _run(capsys, "info", *where)
    assert code == 0 and "products    30" in out and "shop__v000001 (current)" in out
    code, out, err = _run(capsys, "verify", *where)
    assert code == 0 and out.startswith("ok: shop__v000001"), err
    gone = sample_rows()[0]["id"]
    code, out, err = _run(capsys, "update", *where, "--delete", gone)
    assert code == 0 and "1 deleted" in out and "29 products" in out, err
    code, _, err = _run(capsys, "update", *where, "--delete", gone)
    assert code == 1 and f"does not hold: {gone!r}" in err


def test_options_are_checked(capsys, tmp_path: Path, db: Path) -> None:
    catalog = write_catalog(tmp_path / "catalog", sample_rows()[:5])
    code, _, err = _run(capsys, "build", "--catalog", catalog, "--backend", "milvus")
    assert code == 1 and "needs --milvus-uri" in err
    code, _, err = _run(capsys, "build", "--catalog", catalog)
    assert code == 1 and "needs --out DIR" in err
    milvus = ["--backend", "milvus", "--milvus-uri", db]
    code, _, err = _run(capsys, "build", "--catalog", catalog, *milvus, "--copy-images")
    assert code == 1 and "FASHION_INDEX__IMAGES_DIR" in err
    code, _, err = _run(capsys, "build", "--catalog", catalog, *milvus, "--collection", "a-b")
    assert code == 1 and "invalid collection name 'a-b'" in err
    code, _, err = _run(
        capsys, "build", "--catalog", catalog, *milvus, "--milvus-index-params", "{nope"
    )
    assert code == 2 and "not valid JSON" in err
    code, _, err = _run(
        capsys,
        "build",
        "--catalog",
        catalog,
        *milvus,
        "--milvus-index-params",
        '{"index_type": "X"}',
    )
    assert code == 2 and "unknown Milvus index type 'X'" in err
    code, _, err = _run(capsys, "info", *milvus)
    assert code == 1 and "no published index" in err
