"""The OpenVINO CPU encoder: the exported graphs in OpenVINO, its bfloat16 text tower
kept only within the cosine bar, and how "auto" chooses the engine."""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models import JointModel, load_model, read_catalog, save_artifact
from models import encoders as encoders_module
from models.artifact import DEFAULT_MODEL_DIR
from models.encoders import load_encoder
from models.errors import ModelsError

pytest.importorskip("onnxruntime", reason="the export needs the [onnx] extra")
ov = pytest.importorskip("openvino", reason="OpenVINO is part of the [onnx] extra")

import models.openvino_runtime as openvino_runtime  # noqa: E402 - after the importorskip
from models.onnx_encoder import OnnxEncoder  # noqa: E402

SAMPLE_SIZE = 120


@pytest.fixture(scope="module")
def default_model() -> JointModel:
    return load_model(None, device="cpu")


@pytest.fixture(scope="module")
def default_openvino(tmp_path_factory: pytest.TempPathFactory) -> OnnxEncoder:
    """The bundled model exported into a temporary copy (never into models/default)."""
    copy = tmp_path_factory.mktemp("ov") / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, copy, ignore=shutil.ignore_patterns("onnx"))
    encoder = load_encoder(copy, device="cpu", runtime="openvino", threads=1)
    assert isinstance(encoder, OnnxEncoder)
    return encoder


@pytest.mark.slow  # exports the bundled model: half a minute on 2 busy cores
def test_openvino_embeddings_match_pytorch_on_the_sample(
    default_model: JointModel, default_openvino: OnnxEncoder, sample_catalog: Path
) -> None:
    products = random.Random(1).sample(read_catalog(sample_catalog).products, SAMPLE_SIZE)
    texts = [p.text for p in products] + ["navy blue checked shirt for men", "red dress"]
    photos = [p.image for p in products]
    assert default_openvino.runtime == "openvino"
    bf16 = openvino_runtime.has_bfloat16(ov.Core())
    assert default_openvino.text_precision == ("bfloat16" if bf16 else "float32")
    text_cos = np.sum(default_openvino.encode_texts(texts) * default_model.encode_texts(texts), 1)
    image_cos = np.sum(
        default_openvino.encode_images(photos) * default_model.encode_images(photos), 1
    )
    assert text_cos.min() >= openvino_runtime.TEXT_MIN_COSINE
    assert image_cos.min() >= 0.9999  # the image tower is always float32
    # Decoded once or not, batched or not: the same rows.
    prepared = [default_openvino.preprocess(path) for path in photos[:4]]
    np.testing.assert_allclose(
        default_openvino.encode_images(prepared),
        default_openvino.encode_images(photos[:4]),
        atol=1e-6,
    )
    alone = np.concatenate([default_openvino.encode_texts([t]) for t in texts[:6]])
    np.testing.assert_allclose(default_openvino.encode_texts(texts[:6]), alone, atol=1e-2)


def test_openvino_runs_the_in_graph_mirror_and_rescaled_views(
    tiny_model_dir: Path, tmp_path: Path, sample_catalog: Path
) -> None:
    model = load_model(tiny_model_dir, device="cpu")
    model.config = replace(model.config, image_flip_average=True, image_scales=(1.25, 0.75))
    save_artifact(model, tmp_path / "model")
    reference = load_model(tmp_path / "model", device="cpu")
    encoder = load_encoder(tmp_path / "model", device="cpu", runtime="openvino", threads=1)
    assert isinstance(encoder, OnnxEncoder) and encoder.runtime == "openvino"
    photos = [p.image for p in read_catalog(sample_catalog).products[:12]]
    cosine = np.sum(encoder.encode_images(photos) * reference.encode_images(photos), axis=1)
    assert cosine.min() >= 0.9999


