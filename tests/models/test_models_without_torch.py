"""What the CPU service takes from `models` imports no PyTorch: the package itself, the
artifact's reading, the device choice ("auto" with no GPU visible) and the tokenizers.
Checked in a fresh process (this one has PyTorch loaded); the lazy names still work."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Reads the bundled default model (MiniLM text tower) and tokenizes with it, then asks
# for models.JointModel, which must import PyTorch and be the class.
READ_WITHOUT_TORCH = """
import json, sys

import models
from models.artifact import device_type, read_artifact
from models.tokenizers import WordTokenizer

def torch_modules():
    return sorted(name for name in sys.modules if name.split(".")[0] == "torch")[:5]

parts = read_artifact(None)
tokens = parts.tokenizer(["navy blue shirt", "red dress"])
words = WordTokenizer.build(["navy blue shirt"])(["navy shirt"])
report = {
    "device": device_type("auto"),
    "text": parts.config.text.name,
    "dtypes": sorted({str(ids.dtype) for ids in [*tokens.values(), *words.values()]}),
    "torch": torch_modules(),
}
report["joint"] = models.JointModel.__module__
report["torch_after"] = "torch" in sys.modules
print(json.dumps(report))
"""


def _report_of(script: str, env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    """Run `script` in a fresh CPU-only process ("auto" is the CPU) and return the JSON
    report it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**env, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_reading_an_artifact_and_tokenizing_import_no_torch(
    subprocess_env: dict[str, str],
) -> None:
    report = _report_of(READ_WITHOUT_TORCH, subprocess_env)
    assert report["torch"] == [], f"imported PyTorch: {report['torch']}"
    assert report["device"] == "cpu" and report["text"] == "minilm"
    assert report["dtypes"] == ["int64"]
    assert report["joint"] == "models.joint" and report["torch_after"]


# Loads the CPU encoder of an artifact that has no exported graphs yet: the export runs
# in a child process, so this one never imports PyTorch, and the graphs stay cached.
EXPORT_WITHOUT_TORCH = """
import json, sys

from models.encoders import load_encoder

encoder = load_encoder(sys.argv[1], "cpu", runtime="onnx")
vector = encoder.encode_texts(["navy blue shirt"])
report = {
    "encoder": type(encoder).__name__,
    "shape": list(vector.shape),
    "torch": sorted(name for name in sys.modules if name.split(".")[0] == "torch")[:5],
    "directory": str(encoder.directory),
}
print(json.dumps(report))
"""


def test_a_missing_export_is_made_in_a_child_process(
    subprocess_env: dict[str, str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional extra ([onnx])")
    artifact = shutil.copytree(
        tiny_model_dir, tmp_path / "model", ignore=shutil.ignore_patterns("onnx")
    )
    report = _report_of(EXPORT_WITHOUT_TORCH, subprocess_env, str(artifact))
    assert report["encoder"] == "OnnxEncoder" and report["shape"][0] == 1
    assert report["torch"] == [], f"imported PyTorch: {report['torch']}"
    assert report["directory"].startswith(str(artifact / "onnx"))
