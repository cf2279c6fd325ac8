"""training.loop.train on tiny catalogues: artifacts, logs, and --resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import training.loop
from models import ArtifactError, ConfigError, load_model, read_catalog, save_artifact
from training.checkpoint import CHECKPOINT
from training.config import TrainConfig
from training.data import SplitSpec
from training.loop import LOG_FILE, MODEL_DIR, train


class Interrupted(Exception):
    """Stands in for a killed run."""


def _log(out: Path, *, timed: bool = True) -> list[dict]:
    records = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    return records if timed else [{k: v for k, v in r.items() if k != "time"} for r in records]


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
    assert set(log[0]["val"]) == {"text_to_image", "image_to_text", "title_to_photo", "categories"}
    assert log[0]["time"]["images_per_s"] > 0
    model = load_model(artifact, device="cpu")
    metrics = model.metrics
    assert metrics["config"] == "tiny" and metrics["epoch"] in (1, 2)
    assert metrics["split"] == {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.1}
    assert (tmp_path / "run" / CHECKPOINT).is_file()
    # the query bank (models.hubness) holds training titles only: never a val or test one
    splits = SplitSpec.from_metrics(metrics).split(read_catalog(catalog).products)
    assert model.query_bank == sorted({p.text for p in splits.train})
    assert not set(model.query_bank) & {p.text for p in splits.val + splits.test}
    # and the photo bank the embeddings of training photos (fewer than PHOTO_BANK_SIZE
    # here: all of them), stored in int8
    assert model.photo_bank is not None
    own = model.encode_images([p.image for p in splits.train])
    assert model.photo_bank.shape == own.shape
    np.testing.assert_allclose((model.photo_bank * own).sum(axis=1), 1.0, atol=2e-3)


def test_resume_after_an_interruption_matches_an_uninterrupted_run(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _with_epochs(tiny_config, 2)
    train(config, catalog, tmp_path / "straight", device="cpu", progress=False)

    end_of_epoch = training.loop.end_of_epoch

    def stop_after_first_epoch(config, state, *args, **kwargs):  # noqa: ANN001, ANN202
        end_of_epoch(config, state, *args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(training.loop, "end_of_epoch", stop_after_first_epoch)
    with pytest.raises(Interrupted):
        train(config, catalog, tmp_path / "resumed", device="cpu", progress=False)
    monkeypatch.undo()
    assert [record["epoch"] for record in _log(tmp_path / "resumed")] == [1]

    train(config, catalog, tmp_path / "resumed", resume=True, device="cpu", progress=False)
    resumed = _log(tmp_path / "resumed", timed=False)
    straight = _log(tmp_path / "straight", timed=False)
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


def test_a_checkpoint_from_before_a_new_option_still_resumes(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path
) -> None:
    train(_with_epochs(tiny_config, 1), catalog, tmp_path / "run", device="cpu", progress=False)
    saved = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)
    del saved["config"]["optim"]["hard_batch_fraction"]  # as written before the option was
    torch.save(saved, tmp_path / "run" / CHECKPOINT)
    config = _with_epochs(tiny_config, 2)
    train(config, catalog, tmp_path / "run", resume=True, device="cpu", progress=False)
    assert [record["epoch"] for record in _log(tmp_path / "run")] == [1, 2]
    # but an option set otherwise than at its default is another config
    other = replace(config, optim=replace(config.optim, hard_batch_fraction=0.5))
    with pytest.raises(ValueError, match="written by another training config"):
        train(other, catalog, tmp_path / "run", resume=True, device="cpu", progress=False)


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


def _multi_field(config: TrainConfig) -> TrainConfig:
    """The tiny config with shopper-query fields, augmentation and a checkpoint after
    every batch."""
    return replace(
        config,
        fields={"articleType": 0.5, "colour_article": 0.5, "masterCategory": 0.2},
        optim=replace(config.optim, epochs=2, augment=True, checkpoint_minutes=0.0),
    )


@pytest.mark.parametrize(("cmpc_init", "hard_batch_fraction"), [("random", 0.0), ("text", 0.5)])
def test_a_mid_epoch_resume_gives_the_weights_of_an_uninterrupted_run(
    tiny_config: TrainConfig,
    catalog: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cmpc_init: str,
    hard_batch_fraction: float,
) -> None:
    # With an imprinted classifier the resumed run must restore the classifier it
    # trained, not imprint it again from the half-trained text side; hard batches must
    # come in the same order again.
    config = _multi_field(tiny_config)
    config = replace(
        config,
        loss=replace(config.loss, cmpc_init=cmpc_init),
        optim=replace(config.optim, hard_batch_fraction=hard_batch_fraction),
    )
    train(config, catalog, tmp_path / "straight", device="cpu", progress=False)

    save = training.loop.save_state

    def killed_after_step_2_of_epoch_2(config, state, out):  # noqa: ANN001, ANN202
        save(config, state, out)
        if state.epoch == 1 and state.step == 2:
            raise Interrupted

    monkeypatch.setattr(training.loop, "save_state", killed_after_step_2_of_epoch_2)
    with pytest.raises(Interrupted):
        train(config, catalog, tmp_path / "resumed", device="cpu", progress=False)
    monkeypatch.undo()
    saved = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=False)
    assert (saved["epoch"], saved["step"]) == (1, 2)

    train(config, catalog, tmp_path / "resumed", resume=True, device="cpu", progress=False)
    assert _log(tmp_path / "resumed", timed=False) == _log(tmp_path / "straight", timed=False)
    got = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=False)
    want = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=False)
    assert (got["epoch"], got["step"]) == (want["epoch"], want["step"]) == (2, 0)
    for name, tensor in want["model"].items():
        assert torch.equal(got["model"][name], tensor), name
    for name, tensor in want["objective"].items():
        assert torch.equal(got["objective"][name], tensor), name


def test_init_starts_from_an_artifacts_weights(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path
) -> None:
    config = _with_epochs(tiny_config, 1)
    first = train(config, catalog, tmp_path / "first", device="cpu", progress=False)
    zero_lr = replace(config, optim=replace(config.optim, lr=0.0, tower_lr=0.0))
    again = train(zero_lr, catalog, tmp_path / "again", init=first, device="cpu", progress=False)
    # nothing learns at lr 0, so the result is the artifact it started from
    assert load_model(again, device="cpu").model_id == load_model(first, device="cpu").model_id


@pytest.mark.parametrize(
    ("start", "differs"), [("init", "architecture differs"), ("init_text", "text side differs")]
)
def test_a_start_artifact_of_another_shape_is_refused(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path, start: str, differs: str
) -> None:
    first = train(
        _with_epochs(tiny_config, 1), catalog, tmp_path / "a", device="cpu", progress=False
    )
    wider = replace(tiny_config, model=replace(tiny_config.model, embed_dim=16))
    with pytest.raises(ArtifactError, match=f"{differs}.*embed_dim 32.*embed_dim 16"):
        train(wider, catalog, tmp_path / "b", device="cpu", progress=False, **{start: first})


def test_init_keeps_an_artifacts_encoding_options(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path
) -> None:
    """Fine-tuning the bundled model (mirror averaged, perhaps at several scales) with a
    config that does not name the options is no architecture change, and the result
    still encodes photos as the artifact did."""
    first = train(
        _with_epochs(tiny_config, 1), catalog, tmp_path / "a", device="cpu", progress=False
    )
    model = load_model(first, device="cpu")
    model.config = replace(model.config, image_flip_average=True, image_scales=(1.25,))
    save_artifact(model, tmp_path / "flipped")
    assert not tiny_config.model.image_flip_average and not tiny_config.model.image_scales
    again = train(
        _with_epochs(tiny_config, 1),
        catalog,
        tmp_path / "b",
        init=tmp_path / "flipped",
        device="cpu",
        progress=False,
    )
    tuned = load_model(again, device="cpu").config
    assert tuned.image_flip_average and tuned.image_scales == (1.25,)


def _texts_and_photos(model_dir: Path, catalog: Path) -> tuple[np.ndarray, np.ndarray]:
    model = load_model(model_dir, device="cpu")
    products = read_catalog(catalog).products[:8]
    return model.encode_texts([p.text for p in products]), model.encode_images(
        [p.image for p in products]
    )


def test_init_text_trains_a_new_image_side_into_a_locked_text_space(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path
) -> None:
    first = train(
        _with_epochs(tiny_config, 1), catalog, tmp_path / "a", device="cpu", progress=False
    )
    image = replace(tiny_config.model.image, channels=4)  # another image tower, from scratch
    locked = replace(
        _with_epochs(tiny_config, 1),
        model=replace(tiny_config.model, image=image),
        optim=replace(tiny_config.optim, epochs=1, freeze_text=True),
    )
    second = train(locked, catalog, tmp_path / "b", init_text=first, device="cpu", progress=False)
    texts_a, _ = _texts_and_photos(first, catalog)
    texts_b, photos_b = _texts_and_photos(second, catalog)
    np.testing.assert_array_equal(texts_b, texts_a)  # the text side is the artifact's, kept
    assert load_model(second, device="cpu").config.image.channels == 4
    # the image side learnt: a fresh tower of that shape with lr 0 encodes otherwise
    still = replace(locked, optim=replace(locked.optim, lr=0.0, tower_lr=0.0))
    untrained = train(still, catalog, tmp_path / "c", init_text=first, device="cpu", progress=False)
    assert not np.allclose(_texts_and_photos(untrained, catalog)[1], photos_b)


def test_init_and_init_text_exclude_each_other(
    tiny_config: TrainConfig, catalog: Path, tmp_path: Path
) -> None:
    first = train(
        _with_epochs(tiny_config, 1), catalog, tmp_path / "a", device="cpu", progress=False
    )
    with pytest.raises(ConfigError, match="exclude each other"):
        train(tiny_config, catalog, tmp_path / "c", init=first, init_text=first, device="cpu")
