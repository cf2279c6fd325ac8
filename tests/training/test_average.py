"""Weight averaging (`fashion-retrieval average`): the arithmetic, what may be averaged,
and the artifact the command writes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models import ArtifactError, build_model, load_model, read_catalog, save_artifact
from training.average import average_models, average_state_dicts
from training.average_cli import main


def _perturbed(source: Path, directory: Path, seed: int) -> Path:
    """A copy of the artifact at `source` with every floating weight moved a little, as a
    fine-tune of it would be."""
    model = load_model(source, device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    save_artifact(model, directory, metrics={"config": "tests-tiny", "epoch": seed})
    return directory


@pytest.fixture
def two_fine_tunes(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    return _perturbed(tiny_model_dir, tmp_path / "a", 1), _perturbed(
        tiny_model_dir, tmp_path / "b", 2
    )


def test_the_average_of_state_dicts_is_their_weighted_sum_in_each_tensors_dtype() -> None:
    first = {
        "w": torch.tensor([1.0, 2.0]),
        "half": torch.tensor([1.0], dtype=torch.float16),
        "count": torch.tensor(7),
    }
    second = {
        "w": torch.tensor([3.0, -2.0]),
        "half": torch.tensor([3.0], dtype=torch.float16),
        "count": torch.tensor(9),
    }
    averaged = average_state_dicts([first, second], [0.25, 0.75])
    torch.testing.assert_close(averaged["w"], torch.tensor([2.5, -1.0]))
    assert averaged["half"].dtype == torch.float16
    assert averaged["half"].item() == 2.5
    assert averaged["count"].item() == 7  # an integer buffer is the first state's
    extrapolated = average_state_dicts([first, second], [1.5, -0.5])
    torch.testing.assert_close(extrapolated["w"], torch.tensor([0.0, 4.0]))


@pytest.mark.parametrize(
    ("second", "weights", "message"),
    [
        ({"w": torch.zeros(2)}, [0.5, 0.5], r"other weights than model 1: \['b'\]"),
        ({"w": torch.zeros(2), "b": torch.zeros(1), "c": torch.zeros(1)}, [0.5, 0.5], "'c'"),
        (
            {"w": torch.zeros(2), "b": torch.zeros(2)},
            [0.5, 0.5],
            r"model 2's b is \(2,\), model 1's \(1,\)",
        ),
        ({"w": torch.zeros(2), "b": torch.zeros(1)}, [0.6, 0.6], "sum to 1"),
        ({"w": torch.zeros(2), "b": torch.zeros(1)}, [1.0], "2 state dicts and 1 weights"),
    ],
)
def test_state_dicts_that_do_not_line_up_are_refused(
    second: dict[str, torch.Tensor], weights: list[float], message: str
) -> None:
    first = {"w": torch.ones(2), "b": torch.ones(1)}
    with pytest.raises(ValueError, match=message):
        average_state_dicts([first, second], weights)


def test_averaged_models_hold_the_mean_of_their_weights(two_fine_tunes: tuple[Path, Path]) -> None:
    a, b = two_fine_tunes
    averaged = average_models([a, b])
    weights_a = load_model(a, device="cpu").state_dict()
    weights_b = load_model(b, device="cpu").state_dict()
    for key, tensor in averaged.state_dict().items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (weights_a[key] + weights_b[key]) / 2)
    assert averaged.photo_bank is None  # encoded by other weights: the caller encodes anew
    assert [entry["weight"] for entry in averaged.metrics["averaged"]] == [0.5, 0.5]


def test_a_model_averaged_with_itself_encodes_as_it_did(
    tiny_model_dir: Path, sample_dir: Path
) -> None:
    model = load_model(tiny_model_dir, device="cpu")
    itself = average_models([tiny_model_dir, tiny_model_dir], [0.3, 0.7])
    images = sorted((sample_dir / "images").iterdir())[:4]
    np.testing.assert_allclose(itself.encode_images(images), model.encode_images(images), atol=1e-5)
    texts = ["navy blue checked shirt for men", "black heels"]
    np.testing.assert_allclose(itself.encode_texts(texts), model.encode_texts(texts), atol=1e-5)


def test_models_of_other_architectures_are_not_averaged(
    tiny_model_dir: Path, tiny_model_config, tmp_path: Path, sample_catalog: Path
) -> None:
    texts = [p.text for p in read_catalog(sample_catalog).products]
    wider = build_model(replace(tiny_model_config, embed_dim=16), texts)
    save_artifact(wider, tmp_path / "wider")
    with pytest.raises(ArtifactError, match="differ in their model config"):
        average_models([tiny_model_dir, tmp_path / "wider"])
    with pytest.raises(ValueError, match="at least two"):
        average_models([tiny_model_dir])


def test_encoding_options_are_no_architecture_the_first_models_are_kept(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    model = load_model(tiny_model_dir, device="cpu")
    model.config = replace(model.config, image_flip_average=True, image_scales=(1.25,))
    save_artifact(model, tmp_path / "scaled")
    first_scaled = average_models([tmp_path / "scaled", tiny_model_dir]).config
    assert first_scaled.image_flip_average and first_scaled.image_scales == (1.25,)
    first_plain = average_models([tiny_model_dir, tmp_path / "scaled"]).config
    assert not first_plain.image_flip_average and first_plain.image_scales == ()


def test_other_vocabularies_are_not_averaged(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = load_model(tiny_model_dir, device="cpu")
    words = model.tokenizer.words
    # the same size, two words swapped: the same shapes, but two rows mean other words
    words[-1], words[-2] = words[-2], words[-1]
    save_artifact(model, tmp_path / "other")
    with pytest.raises(ArtifactError, match="vocabularies"):
        average_models([tiny_model_dir, tmp_path / "other"])


def test_the_command_writes_a_scored_artifact_with_its_own_photo_bank(
    two_fine_tunes: tuple[Path, Path],
    tiny_catalog,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = tiny_catalog(n=200)
    out = tmp_path / "soup"
    a, b = two_fine_tunes
    assert (
        main([str(a), str(b), "--catalog", str(catalog), "--out", str(out), "--score-inputs"]) == 0
    )
    printed = capsys.readouterr().out
    assert str(a) in printed and str(b) in printed and "average" in printed
    soup = load_model(out, device="cpu")
    assert [entry["model"] for entry in soup.metrics["averaged"]] == [
        load_model(a, device="cpu").model_id,
        load_model(b, device="cpu").model_id,
    ]
    assert 0 < soup.metrics["score"] <= 2
    assert soup.photo_bank is not None and soup.query_bank
    report = json.loads(printed.strip().splitlines()[-1])
    assert report["model"] == soup.model_id


def test_the_command_says_what_is_wrong(
    two_fine_tunes: tuple[Path, Path], sample_catalog: Path, tmp_path: Path, capsys
) -> None:
    a, b = two_fine_tunes
    args = ["--catalog", str(sample_catalog), "--out", str(tmp_path / "soup")]
    assert main([str(a), str(b), "--weights", "1", *args]) == 1
    assert "2 models but 1 weights" in capsys.readouterr().err
    assert main([str(a), str(tmp_path / "missing"), *args]) == 1
    assert "missing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main([str(a), str(b), "--weights", "half", "half", *args])
    assert usage.value.code == 2
    assert not (tmp_path / "soup").exists()
    before = load_model(a, device="cpu").model_id
    assert main([str(a), str(b), "--catalog", str(sample_catalog), "--out", str(a)]) == 1
    assert "is one of the models" in capsys.readouterr().err
    assert load_model(a, device="cpu").model_id == before
