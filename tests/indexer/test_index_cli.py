"""indexer.cli: `fashion-retrieval index ...` end to end with the tiny real model."""

from __future__ import annotations

from pathlib import Path

import pytest
from indexer_fakes import FakeEncoder, sample_rows

from indexer import build_index, open_index
from indexer.cli import main
from indexer.manifest import TEXTS_INDEX
from indexer.publish import list_versions, resolve_version_dir

ROWS = sample_rows()


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [[], ["build"], ["update"], ["info"], ["verify"]])
def test_help_has_a_description_and_an_example(capsys, command: list[str]) -> None:
    code, out, _ = _run(capsys, *command, "--help")
    assert code == 0
    assert "usage: fashion-retrieval index" in out
    assert "example" in out if command else "COMMAND" in out


def test_usage_errors_exit_2(capsys) -> None:
    code, _, err = _run(capsys, "build", "--out", "x")
    assert code == 2 and "--catalog" in err
    code, _, err = _run(capsys, "build", "--catalog", "c", "--out", "x", "--product-weights", "1")
    assert code == 2 and "'0.9,0.1'" in err


def test_build_info_verify_update_on_the_sample_with_the_tiny_model(
    capsys, tmp_path: Path, sample_catalog: Path, tiny_model_dir: Path, tiny_model, make_catalog
) -> None:
    out = tmp_path / "index"
    code, stdout, err = _run(
        capsys,
        "build",
        "--catalog",
        sample_catalog,
        "--model",
        tiny_model_dir,
        "--out",
        out,
        "--device",
        "cpu",
        "--batch-size",
        "128",
        "--product-weights",
        "0.8,0.2",
    )
    assert code == 0, err
    assert "published version 000001" in stdout and "1000 products" in stdout
    assert "product vectors 0.8,0.2" in stdout
    assert "products/s" in err  # the progress bar
    code, stdout, _ = _run(capsys, "info", out)
    assert code == 0 and tiny_model.model_id in stdout and "Flat (exact search)" in stdout
    assert "product = 0.8 x image + 0.2 x text" in stdout
    assert _run(capsys, "verify", out)[0] == 0

    with open_index(out, device="cpu", expected_model_id=tiny_model.model_id) as index:
        assert len(index) == 1000
        query = tiny_model.encode_texts([ROWS[3]["text"]])
        hits = index.search_texts(query, 5, filters={"gender": ROWS[3]["gender"]})
        assert len(hits[0]) == 5 and ROWS[3]["id"] in [hit.id for hit in hits[0]]  # its own title
        image_hits = index.search_images(
            tiny_model.encode_images([index.get_products([ROWS[7]["id"]])[0].image]), 1
        )
        assert image_hits[0][0].id == ROWS[7]["id"] and image_hits[0][0].score == pytest.approx(
            1.0, abs=1e-4
        )

    extra = make_catalog(ROWS[:3], "extra")
    delete_file = tmp_path / "gone.txt"
    delete_file.write_text(f"# discontinued\n{ROWS[10]['id']}\n\n{ROWS[11]['id']}  # two\n")
    code, stdout, err = _run(
        capsys,
        "update",
        "--index",
        out,
        "--catalog",
        extra,
        "--model",
        tiny_model_dir,
        "--device",
        "cpu",
        "--delete",
        ROWS[12]["id"],
        "--delete-file",
        delete_file,
        "--quiet",
    )
    assert code == 0, err
    assert "0 added, 3 replaced, 3 deleted" in stdout and "encoded 0 images" in stdout
    assert "product vectors 0.8,0.2" in stdout  # an update keeps the build's weights
    code, _, err = _run(capsys, "update", "--index", out, "--delete", "no-such-product")
    assert code == 1 and "no-such-product" in err and "Traceback" not in err
    with open_index(out) as index:
        assert len(index) == 997
    assert len(list_versions(out)) == 2


def test_errors_are_one_line_and_non_zero(
    capsys, tmp_path: Path, tiny_model_dir: Path, small_catalog: Path
) -> None:
    code, _, err = _run(
        capsys,
        "build",
        "--catalog",
        tmp_path / "nope.csv",
        "--model",
        tiny_model_dir,
        "--out",
        tmp_path / "i",
    )
    assert code == 1 and err.startswith("error: ") and "nope.csv" in err
    code, _, err = _run(
        capsys,
        "build",
        "--catalog",
        small_catalog,
        "--model",
        tmp_path / "no-model",
        "--out",
        tmp_path / "i",
    )
    assert code == 1 and err.startswith("error: ")
    code, _, err = _run(
        capsys,
        "build",
        "--catalog",
        small_catalog,
        "--model",
        tiny_model_dir,
        "--out",
        tmp_path / "i",
        "--batch-size",
        "0",
    )
    assert code == 1 and "batch size" in err
    code, _, err = _run(capsys, "info", tmp_path / "empty")
    assert code == 1 and "no index" in err
    code, _, err = _run(capsys, "update", "--index", tmp_path / "i")
    assert code == 1 and "nothing to update" in err


def test_model_mismatch_and_corruption_exit_1(
    capsys, tmp_path: Path, small_catalog: Path, tiny_model_dir: Path
) -> None:
    out = tmp_path / "index"
    build_index(small_catalog, FakeEncoder(), out, progress=False)  # built with another model
    code, _, err = _run(
        capsys,
        "update",
        "--index",
        out,
        "--catalog",
        small_catalog,
        "--model",
        tiny_model_dir,
        "--device",
        "cpu",
    )
    assert code == 1 and "fake-model-1" in err and "Traceback" not in err
    path = resolve_version_dir(out) / TEXTS_INDEX
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    code, _, err = _run(capsys, "verify", out)
    assert code == 1 and "checksum mismatch" in err and TEXTS_INDEX in err
