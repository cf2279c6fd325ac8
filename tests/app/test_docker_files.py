"""The Docker files, checked without a Docker engine: everything they name (commands,
options, paths, ports, environment variables) exists in the project, and their
commands run here, outside Docker."""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from app.cli import build_parser as serve_parser
from app.settings import Settings, env_var_names
from indexer.cli import build_parser as index_parser

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"  # both images: FLAVOR=cpu (default) or gpu
COMPOSE = DOCKER / "docker-compose.yml"
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(path: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", path.read_text())  # join continued lines
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            base, _, name = args.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        elif stages:
            stages[-1].instructions.append((keyword, args))
        else:
            assert keyword == "ARG", f"{keyword} before the first FROM"
    return stages


def global_args(path: Path) -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults."""
    found = {}
    for line in path.read_text().splitlines():
        if line.startswith("FROM "):
            break
        if line.startswith("ARG "):
            name, _, default = line[4:].strip().partition("=")
            found[name] = default
    return found


def stage_named(stages: list[Stage], name: str) -> Stage:
    return next(stage for stage in stages if stage.name == name)


@pytest.mark.parametrize("flavor", ["cpu", "gpu"])
def test_one_dockerfile_builds_both_images(flavor: str) -> None:
    """FLAVOR picks the runtime base and the venv; the final stage (settings, user, port,
    health check, command) is shared, so it is written once."""
    stages = parse_dockerfile(DOCKERFILE)
    assert global_args(DOCKERFILE) == {"FLAVOR": "cpu"}
    assert stages[-1].base == "runtime-${FLAVOR}"
    assert stage_named(stages, "build").base == "build-${FLAVOR}"
    build = stage_named(stages, f"build-{flavor}")
    assert build.base == f"runtime-{flavor}"
    (install,) = [args for args in build.all("RUN") if "/src[" in args]
    extras = install.split("/src[", 1)[1].split("]", 1)[0].split(",")
    assert flavor in extras and ({"cpu", "gpu"} - {flavor}).isdisjoint(extras)
    if flavor == "gpu":
        assert stage_named(stages, "runtime-gpu").base.startswith("nvidia/cuda:")


def env_pairs(args: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(args))


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the exec (JSON) form: {args}"
    return json.loads(args)


def healthcheck_command(args: str) -> list[str]:
    _, _, command = args.partition("CMD ")
    return exec_form(command.strip())


@functools.cache
def run_here(command: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """Run a container command on this machine: the console script through its module.
    Cached: several files run the same `--help`, and each start imports torch."""
    if command[0] == "fashion-retrieval":
        module = SCRIPTS["fashion-retrieval"].split(":")[0]
        command = (sys.executable, "-m", module, *command[1:])
    elif command[0] == "python":
        command = (sys.executable, *command[1:])
    return subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def check_command(command: list[str]) -> None:
    """The command's program and options exist, and its --help runs here."""
    assert command[0] in SCRIPTS or command[:2] == ["python", "-m"], command
    if command[0] == "fashion-retrieval":
        subcommand = command[1]
        if subcommand == "serve":
            serve_parser().parse_args(command[2:])  # SystemExit on an unknown option
            help_command = command[:2]
        else:
            assert subcommand == "index", command
            index_parser().parse_args(command[2:])
            help_command = command[:3]
    else:
        help_command = command[:3]
    result = run_here((*help_command, "--help"))
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def copies(stages: list[Stage]) -> dict[str, Path]:
    """Container path -> repo path, for every COPY from the build context."""
    mapping = {}
    for stage in stages:
        for args in stage.all("COPY"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            if any(p.startswith("--from") for p in shlex.split(args)):
                continue
            *sources, dest = parts
            for source in sources:
                mapping[dest.rstrip("/") or "/"] = REPO / source
    return mapping


def repo_path_of(container_path: str, stages: list[Stage]) -> Path | None:
    for dest, source in copies(stages).items():
        if container_path == dest or container_path.startswith(dest + "/"):
            return source / container_path[len(dest) :].lstrip("/")
    return None


def test_dockerfile(monkeypatch: pytest.MonkeyPatch) -> None:
    name = DOCKERFILE.name
    stages = parse_dockerfile(DOCKERFILE)
    final = stages[-1]
    # Non-root, with the service's port and a health check on readiness.
    users = final.all("USER")
    assert users and users[-1] not in ("root", "0")
    assert final.all("EXPOSE") == [str(Settings().server.port)]
    (health,) = final.all("HEALTHCHECK")
    check_command(healthcheck_command(health))
    assert "app.healthcheck" in health
    # Every FASHION_* variable is a setting, with a valid value; the rest are known.
    env: dict[str, str] = {}
    for args in final.all("ENV"):
        env.update(env_pairs(args))
    fashion = {k: v for k, v in env.items() if k.startswith("FASHION_")}
    assert set(fashion) <= set(env_var_names()), set(fashion) - set(env_var_names())
    for key, value in fashion.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.server.port == 8000
    # Paths the settings name inside the image come from the repo.
    catalog = repo_path_of(str(settings.index.catalog), stages)
    assert catalog is not None and catalog.is_file(), settings.index.catalog
    for source in copies(stages).values():
        assert source.exists(), f"{name}: COPY source {source} is missing"
    # The command runs, here.
    (cmd,) = final.all("CMD")
    check_command(exec_form(cmd))


def test_build_context_allow_list() -> None:
    """The Dockerfile's .dockerignore lets in what the build installs, and it exists."""
    name = DOCKERFILE.name
    lines = (DOCKER / f"{name}.dockerignore").read_text().splitlines()
    allowed = [line[1:] for line in lines if line.startswith("!")]
    for path in allowed:
        if "*" not in path:
            assert (REPO / path).exists(), f"{name}.dockerignore lets in {path}, which is missing"
    packages = ["app", "models", "indexer", "training", "pyproject.toml", "data/sample"]
    assert set(packages) <= set(allowed)
    assert SCRIPTS["fashion-retrieval"].split(":")[0] + ".py" in allowed


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def resolve(value: str) -> str:
    """Compose's ${VAR:-default} -> default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def image_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the image's ENV gives the service."""
    for args in parse_dockerfile(DOCKERFILE)[-1].all("ENV"):
        for key, value in env_pairs(args).items():
            if key.startswith("FASHION_"):
                monkeypatch.setenv(key, value)
    return Settings()


def image_command() -> list[str]:
    (cmd,) = parse_dockerfile(DOCKERFILE)[-1].all("CMD")
    return exec_form(cmd)


def test_compose_api_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The api runs the image's command, settings and health check (one place each),
    on the port and index volume the image's settings name."""
    services = compose()["services"]
    api = services["api"]
    assert "profiles" not in api  # `docker compose up` starts it
    assert api["restart"] in ("always", "unless-stopped", "on-failure")
    assert "command" not in api and "healthcheck" not in api
    assert image_command() == ["fashion-retrieval", "serve"]
    settings = image_settings(monkeypatch)
    assert api["ports"] == [f"{settings.server.port}:{settings.server.port}"]
    assert any(v.split(":")[1] == str(settings.index.path) for v in api["volumes"])


@pytest.mark.parametrize("name", ["api", "api-gpu"])
def test_the_apis_wait_for_the_one_job_that_builds_the_index(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the one-shot index-init builds (two apis building at once would race for the
    index's lock, one failing and restarting); every api starts once it is done."""
    services = compose()["services"]
    init = services["index-init"]
    assert "profiles" not in init and init["restart"] == "no"
    assert init["command"] == ["fashion-retrieval", "serve", "--prepare-only"]
    check_command(init["command"])
    assert init["volumes"] == services[name]["volumes"][:1] == ["index:/data/index"]
    assert str(image_settings(monkeypatch).index.path) == "/data/index"
    assert services[name]["depends_on"] == {
        "index-init": {"condition": "service_completed_successfully"}
    }


def test_compose_repeats_no_setting_of_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Options and variables the image's ENV already sets are not set again per service."""
    image_env: set[str] = set()
    for args in parse_dockerfile(DOCKERFILE)[-1].all("ENV"):
        image_env |= set(env_pairs(args))
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        assert not set(service.get("environment", {})) & image_env, name
        command = service.get("command", [])
        assert not {"--host", "--port"} & set(command), name
        assert "healthcheck" not in service, name  # the image's HEALTHCHECK


def test_compose_gpu_profile() -> None:
    gpu = [s for s in compose()["services"].values() if "gpu" in s.get("profiles", [])]
    assert len(gpu) == 1
    (service,) = gpu
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert service["build"]["args"] == {"FLAVOR": "gpu"}
    assert "command" not in service  # the image's


def test_compose_indexer_is_one_shot() -> None:
    indexer = compose()["services"]["indexer"]
    assert indexer["profiles"] == ["indexer"]
    assert indexer["restart"] == "no"
    command = indexer["command"]
    assert command[:3] == ["fashion-retrieval", "index", "build"]
    check_command(command)
    mounts = dict(reversed(resolve(v).split(":")[:2]) for v in indexer["volumes"])
    out = command[command.index("--out") + 1]
    assert out in mounts and mounts[out] in compose()["volumes"]
    catalog = command[command.index("--catalog") + 1]
    mount = next(m for m in mounts if catalog.startswith(m + "/"))
    host = (DOCKER / mounts[mount] / catalog[len(mount) + 1 :]).resolve()
    assert host.is_file(), host


def test_compose_names_only_what_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    document = compose()
    for name, service in document["services"].items():
        if "build" not in service:  # a third-party image (test_docker_milvus.py checks them)
            continue
        context = (DOCKER / service["build"]["context"]).resolve()
        assert context == REPO
        assert (context / service["build"]["dockerfile"]).is_file()
        environment = service.get("environment", {})
        assert set(environment) <= set(env_var_names()), name
        for key, value in environment.items():
            monkeypatch.setenv(key, resolve(str(value)))
        Settings()  # valid values
        for volume in service.get("volumes", []):
            source = resolve(volume).split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in document["volumes"], f"{name}: volume {source} is not declared"
