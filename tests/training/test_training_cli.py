"""`fashion-retrieval train` then `evaluate`, end to end through the console script."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models import load_model
from training import cli
from training.config import CONFIG_DIR, load_config
from training.loop import LOG_FILE, MODEL_DIR

METRICS = {"R@1", "R@5", "R@10", "median_rank", "mAP", "MRR@10"}
DIRECTIONS = {"text_to_image", "image_to_text"}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fashion_retrieval", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _epochs(out: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (out / LOG_FILE).read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, sample_dir: Path, subprocess_env: dict[str, str]
) -> tuple[Path, Path]:
    """(catalogue, run directory) after `train --config tiny --epochs 1` on 200 sample products."""
    root = tmp_path_factory.mktemp("cli")
    lines = (sample_dir / "catalog.csv").read_text(encoding="utf-8").splitlines()[:201]
    (root / "images").symlink_to(sample_dir / "images")
    catalog = root / "catalog.csv"
    catalog.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = root / "run"
    args = [
        "train",
        "--catalog",
        str(catalog),
        "--config",
        "tiny",
        "--out",
        str(out),
        "--epochs",
        "1",
        "--device",
        "cpu",
    ]
    result = _run(args, subprocess_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"best model: {out / MODEL_DIR}" in result.stdout
    # stderr is a pipe, not a terminal: progress in whole lines, no carriage-return frames
    assert "\r" not in result.stderr
    assert re.search(r"(?m)^epoch 1/1: 100% \d+/\d+ \[", result.stderr), result.stderr[-3000:]
    return catalog, out


def test_train_writes_the_run_directory(trained: tuple[Path, Path]) -> None:
    _, out = trained
    assert (out / MODEL_DIR / "weights.safetensors").is_file()
    assert (out / "checkpoint.pt").is_file()
    assert _epochs(out) == [1]


def test_evaluate_prints_a_table_and_writes_json(
    trained: tuple[Path, Path], subprocess_env: dict[str, str]
) -> None:
    catalog, out = trained
    report_path = out.parent / "eval" / "test.json"
    args = [
        "evaluate",
        "--model",
        str(out / MODEL_DIR),
        "--catalog",
        str(catalog),
        "--split",
        "test",
    ]
    result = _run([*args, "--json", str(report_path), "--device", "cpu"], subprocess_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "text_to_image" in result.stdout
        and "image_to_text" in result.stdout
        and "R@1" in result.stdout
    )
    report = json.loads(report_path.read_text())
    assert report["protocol"] == "seed" and report["split"] == "test"
    assert report["model"].startswith("sha256-")
    assert set(report["results"]) == DIRECTIONS
    for metrics in report["results"].values():
        assert METRICS <= set(metrics)
        assert all(math.isfinite(metrics[name]) for name in METRICS)
        assert all(0.0 <= metrics[name] <= 1.0 for name in METRICS - {"median_rank"})
        assert 1.0 <= metrics["median_rank"] <= metrics["gallery"]
        assert metrics["R@1"] <= metrics["R@5"] <= metrics["R@10"]


def test_evaluate_with_the_onnx_runtime_scores_like_pytorch(
    trained: tuple[Path, Path], tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """--runtime onnx encodes with the exported graphs (what the service runs): the
    same products, the same metrics up to a rank that float rounding may swap."""
    catalog, out = trained
    model_dir = tmp_path / "model"  # the export is cached beside the artifact: a copy
    shutil.copytree(out / MODEL_DIR, model_dir)
    reports = {}
    for runtime in ("torch", "onnx"):
        path = tmp_path / f"runtime-{runtime}.json"
        args = ["evaluate", "--model", str(model_dir), "--catalog", str(catalog)]
        result = _run([*args, "--runtime", runtime, "--json", str(path)], subprocess_env)
        assert result.returncode == 0, result.stderr[-3000:]
        reports[runtime] = json.loads(path.read_text())
        # PyTorch needs no export; ONNX Runtime runs graphs exported beside the model.
        assert (model_dir / "onnx").is_dir() == (runtime == "onnx")
    assert reports["onnx"]["runtime"] == "onnx" and reports["torch"]["runtime"] == "torch"
    for direction in DIRECTIONS:
        torch_metrics = reports["torch"]["results"][direction]
        onnx_metrics = reports["onnx"]["results"][direction]
        assert onnx_metrics["queries"] == torch_metrics["queries"]
        for name in ("R@1", "R@10", "mAP"):
            assert abs(onnx_metrics[name] - torch_metrics[name]) <= 2 / torch_metrics["queries"]


def test_evaluate_catalog_protocol_and_save_to_model(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    catalog, out = trained
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for path in (out / MODEL_DIR).iterdir():
        (model_dir / path.name).write_bytes(path.read_bytes())
    args = [
        "evaluate",
        "--model",
        str(model_dir),
        "--catalog",
        str(catalog),
        "--protocol",
        "catalog",
    ]
    assert cli.main([*args, "--split", "val", "--save-to-model", "--device", "cpu"]) == 0
    assert "catalog protocol, val split" in capsys.readouterr().out
    saved = json.loads((model_dir / "metrics.json").read_text())["evaluation"]["catalog-val"]
    assert set(saved["results"]) == DIRECTIONS
    # text->image ranks every product of the catalogue
    assert saved["results"]["text_to_image"]["gallery"] == 200
    assert set(saved["categories"]) == {
        "masterCategory",
        "subCategory",
        "articleType",
        "baseColour",
    }
    assert "product_results" not in saved


def test_evaluate_product_target_fuses_photos_and_titles(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    catalog, out = trained
    common = ["evaluate", "--model", str(out / MODEL_DIR), "--catalog", str(catalog)]
    common += ["--protocol", "catalog", "--split", "val", "--device", "cpu"]
    both = tmp_path / "both.json"
    assert cli.main([*common, "--target", "image", "product", "--json", str(both)]) == 0
    printed = capsys.readouterr().out
    assert "target image" in printed and "target product" in printed
    report = json.loads(both.read_text())
    assert set(report["product_results"]) == {"text_to_image"}
    assert report["product_weights"] == [0.9, 0.1]
    # all weight on the photo: product vectors are the photos, so the scores agree
    photo_only = tmp_path / "photo-only.json"
    args = ["--target", "product", "--product-weights", "1,0", "--json", str(photo_only)]
    assert cli.main([*common, *args]) == 0
    same = json.loads(photo_only.read_text())
    for field, metrics in report["categories"].items():
        assert same["product_categories"][field] == pytest.approx(metrics)
    assert same["product_results"]["text_to_image"] == pytest.approx(
        report["results"]["text_to_image"]
    )
    with pytest.raises(SystemExit) as usage_error:  # a bad option value: a usage error
        cli.main([*common, "--target", "product", "--product-weights", "0.9"])
    assert usage_error.value.code == 2
    assert "argument --product-weights" in capsys.readouterr().err


def test_resume_continues_and_refuses_another_config(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    catalog, out = trained
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint.pt", LOG_FILE):
        (run / name).write_bytes((out / name).read_bytes())
    common = ["--catalog", str(catalog), "--out", str(run), "--device", "cpu", "--resume"]
    assert cli.main(["train", "--config", "tiny", "--epochs", "2", *common]) == 0
    assert _epochs(run) == [1, 2]  # epoch 1 came from the checkpoint, only epoch 2 ran
    capsys.readouterr()

    # another seed is another run: its batches and wordings differ from the checkpoint's
    assert cli.main(["train", "--config", "tiny", "--epochs", "2", "--seed", "99", *common]) == 1
    assert "written by another training config" in capsys.readouterr().err

    # same name (the file's stem), another batch size
    other = tmp_path / "changed" / "tiny.toml"
    other.parent.mkdir()
    tiny = (CONFIG_DIR / "tiny.toml").read_text()
    other.write_text(re.sub(r"(?m)^batch_size = \d+$", "batch_size = 7", tiny))
    assert other.read_text() != tiny
    assert cli.main(["train", "--config", str(other), *common]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "written by another training config" in err
    assert len(err.splitlines()) == 1
    assert _epochs(run) == [1, 2]


def test_evaluate_ranks_like_the_service_unless_told_not_to(
    trained: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    catalog, out = trained
    model = load_model(out / MODEL_DIR, device="cpu")
    assert model.query_bank  # training wrote its titles' sample
    assert model.photo_bank is not None  # and its photos' embeddings
    args = ["evaluate", "--model", str(out / MODEL_DIR), "--catalog", str(catalog)]
    args += ["--device", "cpu", "--split", "val"]
    reports = {}
    for alpha in ("0.5", "0"):
        path = tmp_path / f"alpha-{alpha}.json"
        assert cli.main([*args, "--hubness-alpha", alpha, "--json", str(path)]) == 0
        reports[alpha] = json.loads(path.read_text())
    said = capsys.readouterr().out
    assert said.count("hubness-corrected with alpha 0.5") == 1
    assert reports["0.5"]["hubness"] == {
        "alpha": 0.5,
        "k": 10,
        "min_words": 3,
        "bank": len(model.query_bank),
        "photo_bank": len(model.photo_bank),
    }
    assert reports["0"]["hubness"] is None
    assert cli.main([*args, "--hubness-alpha", "-1"]) == 1
    assert "--hubness-alpha must not be negative" in capsys.readouterr().err


def test_seed_overrides_the_configs(trained: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, _ = trained
    common = ["--catalog", str(catalog), "--config", "tiny", "--epochs", "1", "--device", "cpu"]
    assert cli.main(["train", *common, "--out", str(tmp_path / "seeded"), "--seed", "7"]) == 0
    saved = torch.load(tmp_path / "seeded" / "checkpoint.pt", weights_only=False)
    assert saved["config"]["seed"] == 7
    assert load_config("tiny").seed != 7


def test_init_and_init_text_are_one_or_the_other(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, run = trained
    model = run / MODEL_DIR
    common = ["--catalog", str(catalog), "--config", "tiny", "--epochs", "1", "--device", "cpu"]
    with pytest.raises(SystemExit) as usage_error:
        cli.main(
            [
                "train",
                *common,
                "--out",
                str(tmp_path / "x"),
                "--init",
                str(model),
                "--init-text",
                str(model),
            ]
        )
    assert usage_error.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert (
        cli.main(["train", *common, "--out", str(tmp_path / "t"), "--init-text", str(model)]) == 0
    )
    assert (tmp_path / "t" / "model" / "config.json").is_file()
