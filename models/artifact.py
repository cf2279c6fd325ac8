"""The model artifact: one directory holding everything needed to encode.

config.json        schema version, ModelConfig, versions, weight storage details
weights.safetensors  trained weights (towers equal to their packaged pretrained
                     weights are left out and named in config.json instead)
vocab.json         the word vocabulary (bilstm text tower only)
checksums.json     sha256 of each file above and the model id derived from them
metrics.json       evaluation results (written later; not part of the id)

The weights an artifact borrows from installed packages are pinned by a sha256 per
tensor (`borrowed_sha256` in config.json, so the id covers them; in checksums.json for
artifacts saved before, which keeps their id) and checked at load: another package
version with other weights is an ArtifactError, never silently other embeddings.
An artifact is written into a temporary directory beside its destination and renamed
into place, so a crash mid-save never leaves a half-written artifact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.config import ModelConfig
from models.errors import ArtifactError, ModelsError
from models.files import fsync_tree, sha256_file, write_atomic
from models.image_encoders import LITE0_PACKAGE, build_image_encoder
from models.joint import JointModel
from models.text_encoders import MINILM_PACKAGE, build_text_encoder
from models.tokenizers import MiniLMTokenizer, Tokenizer, WordTokenizer

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# The installed packages whose weights an artifact may borrow, by state-dict prefix.
WEIGHT_PACKAGES = {"image_tower.": LITE0_PACKAGE, "text_tower.": MINILM_PACKAGE}
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
CONFIG, WEIGHTS, VOCAB, CHECKSUMS, METRICS = (
    "config.json",
    "weights.safetensors",
    "vocab.json",
    "checksums.json",
    "metrics.json",
)


def _model_id(file_hashes: dict[str, str]) -> str:
    joined = "\n".join(f"{name}:{file_hashes[name]}" for name in sorted(file_hashes))
    return "sha256-" + hashlib.sha256(joined.encode()).hexdigest()[:16]


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (as stored, on the CPU)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    digest = hashlib.sha256(f"{flat.dtype}{tuple(tensor.shape)}".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _package_of(key: str) -> str:
    return next((p for prefix, p in WEIGHT_PACKAGES.items() if key.startswith(prefix)), "?")


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


def save_artifact(
    model: JointModel,
    directory: str | Path,
    *,
    metrics: dict[str, Any] | None = None,
    weights_dtype: str = "float32",
    float32_prefixes: Sequence[str] = (),
) -> str:
    """Write `model` as an artifact directory and return its model id.

    `weights_dtype="float16"` halves the size; floating weights load back as float32.
    `float32_prefixes` keeps the state-dict keys that start with them in float32 (a tower
    whose embeddings float16 storage moves too far). The directory is replaced whole once
    the new artifact is complete.
    """
    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)  # left by a crashed save of this process id
    staging.mkdir()
    try:
        model_id = _write_artifact(model, staging, metrics, weights_dtype, tuple(float32_prefixes))
        fsync_tree(staging)
        _replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    model.model_id = model_id
    return model_id


def _replace_dir(staging: Path, final: Path) -> None:
    """Rename `staging` to `final`; an existing `final` is moved aside first and removed
    after (a crash in between leaves no artifact at `final`, never a mixed one)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def _write_artifact(
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
            **{p: _version(p) for p in sorted({_package_of(k) for k in from_package})},
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


def write_metrics(directory: str | Path, metrics: dict[str, Any]) -> None:
    write_atomic(Path(directory) / METRICS, json.dumps(metrics, indent=2) + "\n")


def read_metrics(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / METRICS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"model artifact is incomplete: {path.name} is missing in {path.parent}"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"model artifact file {path} is damaged: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"model artifact file {path} is damaged: expected a JSON object")
    return data


def verify_artifact(directory: Path) -> str:
    """Check every file against checksums.json; return the model id."""
    if not directory.is_dir():
        raise ArtifactError(f"model artifact not found: {directory} is not a directory")
    recorded = _read_json(directory / CHECKSUMS)
    hashes = recorded.get("files", {})
    for name, expected in hashes.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"model artifact is incomplete: {name} is missing in {directory}")
        if sha256_file(path) != expected:
            raise ArtifactError(f"model artifact is damaged: {path} does not match its checksum")
    model_id = _model_id(hashes)
    if recorded.get("model_id") != model_id:
        raise ArtifactError(
            f"model artifact is damaged: {directory / CHECKSUMS} names another model id"
        )
    return model_id


# What a command line offers for --device ("auto": CUDA when PyTorch sees a GPU).
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelsError(
            "device 'cuda' was asked for, but PyTorch sees no CUDA GPU; use 'cpu' or 'auto'"
        )
    return resolved


@dataclass(frozen=True)
class ArtifactParts:
    """What an artifact holds besides its weights: enough to run exported graphs."""

    directory: Path
    model_id: str
    config: ModelConfig
    tokenizer: Tokenizer
    metrics: dict[str, Any]
    stored: dict[str, Any]  # config.json as read


def read_artifact(path: str | Path | None = None) -> ArtifactParts:
    """Check an artifact (None: the bundled default model) and read all but its weights.

    Raises ArtifactError for a missing, incomplete or damaged artifact.
    """
    directory = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if path is None and not (directory / CONFIG).is_file():
        raise ArtifactError(
            f"the bundled default model is missing from {directory}; reinstall the project "
            "or pass the path of a trained artifact"
        )
    model_id = verify_artifact(directory)
    stored = _read_json(directory / CONFIG)
    if stored.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"{directory / CONFIG} has schema version {stored.get('schema_version')!r}; "
            f"this version of fashion-retrieval reads version {SCHEMA_VERSION}"
        )
    config = ModelConfig.from_dict(stored["model"])
    tokenizer: Tokenizer = (
        WordTokenizer.load(directory / VOCAB)
        if config.text.name == "bilstm"
        else MiniLMTokenizer(config.text.max_length)
    )
    return ArtifactParts(directory, model_id, config, tokenizer, read_metrics(directory), stored)


def load_model(path: str | Path | None = None, device: str | torch.device = "auto") -> JointModel:
    """Load an artifact directory (None: the bundled default model) ready to encode.

    Never downloads. Raises ArtifactError for a missing, incomplete or damaged artifact.
    """
    parts = read_artifact(path)
    directory, stored = parts.directory, parts.stored
    model = JointModel(parts.config, parts.tokenizer)
    borrowed = stored.get("borrowed_sha256") or _read_json(directory / CHECKSUMS).get(
        "borrowed_sha256"
    )
    _check_borrowed(model, stored.get("weights_from_packages", []), borrowed, stored, directory)
    _load_weights(model, directory / WEIGHTS, stored.get("weights_from_packages", []))
    model.model_id = parts.model_id
    model.metrics = parts.metrics
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
            package = _package_of(key)
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
