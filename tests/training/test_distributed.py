"""Data-parallel training: the same command under torchrun (gloo on CPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import training.loop
from models import load_model
from training.config import TrainConfig
from training.distributed import DistInfo
from training.loop import LOG_FILE, MODEL_DIR, train


class Stop(Exception):
    pass


def test_every_rank_starts_from_the_same_weights(
    tiny_config: TrainConfig, tiny_catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DDP broadcasts the model's weights but not the objective's (CMPC's classifier),
    so every rank must build identical ones."""
    assert tiny_config.loss.cmpc
    catalog = tiny_catalog(32)
    built: dict[int, dict[str, torch.Tensor]] = {}

    def capture(config, state, *args, **kwargs):  # noqa: ANN001, ANN202
        built[len(built)] = {**state.model.state_dict(), **state.objective.state_dict()}
        raise Stop

    monkeypatch.setattr(training.loop, "_run_epochs", capture)
    for rank in (0, 1):
        monkeypatch.setattr(
            training.loop, "init_distributed", lambda device, r=rank: DistInfo(r, 2, r)
        )
        with pytest.raises(Stop):
            train(tiny_config, catalog, tmp_path / "run", device="cpu", progress=False)
    assert built[0].keys() == built[1].keys()
    assert any(name.startswith("cmpc.") for name in built[0])
    for name, tensor in built[0].items():
        assert torch.equal(built[1][name], tensor), name


@pytest.mark.slow
def test_torchrun_two_processes_write_one_artifact_and_one_log_line_per_epoch(
    tiny_catalog, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    catalog = tiny_catalog(96)
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "fashion_retrieval", "train",
        "--catalog", str(catalog), "--config", "tiny", "--out", str(out),
        "--epochs", "2", "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(
        command, env=subprocess_env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", MODEL_DIR, LOG_FILE]
    assert sorted(p.name for p in (out / MODEL_DIR).iterdir()) == [
        "checksums.json",
        "config.json",
        "metrics.json",
        "photo_bank.npz",
        "query_bank.txt",
        "vocab.json",
        "weights.safetensors",
    ]
    log = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [record["epoch"] for record in log] == [1, 2]
    assert all("val" in record for record in log)
    model = load_model(out / MODEL_DIR, device="cpu")
    assert model.metrics["epoch"] in (1, 2)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 2
