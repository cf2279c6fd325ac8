"""The compose file's `milvus` profile, checked without a Docker engine: Milvus
standalone from its official image with its etcd and MinIO, the one-shot indexer writing
into it, and two api replicas configured for it by options and variables that exist."""

from __future__ import annotations

from test_docker_files import check_command, compose, resolve

from app.settings import env_var_names

MILVUS_URI = "http://milvus:19530"


def services_of(profile: str) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if profile in service.get("profiles", [])
    }


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_milvus_standalone_with_its_etcd_and_object_storage() -> None:
    services = services_of("milvus")
    milvus = services["milvus"]
    assert milvus["image"].startswith("milvusdb/milvus:v2.")
    assert milvus["command"] == ["milvus", "run", "standalone"]
    endpoints = {milvus["environment"]["ETCD_ENDPOINTS"], milvus["environment"]["MINIO_ADDRESS"]}
    assert endpoints == {"milvus-etcd:2379", "milvus-minio:9000"}
    assert set(milvus["depends_on"]) == {"milvus-etcd", "milvus-minio"}
    for name in ("milvus", "milvus-etcd", "milvus-minio"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
        for volume in services[name]["volumes"]:
            assert volume.split(":")[0] in compose()["volumes"]


def test_two_api_replicas_and_the_indexer_point_at_the_same_collection() -> None:
    services = services_of("milvus")
    replicas = {name: s for name, s in services.items() if name.startswith("api-")}
    assert len(replicas) == 2
    assert len({tuple(s["ports"]) for s in replicas.values()}) == 2  # one host port each
    indexer = services["indexer-milvus"]
    assert indexer["restart"] == "no" and indexer["command"][:3] == [
        "fashion-retrieval",
        "index",
        "build",
    ]
    check_command(indexer["command"])
    wanted = {(MILVUS_URI, "fashion_products")}
    assert {
        (option(indexer["command"], "--milvus-uri"), option(indexer["command"], "--collection"))
    } == wanted
    for name, replica in replicas.items():
        command = replica["command"]
        check_command(command)
        assert option(command, "--backend") == "milvus"
        assert {(option(command, "--milvus-uri"), option(command, "--collection"))} == wanted
        assert set(replica["environment"]) <= set(env_var_names()), name
        photos = replica["environment"]["FASHION_INDEX__IMAGES_DIR"]
        assert any(resolve(v).split(":")[1] == photos for v in replica["volumes"])
        assert (
            replica["depends_on"]["indexer-milvus"]["condition"] == "service_completed_successfully"
        )
        assert "healthcheck" not in replica  # the image's HEALTHCHECK (on /readyz)
        assert "FASHION_MILVUS__TOKEN" in replica["environment"]
