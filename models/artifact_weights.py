"""The PyTorch half of the model artifact (models.artifact): a model's weights written
to and read from weights.safetensors, and the borrowed pretrained tensors checked.

models.artifact imports this only when a model is saved or loaded into PyTorch, so
reading an artifact for the exported graphs (the CPU service) never imports PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.artifact import (
    CHECKSUMS,
    CONFIG,
    SCHEMA_VERSION,
    VOCAB,
    WEIGHTS,
    ArtifactParts,
    _model_id,
    _read_json,
    _version,
    resolve_device,
    write_metrics,
)
from models.errors import ArtifactError
from models.files import sha256_file
from models.image_encoders import build_image_encoder
from models.joint import JointModel
from models.text_encoders import build_text_encoder
from models.tokenizers import WordTokenizer

# Log under the artifact's name: one logger for everything about artifacts.
logger = logging.getLogger("models.artifact")

# The towers whose tensors an artifact may borrow from the package they started from.
BORROWING_TOWERS = ("image_tower", "text_tower")


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (as stored, on the CPU)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    digest = hashlib.sha256(f"{flat.dtype}{tuple(tensor.shape)}".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _package_of(model: JointModel, key: str) -> str:
    """The installed package a borrowed tensor comes from (the tower's weights package)."""
    tower = key.split(".", 1)[0]
    package = getattr(model, tower).weights_package if tower in BORROWING_TOWERS else None
    return package or "?"


def _unchanged_pretrained_weights(model: JointModel) -> list[str]:
    """State-dict keys whose tensors still equal the packaged pretrained weights.

    Fine-tuning often leaves parts of a pretrained tower as shipped (frozen blocks, a
    frozen word-embedding table); the artifact refers to the package for those
    instead of storing a copy.
    """
    fresh = {
        "image_tower": lambda: build_image_encoder(model.config.image),
        "text_tower": lambda: build_text_encoder(model.config.text),
    }
    same = []
    for name, build in fresh.items():
        if getattr(model, name).weights_package is None:  # nothing installed to refer to
            continue
        reference = build().state_dict()
        for key, value in getattr(model, name).state_dict().items():
            if key in reference and torch.equal(reference[key].cpu(), value.cpu()):
                same.append(f"{name}.{key}")
    return same


def write_artifact(
    model: JointModel,
    directory: Path,
    metrics: dict[str, Any] | None,
    weights_dtype: str,
    float32_prefixes: tuple[str, ...] = (),
) -> str:
    from_package = set(_unchanged_pretrained_weights(model))
    dtype = {"float32": torch.float32, "float16": torch.float16}[weights_dtype]

    def stored(key: str, value: torch.Tensor) -> torch.Tensor:
        if value.is_floating_point() and not key.startswith(float32_prefixes):
            value = value.to(dtype)
        return value.detach().cpu().contiguous()

    state = {
        key: stored(key, value)
        for key, value in model.state_dict().items()
        if key not in from_package
    }
    save_file(state, str(directory / WEIGHTS))
    files = [CONFIG, WEIGHTS]
    if isinstance(model.tokenizer, WordTokenizer):
        model.tokenizer.save(directory / VOCAB)
        files.append(VOCAB)
    borrowed = model.state_dict()
    config = {
        "schema_version": SCHEMA_VERSION,
        "model": model.config.to_dict(),
        "weights_from_packages": sorted(from_package),
        "borrowed_sha256": {key: tensor_sha256(borrowed[key]) for key in sorted(from_package)},
        "weights_dtype": weights_dtype,
        **({"weights_float32": list(float32_prefixes)} if float32_prefixes else {}),
        "versions": {
            "fashion-retrieval": _version("fashion-retrieval"),
            "torch": torch.__version__,
            "python": platform.python_version(),
            **{p: _version(p) for p in sorted({_package_of(model, k) for k in from_package})},
        },
    }
    (directory / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    hashes = {name: sha256_file(directory / name) for name in files}
    model_id = _model_id(hashes)
    (directory / CHECKSUMS).write_text(
        json.dumps({"model_id": model_id, "files": hashes}, indent=2) + "\n", encoding="utf-8"
    )
    if metrics is not None:
        write_metrics(directory, metrics)
    return model_id


def model_from_parts(parts: ArtifactParts, device: str | torch.device) -> JointModel:
    """The JointModel of an artifact read by models.artifact.read_artifact, its weights
    loaded and checked, on `device`, in eval mode."""
    directory, stored = parts.directory, parts.stored
    model = JointModel(parts.config, parts.tokenizer)
    borrowed = stored.get("borrowed_sha256") or _read_json(directory / CHECKSUMS).get(
        "borrowed_sha256"
    )
    _check_borrowed(model, stored.get("weights_from_packages", []), borrowed, stored, directory)
    _load_weights(model, directory / WEIGHTS, stored.get("weights_from_packages", []))
    model.model_id = parts.model_id
    model.metrics = parts.metrics
    model.query_bank = parts.query_bank
    model.photo_bank = parts.photo_bank
    return model.to(resolve_device(device)).eval()


def _check_borrowed(
    model: JointModel,
    keys: list[str],
    recorded: dict[str, str] | None,
    stored: dict[str, Any],
    directory: Path,
) -> None:
    """The tensors taken from installed packages must be the ones the artifact was saved
    with. Artifacts saved before hashes were recorded load with a warning."""
    if not keys:
        return
    if recorded is None:
        logger.warning(
            "%s names no hashes of the %d tensors it takes from installed packages; "
            "they are not checked",
            directory,
            len(keys),
        )
        return
    state = model.state_dict()
    for key in keys:
        if key not in state or recorded.get(key) != tensor_sha256(state[key]):
            package = _package_of(model, key)
            saved_with = stored.get("versions", {}).get(package)
            was = f", the artifact was saved with {saved_with}" if saved_with else ""
            raise ArtifactError(
                f"the model artifact {directory} takes {key} from the installed package "
                f"{package}, whose weights differ from those it was saved with (installed: "
                f"{package} {_version(package)}{was}); install the version it was saved "
                "with, or use an artifact saved with the installed one"
            )


def _load_weights(model: JointModel, path: Path, from_packages: list[str]) -> None:
    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ArtifactError(f"cannot read the weights {path}: {exc}") from exc
    packaged = set(from_packages)
    expected = {k: v for k, v in model.state_dict().items() if k not in packaged}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or reshaped:
        raise ArtifactError(
            f"the weights {path} do not fit the architecture in config.json "
            f"(missing: {missing[:3]}, unexpected: {unexpected[:3]}, wrong shape: {reshaped[:3]})"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=False)
