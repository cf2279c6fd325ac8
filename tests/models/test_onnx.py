"""The ONNX Runtime CPU encoder against PyTorch's embeddings, its cache, and the fallback."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from models import JointModel, load_model, read_catalog
from models import encoders as encoders_module
from models.encoders import load_encoder
from models.errors import ModelsError

ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional extra ([onnx])")

from models.onnx_encoder import OnnxEncoder  # after the importorskip: needs onnxruntime
from models.onnx_export import (
    EXPORT_INFO,
    INT8_MIN_COSINE,
    cache_dir_for,
    export_onnx,
    find_or_export,
    read_export,
)

SAMPLE_SIZE = 160


@pytest.fixture(scope="module")
def default_model() -> JointModel:
    return load_model(None, device="cpu")


@pytest.fixture(scope="module")
def default_onnx(
    default_model: JointModel, tmp_path_factory: pytest.TempPathFactory
) -> OnnxEncoder:
    """The bundled model exported into a temporary folder (never into models/default)."""
    directory = tmp_path_factory.mktemp("onnx") / default_model.model_id
    info = export_onnx(default_model, directory)
    return OnnxEncoder(default_model, directory, info, threads=1)


@pytest.mark.slow  # exports the bundled model: half a minute on 2 busy cores
def test_onnx_embeddings_match_pytorch_on_the_sample(
    default_model: JointModel, default_onnx: OnnxEncoder, sample_catalog: Path
) -> None:
    products = random.Random(0).sample(read_catalog(sample_catalog).products, SAMPLE_SIZE)
    texts = [p.text for p in products] + ["navy blue checked shirt for men", "red dress"]
    photos = [p.image for p in products]
    text_cos = np.sum(default_onnx.encode_texts(texts) * default_model.encode_texts(texts), 1)
    image_cos = np.sum(default_onnx.encode_images(photos) * default_model.encode_images(photos), 1)
    assert text_cos.min() >= INT8_MIN_COSINE  # whichever text graph the export kept
    assert image_cos.min() >= 0.9999  # float32 graph
    assert default_onnx.export.image == default_onnx.export.text == "float32"  # the default
    assert text_cos.min() >= 0.9999
    # A prepared (decoded once) photo encodes exactly like the photo itself.
    prepared = [default_onnx.preprocess(path) for path in photos[:4]]
    np.testing.assert_array_equal(
        default_onnx.encode_images(prepared), default_onnx.encode_images(photos[:4])
    )
    assert default_onnx.encode_texts([]).shape == (0, default_onnx.embed_dim)
    # Length-sorted batches of any size give each text the embedding it has alone.
    alone = np.concatenate([default_onnx.encode_texts([t]) for t in texts[:12]])
    for batch_size in (1, 5, 64):
        np.testing.assert_allclose(
            default_onnx.encode_texts(texts[:12], batch_size=batch_size), alone, atol=2e-6
        )


def test_the_export_is_cached_beside_the_artifact_by_model_id(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    artifact = shutil.copytree(
        tiny_model_dir, tmp_path / "model", ignore=shutil.ignore_patterns("onnx")
    )
    model = load_model(artifact, device="cpu")
    directory, info = find_or_export(model, artifact)
    assert directory == artifact / "onnx" / model.model_id
    assert (directory / EXPORT_INFO).is_file() and info.model_id == model.model_id
    again, _ = find_or_export(model, artifact)  # read back, not exported again
    assert again == directory and read_export(directory, model.model_id) == info
    assert read_export(directory, "sha256-another") is None


def test_a_read_only_artifact_caches_in_the_user_folder(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = shutil.copytree(
        tiny_model_dir, tmp_path / "model", ignore=shutil.ignore_patterns("onnx")
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("models.onnx_export._writable", lambda directory: False)
    model = load_model(artifact, device="cpu")
    directory = cache_dir_for(artifact, model.model_id)
    assert directory == tmp_path / "cache" / "fashion-retrieval" / "onnx" / model.model_id


def test_load_encoder_runs_onnx_on_the_cpu(tiny_model_dir: Path, tmp_path: Path) -> None:
    artifact = shutil.copytree(tiny_model_dir, tmp_path / "model")
    encoder = load_encoder(artifact, device="cpu", runtime="onnx")
    reference = load_model(artifact, device="cpu")
    texts = ["red dress", "Navy blue checked shirt for men"]
    assert isinstance(encoder, OnnxEncoder) and encoder.model_id == reference.model_id
    cosine = np.sum(encoder.encode_texts(texts) * reference.encode_texts(texts), axis=1)
    assert cosine.min() >= INT8_MIN_COSINE
    assert isinstance(load_encoder(artifact, device="cpu", runtime="torch"), JointModel)


def test_without_onnx_runtime_it_falls_back_to_pytorch_and_says_so(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(encoders_module, "onnx_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="models.encoders"):
        encoder = load_encoder(tiny_model_dir, device="cpu")
    assert isinstance(encoder, JointModel)
    assert "ONNX Runtime is not installed: encoding with PyTorch" in caplog.text
    with pytest.raises(ModelsError, match=r"fashion-retrieval\[onnx\]"):
        load_encoder(tiny_model_dir, device="cpu", runtime="onnx")


def test_an_unknown_runtime_is_a_clear_error(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelsError, match="unknown runtime 'tvm'"):
        load_encoder(tiny_model_dir, runtime="tvm")  # type: ignore[arg-type]


def test_an_int8_text_tower_is_kept_only_within_the_cosine_bar(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = load_model(tiny_model_dir, device="cpu")
    info = export_onnx(model, tmp_path / "onnx", int8=True)
    assert info.text_int8_min_cosine is not None
    assert (info.text == "int8") == (info.text_int8_min_cosine >= INT8_MIN_COSINE)
    assert (tmp_path / "onnx" / "text-int8.onnx").is_file() == (info.text == "int8")
    encoder = OnnxEncoder(model, tmp_path / "onnx", info, threads=1)
    texts = ["red dress", "navy blue checked shirt for men"]
    cosine = np.sum(encoder.encode_texts(texts) * model.encode_texts(texts), axis=1)
    assert cosine.min() >= (INT8_MIN_COSINE if info.text == "int8" else 0.9999)


@pytest.mark.parametrize(
    "encoding",
    [{"image_flip_average": True}, {"image_flip_average": True, "image_scales": (1.25,)}],
    ids=["mirror", "mirror-and-scale"],
)
def test_an_encoding_option_is_exported_in_the_graph(
    tiny_model_dir: Path, tmp_path: Path, sample_catalog: Path, encoding: dict
) -> None:
    from dataclasses import replace

    from models import save_artifact

    model = load_model(tiny_model_dir, device="cpu")
    model.config = replace(model.config, **encoding)
    save_artifact(model, tmp_path / "model")
    reference = load_model(tmp_path / "model", device="cpu")
    assert (
        replace(reference.config, image_flip_average=False, image_scales=())
        == load_model(tiny_model_dir, device="cpu").config
        and reference.model_id != load_model(tiny_model_dir, device="cpu").model_id
    )
    encoder = load_encoder(tmp_path / "model", device="cpu", runtime="onnx")
    assert isinstance(encoder, OnnxEncoder)
    photos = [p.image for p in read_catalog(sample_catalog).products[:12]]
    cosine = np.sum(encoder.encode_images(photos) * reference.encode_images(photos), axis=1)
    assert cosine.min() >= 0.9999