def test_the_bfloat16_text_tower_is_kept_only_within_the_bar(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Probes are checked against ONNX Runtime's float32 text graph: bfloat16 first, then
    float32; when neither passes, ONNX Runtime keeps the text tower."""
    artifact = shutil.copytree(tiny_model_dir, tmp_path / "model")
    monkeypatch.setattr(openvino_runtime, "has_bfloat16", lambda core: True)
    monkeypatch.setattr(openvino_runtime, "TEXT_MIN_COSINE", 1.01)  # no graph passes
    with caplog.at_level(logging.WARNING, logger="models.openvino_runtime"):
        strict = load_encoder(artifact, device="cpu", runtime="openvino")
    assert isinstance(strict, OnnxEncoder)
    assert strict.text_precision == "float32, run by ONNX Runtime"
    assert "OpenVINO's bfloat16 text tower moved a probe" in caplog.text
    assert "OpenVINO's float32 text tower moved a probe" in caplog.text
    onnx = load_encoder(artifact, device="cpu", runtime="onnx")
    texts = ["red dress", "Navy blue checked shirt for men"]
    np.testing.assert_array_equal(strict.encode_texts(texts), onnx.encode_texts(texts))
    monkeypatch.setattr(openvino_runtime, "TEXT_MIN_COSINE", -1.0)  # any graph passes
    loose = load_encoder(artifact, device="cpu", runtime="openvino")
    assert isinstance(loose, OnnxEncoder) and loose.text_precision == "bfloat16"


def test_auto_prefers_openvino_then_onnx_runtime_and_says_so(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    artifact = shutil.copytree(tiny_model_dir, tmp_path / "model")
    chosen = load_encoder(artifact, device="cpu")
    assert isinstance(chosen, OnnxEncoder) and chosen.runtime == "openvino"
    onnx = load_encoder(artifact, device="cpu", runtime="onnx")
    assert isinstance(onnx, OnnxEncoder) and onnx.runtime == "onnx"
    monkeypatch.setattr(encoders_module, "openvino_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="models.encoders"):
        fallback = load_encoder(artifact, device="cpu")
    assert isinstance(fallback, OnnxEncoder) and fallback.runtime == "onnx"
    assert "OpenVINO is not installed: encoding with ONNX Runtime" in caplog.text
    with pytest.raises(ModelsError, match=r"runtime 'openvino' needs OpenVINO"):
        load_encoder(artifact, device="cpu", runtime="openvino")


def test_small_batches_are_padded_to_a_multiple_of_8_tokens_with_zeros() -> None:
    ids = np.arange(1, 31, dtype=np.int64).reshape(3, 10)
    mask = np.ones((3, 10), dtype=np.int64)
    padded = openvino_runtime.TEXT_PADDING({"input_ids": ids, "attention_mask": mask})
    assert padded["input_ids"].shape == padded["attention_mask"].shape == (3, 16)
    np.testing.assert_array_equal(padded["input_ids"][:, :10], ids)
    assert not padded["input_ids"][:, 10:].any() and not padded["attention_mask"][:, 10:].any()
    exact = {"input_ids": ids[:, :8], "attention_mask": mask[:, :8]}
    assert openvino_runtime.TEXT_PADDING(exact) is exact  # already a multiple of 8
    rows = openvino_runtime.PAD_ROWS_UP_TO + 1
    large = {
        "input_ids": np.ones((rows, 10), np.int64),
        "attention_mask": np.ones((rows, 10), np.int64),
    }
    assert openvino_runtime.TEXT_PADDING(large) is large  # an index build's batch stays


@pytest.mark.slow  # the bundled model's export, shared with the test above
def test_padded_text_graph_returns_the_same_rows(default_openvino: OnnxEncoder) -> None:
    """Padding moves no embedding and returns one row per text (MiniLM; a Bi-LSTM graph
    fails the probes in OpenVINO and stays with ONNX Runtime)."""
    graph = default_openvino._text
    assert isinstance(graph, openvino_runtime.OpenVinoGraph)
    assert graph.pad is openvino_runtime.TEXT_PADDING
    texts = ["red dress", "Navy blue checked shirt for men with long sleeves", "socks"]
    for count in (1, 2, 3):
        padded = default_openvino.encode_texts(texts[:count])
        graph.pad = None
        try:
            plain = default_openvino.encode_texts(texts[:count])
        finally:
            graph.pad = openvino_runtime.TEXT_PADDING
        assert padded.shape == plain.shape == (count, default_openvino.embed_dim)
        assert np.sum(padded * plain, axis=1).min() >= 0.9999
