"""The CPU service never imports PyTorch (issue #13: `import torch` alone is ~485 MB of
the service's RSS). With the towers' graphs exported, loading the model and the index
and answering text and photo searches with the ONNX Runtime or OpenVINO encoder leave
no `torch` in sys.modules. Checked in a fresh process: this one has PyTorch loaded."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.encoders import load_encoder

pytest.importorskip("onnxruntime", reason="ONNX Runtime is an optional extra ([onnx])")

# Builds the app as `fashion-retrieval serve` does (create_app, its lifespan loads the
# model and the index), searches once by text and once by photo, reports what it loaded.
SERVE_AND_SEARCH = """
import json, sys
from pathlib import Path

from fastapi.testclient import TestClient

from app import create_app
from app.settings import Settings

model, index, runtime, scan, photo = sys.argv[1:]
settings = Settings(
    model={"path": model, "runtime": runtime},  # device "auto", as served
    index={"path": index, "scan": scan},
)
with TestClient(create_app(settings)) as client:
    text = client.post("/v1/search/text", json={"query": "navy blue shirt", "k": 3})
    image = client.post(
        "/v1/search/image",
        files={"file": ("p.jpg", Path(photo).read_bytes(), "image/jpeg")},
        data={"k": "3"},
    )
print(json.dumps({
    "status": [text.status_code, image.status_code],
    "hits": [len(text.json()["results"]), len(image.json()["results"])],
    "torch": sorted(name for name in sys.modules if name.split(".")[0] == "torch")[:5],
}))
"""


@pytest.fixture(scope="module")
def exported_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny model with its ONNX graphs exported beside it (the export
    needs PyTorch; serving the graphs does not)."""
    directory = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_model_dir, directory)
    load_encoder(directory, device="cpu", runtime="onnx")
    return directory


@pytest.mark.parametrize(
    ("runtime", "scan"),
    [("openvino", "pca"), ("onnx", "pca"), ("onnx", "float32"), ("onnx", "faiss")],
)
def test_the_cpu_service_searches_without_importing_torch(
    exported_model_dir: Path,
    real_index_dir: Path,
    sample_catalog: Path,
    subprocess_env: dict[str, str],
    runtime: str,
    scan: str,
) -> None:
    if runtime == "openvino" and importlib.util.find_spec("openvino") is None:
        pytest.skip("OpenVINO is not installed")
    photo = next((sample_catalog.parent / "images").iterdir())
    env = {k: v for k, v in subprocess_env.items() if not k.startswith("FASHION_")}
    args = [str(exported_model_dir), str(real_index_dir), runtime, scan, str(photo)]
    done = subprocess.run(
        [sys.executable, "-c", SERVE_AND_SEARCH, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["status"] == [200, 200] and report["hits"] == [3, 3], report
    assert report["torch"] == [], f"the service imported PyTorch: {report['torch']}"
