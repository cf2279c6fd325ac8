"""training.loop.train on tiny catalogues: artifacts, logs, and --resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import training.loop
from models import load_model
from training.checkpoint import CHECKPOINT
from training.config import TrainConfig
from training.loop import LOG_FILE, MODEL_DIR, train


class Interrupted(Exception):
    """Stands in for a killed run."""


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]


def _with_epochs(config: TrainConfig, epochs: int) -> TrainConfig:
    return replace(config, optim=replace(config.optim, epochs=epochs))


@pytest.fixture
def catalog(tiny_catalog) -> Path:
    return tiny_catalog(64)


def test_train_writes_an_artifact_a_checkpoint_and_a_log(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path
) -> None:
    artifact = train(
        _with_epochs(tiny_config, 2), catalog, tmp_path / "run", device="cpu", progress=False
    )
    assert artifact == tmp_path / "run" / MODEL_DIR
    log = _log(tmp_path / "run")
    assert [record["epoch"] for record in log] == [1, 2]
    assert log[0]["best"] is True
    assert set(log[0]["val"]) == {"text_to_image", "image_to_text"}
    model = load_model(artifact, device="cpu")
    metrics = model.metrics
    assert metrics["config"] == "tiny" and metrics["epoch"] in (1, 2)
    assert metrics["split"] == {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.1}
    assert (tmp_path / "run" / CHECKPOINT).is_file()


def test_resume_after_an_interruption_matches_an_uninterrupted_run(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _with_epochs(tiny_config, 2)
    train(config, catalog, tmp_path / "straight", device="cpu", progress=False)

    end_of_epoch = training.loop._end_of_epoch

    def stop_after_first_epoch(config, state, *args, **kwargs):  # noqa: ANN001, ANN202
        end_of_epoch(config, state, *args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(training.loop, "_end_of_epoch", stop_after_first_epoch)
    with pytest.raises(Interrupted):
        train(config, catalog, tmp_path / "resumed", device="cpu", progress=False)
    monkeypatch.undo()
    assert [record["epoch"] for record in _log(tmp_path / "resumed")] == [1]

    train(config, catalog, tmp_path / "resumed", resume=True, device="cpu", progress=False)
    resumed, straight = _log(tmp_path / "resumed"), _log(tmp_path / "straight")
    assert [record["epoch"] for record in resumed] == [1, 2]
    assert resumed == straight  # same losses and validation metrics, epoch by epoch
    got = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=False)
    want = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=False)
    assert got["epoch"] == want["epoch"] == 2
    for name, tensor in want["model"].items():
        assert torch.equal(got["model"][name], tensor), name
    assert (
        load_model(tmp_path / "resumed" / MODEL_DIR, device="cpu").model_id
        == load_model(tmp_path / "straight" / MODEL_DIR, device="cpu").model_id
    )


def test_resume_refuses_a_checkpoint_of_another_config(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path
) -> None:
    train(_with_epochs(tiny_config, 1), catalog, tmp_path / "run", device="cpu", progress=False)
    other = replace(tiny_config, optim=replace(tiny_config.optim, lr=0.1))
    with pytest.raises(ValueError, match="written by another training config"):
        train(other, catalog, tmp_path / "run", resume=True, device="cpu", progress=False)
    assert len(_log(tmp_path / "run")) == 1


def test_without_validation_products_the_latest_epoch_is_kept(
    tiny_config: TrainConfig, tiny_catalog, tmp_path: Path
) -> None:
    config = replace(
        _with_epochs(tiny_config, 2),
        data=replace(tiny_config.data, val_fraction=0.0, test_fraction=0.0),
    )
    train(
        config,
        tiny_catalog(32, distinct_titles=True),
        tmp_path / "run",
        device="cpu",
        progress=False,
    )
    log = _log(tmp_path / "run")
    assert [(record["epoch"], record["best"], "val" in record) for record in log] == [
        (1, True, False),
        (2, True, False),
    ]
    assert load_model(tmp_path / "run" / MODEL_DIR, device="cpu").metrics["epoch"] == 2


def test_a_catalogue_too_small_to_train_is_a_clear_error(
    tiny_config: TrainConfig, tiny_catalog, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="has 1 products; need at least 2"):
        config = replace(
            tiny_config, data=replace(tiny_config.data, val_fraction=0.0, test_fraction=0.0)
        )
        train(config, tiny_catalog(1), tmp_path / "run", device="cpu", progress=False)
