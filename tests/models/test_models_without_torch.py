"""What the CPU service takes from `models` imports no PyTorch: the package itself, the
artifact's reading, the device choice ("auto" with no GPU visible) and the tokenizers.
Checked in a fresh process (this one has PyTorch loaded); the lazy names still work."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_reading_an_artifact_and_tokenizing_import_no_torch(
    subprocess_env: dict[str, str],
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", READ_WITHOUT_TORCH],
        env={**subprocess_env, "CUDA_VISIBLE_DEVICES": ""},  # "auto" is the CPU
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] == [], f"imported PyTorch: {report['torch']}"
    assert report["device"] == "cpu" and report["text"] == "minilm"
    assert report["dtypes"] == ["int64"]
    assert report["joint"] == "models.joint" and report["torch_after"]
