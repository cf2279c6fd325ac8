"""The model artifact: one directory holding everything needed to encode.

config.json        schema version, ModelConfig, versions, weight storage details
weights.safetensors  trained weights (towers equal to their packaged pretrained
                     weights are left out and named in config.json instead)
vocab.json         the word vocabulary (bilstm text tower only)
checksums.json     sha256 of each file above and the model id derived from them
metrics.json       evaluation results (written later; not part of the id)
query_bank.txt     a sample of the training split's titles, one per line, for the
                   search's hubness correction (models.hubness; not part of the id:
                   it moves no embedding, and an older artifact may gain one)
photo_bank.npz     the embeddings of a sample of the training split's photos, int8 with
                   a scale per row, for the correction of photo queries (not part of
                   the id either)

The weights an artifact borrows from installed packages are pinned by a sha256 per
tensor (`borrowed_sha256` in config.json, so the id covers them; in checksums.json for
artifacts saved before, which keeps their id) and checked at load: another package
version with other weights is an ArtifactError, never silently other embeddings.
An artifact is written into a temporary directory beside its destination and renamed
into place, so a crash mid-save never leaves a half-written artifact.

This module imports no PyTorch: the CPU service reads an artifact (read_artifact) to run
its exported graphs without it. Saving and loading weights (save_artifact, load_model)
import models.artifact_weights, the PyTorch half, when called.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from models.config import ModelConfig
from models.errors import ArtifactError, ModelsError
from models.files import fsync_tree, sha256_file, write_atomic
from models.hubness import pack_vectors, unpack_vectors
from models.tokenizers import MiniLMTokenizer, Tokenizer, WordTokenizer

if TYPE_CHECKING:
    import torch

    from models.joint import JointModel

SCHEMA_VERSION = 1
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
CONFIG, WEIGHTS, VOCAB, CHECKSUMS, METRICS, QUERY_BANK, PHOTO_BANK = (
    "config.json",
    "weights.safetensors",
    "vocab.json",
    "checksums.json",
    "metrics.json",
    "query_bank.txt",
    "photo_bank.npz",
)


def _model_id(file_hashes: dict[str, str]) -> str:
    joined = "\n".join(f"{name}:{file_hashes[name]}" for name in sorted(file_hashes))
    return "sha256-" + hashlib.sha256(joined.encode()).hexdigest()[:16]


def save_artifact(
    model: JointModel,
    directory: str | Path,
    *,
    metrics: dict[str, Any] | None = None,
    weights_dtype: str = "float32",
    float32_prefixes: Sequence[str] = (),
    query_bank: Sequence[str] | None = None,
    photo_bank: np.ndarray | None = None,
) -> str:
    """Write `model` as an artifact directory and return its model id.

    `weights_dtype="float16"` halves the size; floating weights load back as float32.
    `float32_prefixes` keeps the state-dict keys that start with them in float32 (a tower
    whose embeddings float16 storage moves too far). `query_bank`: typical queries for
    the hubness correction, and `photo_bank` (M, D) photo embeddings for photo queries'
    (None: the model's own, if any). The directory is replaced whole once the new
    artifact is complete.
    """
    from models.artifact_weights import write_artifact  # PyTorch

    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)  # left by a crashed save of this process id
    staging.mkdir()
    try:
        model_id = write_artifact(model, staging, metrics, weights_dtype, tuple(float32_prefixes))
        bank = query_bank if query_bank is not None else model.query_bank
        if bank:
            write_query_bank(staging, bank)
        photos = photo_bank if photo_bank is not None else model.photo_bank
        if photos is not None and len(photos):
            write_photo_bank(staging, photos)
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


def write_metrics(directory: str | Path, metrics: dict[str, Any]) -> None:
    write_atomic(Path(directory) / METRICS, json.dumps(metrics, indent=2) + "\n")


def read_metrics(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / METRICS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_query_bank(directory: str | Path, queries: Sequence[str]) -> None:
    """Write an artifact's query bank (models.hubness), one query per line."""
    lines = [" ".join(q.split()) for q in queries]
    if any(not line for line in lines):
        raise ArtifactError("a query bank cannot hold an empty query")
    write_atomic(Path(directory) / QUERY_BANK, "".join(f"{line}\n" for line in lines))


def read_query_bank(directory: str | Path) -> list[str]:
    """An artifact's query bank; empty when it has none."""
    path = Path(directory) / QUERY_BANK
    if not path.is_file():
        return []
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"model artifact file {path} is damaged: {exc}") from exc


