"""fashion_retrieval.py, the `fashion-retrieval` console script: help, unknown commands,
one-line errors.

The dispatcher's own paths run as real subprocesses (they import no torch, so they are
cheap); subcommand parsers run in-process through training.cli.main.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training import cli


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fashion_retrieval", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_top_level_help_lists_every_command(subprocess_env: dict[str, str]) -> None:
    result = _run("--help", env=subprocess_env)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: fashion-retrieval")
    for command in ("train", "evaluate", "index", "serve"):
        assert f"\n  {command} " in result.stdout
    assert "fashion-retrieval COMMAND --help" in result.stdout


def test_no_command_prints_usage_and_exits_2(subprocess_env: dict[str, str]) -> None:
    result = _run(env=subprocess_env)
    assert result.returncode == 2 and "usage: fashion-retrieval" in result.stdout


def test_unknown_command_exits_2(subprocess_env: dict[str, str]) -> None:
    result = _run("fly", env=subprocess_env)
    assert result.returncode == 2
    assert "unknown command 'fly'" in result.stderr and "usage: fashion-retrieval" in result.stderr


@pytest.mark.parametrize(
    ("command", "description", "example"),
    [
        ("train", "Train a joint image-text model", "fashion-retrieval train --catalog"),
        ("evaluate", "Evaluate a model artifact", "fashion-retrieval evaluate --model"),
    ],
)
def test_subcommand_help_has_a_description_and_an_example(
    command: str, description: str, example: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: fashion-retrieval {command}")
    assert description in out
    assert "example:" in out and example in out
    if command == "train":
        assert "tiny" in out and "lite0-minilm" in out  # the configs one can name
    assert "exit codes: 0 done; 1 error" in out and "2 usage error" in out
    assert "{auto,cpu,cuda}" in out


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_device_is_one_of_auto_cpu_cuda(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            [command, "--catalog", "x.csv", "--config", "tiny", "--out", "o", "--device", "gpu"]
        )
    assert exit_info.value.code == 2
    assert "argument --device: invalid choice: 'gpu'" in capsys.readouterr().err


def test_a_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--catalog", "x.csv"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --config, --out" in capsys.readouterr().err


def test_a_missing_catalogue_is_a_one_line_error(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    """Through the real entry point, with its logging set up: no traceback, one line."""
    missing = tmp_path / "absent.csv"
    args = [
        "train",
        "--catalog",
        str(missing),
        "--config",
        "tiny",
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    ]
    result = _run(*args, env=subprocess_env)
    assert result.returncode == 1  # bad input, not bad usage
    assert result.stderr.strip().splitlines() == [f"error: catalogue file not found: {missing}"]
    assert not (tmp_path / "run").exists()


def test_evaluate_with_a_missing_catalogue_is_a_one_line_error(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent.csv"
    assert (
        cli.main(
            [
                "evaluate",
                "--model",
                str(tiny_model_dir),
                "--catalog",
                str(missing),
                "--device",
                "cpu",
            ]
        )
        == 1
    )
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: catalogue file not found: {missing}"
    ]


def test_evaluate_with_a_missing_model_is_a_one_line_error(
    tmp_path: Path, sample_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "evaluate",
        "--model",
        str(tmp_path / "nothing"),
        "--catalog",
        str(sample_catalog),
        "--device",
        "cpu",
    ]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model artifact not found")


def test_an_unknown_config_names_the_available_ones(
    tmp_path: Path, sample_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "train",
        "--catalog",
        str(sample_catalog),
        "--config",
        "nope",
        "--out",
        str(tmp_path),
        "--device",
        "cpu",
    ]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: training config not found: nope") and "tiny" in err
    assert len(err.splitlines()) == 1
