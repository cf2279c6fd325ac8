"""models.artifact: save/load round trips, content ids, and clear errors for damage."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import models.artifact
from models import (
    ArtifactError,
    JointModel,
    ModelConfig,
    build_model,
    load_model,
    read_metrics,
    save_artifact,
)
from models.artifact import verify_artifact

TEXTS = ["Puma Men Black T-shirt", "Nike Women Blue Running Shoes", "a title with unknown wordz"]


def _photos(sample_dir: Path, count: int = 6) -> list[Path]:
    return sorted((sample_dir / "images").glob("*.jpg"))[:count]


def _embeddings(model: JointModel, sample_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    return model.encode_texts(TEXTS), model.encode_images(_photos(sample_dir))


def _copy(artifact: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(artifact, tmp_path / "copy"))


def _rewrite_checksums(directory: Path) -> None:
    """Recompute checksums.json after an edit, as a consistent (but different) writer would."""
    recorded = json.loads((directory / "checksums.json").read_text())
    files = {
        name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
        for name in recorded["files"]
    }
    joined = "\n".join(f"{name}:{files[name]}" for name in sorted(files))
    model_id = "sha256-" + hashlib.sha256(joined.encode()).hexdigest()[:16]
    (directory / "checksums.json").write_text(json.dumps({"model_id": model_id, "files": files}))


def test_round_trip_gives_identical_embeddings_and_id(
    tiny_model_dir: Path, sample_dir: Path, tmp_path: Path
) -> None:
    first = load_model(tiny_model_dir, device="cpu")
    texts, images = _embeddings(first, sample_dir)
    assert first.model_id == json.loads((tiny_model_dir / "checksums.json").read_text())["model_id"]
    assert first.model_id == verify_artifact(tiny_model_dir)
    # saving the loaded model again writes the same content, hence the same id
    assert save_artifact(first, tmp_path / "again") == first.model_id
    second = load_model(tmp_path / "again", device="cpu")
    assert second.model_id == first.model_id
    again_texts, again_images = _embeddings(second, sample_dir)
    np.testing.assert_array_equal(again_texts, texts)
    np.testing.assert_array_equal(again_images, images)


def test_saving_returns_the_id_and_sets_it(
    tiny_model_config: ModelConfig, tmp_path: Path, sample_dir: Path
) -> None:
    torch.manual_seed(5)
    model = build_model(tiny_model_config, TEXTS)
    model_id = save_artifact(model, tmp_path / "a")
    assert model.model_id == model_id
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "checksums.json",
        "config.json",
        "vocab.json",
        "weights.safetensors",
    ]
    loaded = load_model(tmp_path / "a", device="cpu")
    np.testing.assert_array_equal(
        _embeddings(loaded, sample_dir)[0], _embeddings(model, sample_dir)[0]
    )
    # other weights, another id
    with torch.no_grad():
        model.text_head.bias.add_(1.0)
    assert save_artifact(model, tmp_path / "b") != model_id


def test_the_shared_fixture_is_deterministic(
    tiny_model_dir: Path, make_tiny_model_dir, tmp_path: Path
) -> None:
    """Other packages' tests rely on `tiny_model_dir` having one id: it is seeded and
    leaves the global RNG alone."""
    state = torch.get_rng_state()
    again = make_tiny_model_dir(tmp_path / "again")
    assert torch.equal(torch.get_rng_state(), state)
    assert verify_artifact(again) == verify_artifact(tiny_model_dir)
    assert (
        len(json.loads((again / "vocab.json").read_text())["words"]) > 1000
    )  # sample titles' words


def test_metrics_are_stored_but_not_part_of_the_id(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_model_dir, tmp_path)
    models.write_metrics(directory, {"val": {"R@1": 0.5}})
    loaded = load_model(directory, device="cpu")
    assert loaded.model_id == verify_artifact(tiny_model_dir)
    assert loaded.metrics == read_metrics(directory) == {"val": {"R@1": 0.5}}


def test_the_query_bank_is_stored_but_not_part_of_the_id(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    assert load_model(tiny_model_dir, device="cpu").query_bank == []
    directory = _copy(tiny_model_dir, tmp_path)
    models.artifact.write_query_bank(directory, ["Nike Men Navy  Blue Shoes", "Puma Women Tee"])
    loaded = load_model(directory, device="cpu")
    assert loaded.model_id == verify_artifact(tiny_model_dir)
    assert loaded.query_bank == ["Nike Men Navy Blue Shoes", "Puma Women Tee"]
    again = tmp_path / "again"
    save_artifact(loaded, again)  # a model's bank travels with it
    assert load_model(again, device="cpu").query_bank == loaded.query_bank
    save_artifact(loaded, again, query_bank=["Red Dress"])
    assert load_model(again, device="cpu").query_bank == ["Red Dress"]
    with pytest.raises(ArtifactError, match="empty query"):
        models.artifact.write_query_bank(directory, ["ok", "  "])


def test_the_photo_bank_is_stored_in_int8_but_not_part_of_the_id(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    assert load_model(tiny_model_dir, device="cpu").photo_bank is None
    directory = _copy(tiny_model_dir, tmp_path)
    dim = load_model(directory, device="cpu").embed_dim
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((30, dim)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    models.artifact.write_photo_bank(directory, bank)
    assert (directory / "photo_bank.npz").stat().st_size < 30 * dim + 2000  # a byte a value
    loaded = load_model(directory, device="cpu")
    assert loaded.model_id == verify_artifact(tiny_model_dir)
    assert loaded.photo_bank is not None and loaded.photo_bank.shape == (30, dim)
    assert np.abs(loaded.photo_bank @ bank.T - bank @ bank.T).max() < 5e-3
    again = tmp_path / "again"
    save_artifact(loaded, again)  # a model's photo bank travels with it
    np.testing.assert_allclose(
        load_model(again, device="cpu").photo_bank, loaded.photo_bank, atol=1e-6
    )
    save_artifact(loaded, again, photo_bank=bank[:3])
    assert load_model(again, device="cpu").photo_bank.shape == (3, dim)  # type: ignore[union-attr]


def test_a_damaged_or_mismatched_photo_bank_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(tiny_model_dir, tmp_path)
    dim = load_model(directory, device="cpu").embed_dim
    models.artifact.write_photo_bank(directory, np.ones((4, dim + 1), np.float32))
    with pytest.raises(ArtifactError, match="photo_bank.npz is damaged"):
        load_model(directory, device="cpu")
    (directory / "photo_bank.npz").write_bytes(b"not a zip file")
    with pytest.raises(ArtifactError, match="photo_bank.npz is damaged"):
        load_model(directory, device="cpu")
    with (directory / "photo_bank.npz").open("wb") as handle:  # float codes, not int8
        np.savez(handle, codes=np.ones((2, dim)), scales=np.ones(2))
    with pytest.raises(ArtifactError, match="expected int8"):
        load_model(directory, device="cpu")


def test_float16_weights_load_as_float32(
    tiny_model_dir: Path, tmp_path: Path, sample_dir: Path
) -> None:
    # its own copy: saving sets the model's id, and the session's tiny_model is shared
    tiny_model = load_model(tiny_model_dir, device="cpu")
    save_artifact(tiny_model, tmp_path / "half", weights_dtype="float16")
    assert {
        t.dtype for t in load_file(str(tmp_path / "half" / "weights.safetensors")).values()
    } == {torch.float16}
    half = load_model(tmp_path / "half", device="cpu")
    assert all(p.dtype == torch.float32 for p in half.parameters())
    for got, want in zip(
        _embeddings(half, sample_dir), _embeddings(tiny_model, sample_dir), strict=True
    ):
        np.testing.assert_allclose(got, want, atol=5e-3)


def test_a_flipped_byte_in_the_weights_is_detected(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_model_dir, tmp_path)
    weights = directory / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(
        ArtifactError, match=r"damaged: .*weights\.safetensors does not match its checksum"
    ):
        load_model(directory, device="cpu")


@pytest.mark.parametrize(
    "name", ["config.json", "weights.safetensors", "vocab.json", "checksums.json"]
)
def test_a_missing_file_is_named(tiny_model_dir: Path, tmp_path: Path, name: str) -> None:
    directory = _copy(tiny_model_dir, tmp_path)
    (directory / name).unlink()
    with pytest.raises(ArtifactError, match=rf"incomplete: {name} is missing in .*copy"):
        load_model(directory, device="cpu")


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ArtifactError, match=r"model artifact not found: .*nowhere is not a directory"
    ):
        load_model(tmp_path / "nowhere", device="cpu")


def test_another_schema_version_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_model_dir, tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["schema_version"] = 99
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="does not match its checksum"):
        load_model(directory, device="cpu")
    _rewrite_checksums(directory)  # a consistent artifact from a future version
    with pytest.raises(
        ArtifactError,
        match="has schema version 99; this version of fashion-retrieval reads version 1",
    ):
        load_model(directory, device="cpu")


def test_weights_that_do_not_fit_the_config_are_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    directory = _copy(tiny_model_dir, tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["model"]["image"]["channels"] = 4
    (directory / "config.json").write_text(json.dumps(config))
    _rewrite_checksums(directory)
    with pytest.raises(ArtifactError, match="do not fit the architecture in config.json"):
        load_model(directory, device="cpu")


def test_garbage_checksums_are_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = _copy(tiny_model_dir, tmp_path)
    (directory / "checksums.json").write_text("{not json")
    with pytest.raises(ArtifactError, match=r"checksums\.json is damaged"):
        load_model(directory, device="cpu")


def test_a_missing_default_model_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models.artifact, "DEFAULT_MODEL_DIR", tmp_path / "default")
    with pytest.raises(ArtifactError, match="the bundled default model is missing from .*default"):
        load_model(None, device="cpu")


def test_a_cuda_request_without_cuda_is_a_clear_error(tiny_model_dir: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(models.ModelsError, match="PyTorch sees no CUDA GPU"):
        load_model(tiny_model_dir, device="cuda")


@pytest.fixture
def pretrained_model() -> JointModel:
    """EfficientNet-Lite0 + MiniLM with their packaged weights (no download), small heads."""
    config = ModelConfig.from_dict(
        {
            "image": {"name": "efficientnet-lite0", "pretrained": True},
            "text": {"name": "minilm", "pretrained": True, "max_length": 16},
            "preprocess": {"height": 64, "width": 48},
            "embed_dim": 16,
        }
    )
    torch.manual_seed(0)
    return build_model(config)


@pytest.mark.slow
def test_unchanged_pretrained_towers_are_referenced_not_copied(
    pretrained_model: JointModel, tmp_path: Path, sample_dir: Path
) -> None:
    save_artifact(pretrained_model, tmp_path / "a")
    stored = json.loads((tmp_path / "a" / "config.json").read_text())
    packaged = stored["weights_from_packages"]
    assert {key.split(".")[0] for key in packaged} == {"image_tower", "text_tower"}
    assert set(packaged) == {
        key
        for key in pretrained_model.state_dict()
        if key.split(".")[0] in ("image_tower", "text_tower")
    }
    keys = load_file(str(tmp_path / "a" / "weights.safetensors")).keys()
    assert {key.split(".")[0] for key in keys} == {"image_head", "text_head"}
    assert (tmp_path / "a" / "weights.safetensors").stat().st_size < 200_000  # heads only
    assert not (tmp_path / "a" / "vocab.json").exists()
    loaded = load_model(tmp_path / "a", device="cpu")
    for got, want in zip(
        _embeddings(loaded, sample_dir), _embeddings(pretrained_model, sample_dir), strict=True
    ):
        np.testing.assert_array_equal(got, want)

    # a fine-tuned tensor is stored; everything left as packaged is still referenced
    with torch.no_grad():
        pretrained_model.image_tower.net._conv_head.weight.mul_(1.01)
    save_artifact(pretrained_model, tmp_path / "b")
    packaged_b = json.loads((tmp_path / "b" / "config.json").read_text())["weights_from_packages"]
    assert set(packaged) - set(packaged_b) == {"image_tower.net._conv_head.weight"}
    stored_b = load_file(str(tmp_path / "b" / "weights.safetensors")).keys()
    assert {key for key in stored_b if key.startswith("image_tower")} == {
        "image_tower.net._conv_head.weight"
    }
    tuned = load_model(tmp_path / "b", device="cpu")
    for got, want in zip(
        _embeddings(tuned, sample_dir), _embeddings(pretrained_model, sample_dir), strict=True
    ):
        np.testing.assert_array_equal(got, want)