def write_photo_bank(directory: str | Path, vectors: np.ndarray) -> None:
    """Write an artifact's photo bank (models.hubness), packed to int8."""
    codes, scales = pack_vectors(vectors)

    def save(path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, codes=codes, scales=scales)

    write_atomic(Path(directory) / PHOTO_BANK, save)


def read_photo_bank(directory: str | Path, embed_dim: int) -> np.ndarray | None:
    """An artifact's photo bank, (M, embed_dim) normalised float32; None without one."""
    path = Path(directory) / PHOTO_BANK
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            codes, scales = stored["codes"], stored["scales"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"model artifact file {path} is damaged: {exc}") from exc
    if (
        codes.dtype != np.int8
        or codes.ndim != 2
        or codes.shape[1] != embed_dim
        or scales.shape != (len(codes),)
        or not np.isfinite(scales).all()
    ):
        raise ArtifactError(
            f"model artifact file {path} is damaged: expected int8 (M, {embed_dim}) codes "
            f"and M finite scales, got {codes.dtype} {codes.shape} and {scales.shape}"
        )
    return unpack_vectors(codes, scales)


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
    """The torch.device of a --device value; imports PyTorch (device_type does not)."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelsError(
            "device 'cuda' was asked for, but PyTorch sees no CUDA GPU; use 'cpu' or 'auto'"
        )
    return resolved


def device_type(device: str | torch.device = "auto") -> Literal["cpu", "cuda"]:
    """resolve_device(device).type, without importing PyTorch where the answer is
    known without it: "cpu" asked for, or "auto" where no CUDA GPU can be visible."""
    if str(device) == "cpu" or (str(device) == "auto" and not _cuda_possible()):
        return "cpu"
    return "cuda" if resolve_device(device).type == "cuda" else "cpu"


def _cuda_possible() -> bool:
    """False only when PyTorch certainly sees no CUDA GPU: none made visible
    (CUDA_VISIBLE_DEVICES empty or -1), no NVIDIA device node on Linux (nor WSL's
    /dev/dxg), macOS, or no PyTorch. Elsewhere (Windows) PyTorch is asked."""
    if "torch" in sys.modules:  # already paid for: ask it
        return True
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return False
    if sys.platform == "darwin" or importlib.util.find_spec("torch") is None:
        return False
    if sys.platform.startswith("linux"):
        dev = Path("/dev")
        return any(dev.glob("nvidia[0-9]*")) or (dev / "dxg").exists()
    return True


@dataclass(frozen=True)
class ArtifactParts:
    """What an artifact holds besides its weights: enough to run exported graphs."""

    directory: Path
    model_id: str
    config: ModelConfig
    tokenizer: Tokenizer
    metrics: dict[str, Any]
    stored: dict[str, Any]  # config.json as read
    query_bank: list[str]  # empty when the artifact has none
    photo_bank: np.ndarray | None  # None when the artifact has none


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
    return ArtifactParts(
        directory,
        model_id,
        config,
        tokenizer,
        read_metrics(directory),
        stored,
        read_query_bank(directory),
        read_photo_bank(directory, config.embed_dim),
    )


def load_model(path: str | Path | None = None, device: str | torch.device = "auto") -> JointModel:
    """Load an artifact directory (None: the bundled default model) ready to encode.

    Never downloads. Raises ArtifactError for a missing, incomplete or damaged artifact.
    """
    from models.artifact_weights import model_from_parts  # PyTorch

    return model_from_parts(read_artifact(path), device)
