"""Service settings: every field is also an environment variable.

One prefix, `FASHION_`, and `__` between a group and its field, for example
`FASHION_INDEX__PATH=/data/index` or `FASHION_ADMIN__TOKEN=...`. Settings are built
once, in `create_app()` (or by the CLI), never at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.hubness import DEFAULT_ALPHA, DEFAULT_MIN_WORDS

ENV_PREFIX = "FASHION_"
SAMPLE_CATALOG = Path("data") / "sample" / "catalog.csv"


def find_project_root() -> Path:
    """The folder holding the bundled sample catalogue: the working directory when it has
    one (an installed package, a container), else the checkout this package lives in."""
    here = Path.cwd()
    if (here / SAMPLE_CATALOG).is_file():
        return here
    return Path(__file__).resolve().parent.parent


class ModelSettings(BaseModel):
    path: Path | None = Field(
        default=None, description="Model artifact directory; empty = the bundled default model."
    )
    device: str = Field(default="auto", description='"auto" (CUDA when available), "cpu", "cuda".')
    threads: int = Field(
        default=0,
        ge=0,
        description="Encoding threads on the CPU (PyTorch's, OpenVINO's or ONNX Runtime's, "
        "per batch); 0 = the runtime's default (all cores).",
    )
    runtime: Literal["auto", "openvino", "onnx", "torch"] = Field(
        default="auto",
        description='What encodes on the CPU: "auto" (OpenVINO when installed, else ONNX '
        'Runtime, else PyTorch, logged), "openvino", "onnx" or "torch". On CUDA it is '
        "PyTorch.",
    )


class IndexSettings(BaseModel):
    path: Path | None = Field(
        default=None,
        description="Index directory to serve; empty = the bundled sample catalogue's index.",
    )
    device: str = Field(default="auto", description='Where FAISS searches: "auto", "cpu", "cuda".')
    catalog: Path = Field(
        default_factory=lambda: find_project_root() / SAMPLE_CATALOG,
        description="Catalogue built into an index when none exists yet (the bundled sample).",
    )
    sample_dir: Path = Field(
        default_factory=lambda: find_project_root() / "var" / "sample-index",
        description="Where the sample index is built, one subfolder per model id.",
    )
    build_if_missing: bool = Field(
        default=False,
        description="Build `path` from `catalog` on start when it holds no index yet.",
    )
    scan: Literal["pca", "float16", "float32", "faiss"] = Field(
        default="pca",
        description='How an exact index is scanned on the CPU: "pca" (the first 128 '
        "principal components, a short list re-scored exactly), "
        '"float16" (half the bytes, a short list re-scored exactly; needs PyTorch), '
        '"float32" (exact) or "faiss" (FAISS, one query at a time: the path before '
        "batching).",
    )
    backend: Literal["faiss", "milvus"] = Field(
        default="faiss",
        description='Where the index lives: "faiss" (files in `path`) or "milvus".',
    )
    milvus_uri: str = Field(
        default="",
        description="Milvus: a local .db file (Milvus Lite) or http://host:19530.",
    )
    collection: str = Field(
        default="fashion_products",
        description="Milvus: the collection alias that names the index.",
    )
    images_dir: Path | None = Field(
        default=None,
        description="Milvus: base folder of the product photos; empty = the catalogue "
        "folder the index was built from.",
    )


class ServerSettings(BaseModel):
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on.")
    log_level: str = Field(default="info", description="uvicorn's log level.")
    access_log: bool = Field(default=False, description="Log every request (metrics count them).")
    header_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        description="A connection must send a request's line and headers within this "
        "many seconds (from connecting, or from the previous answer), else it is closed.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        description="Longest pause while a request body streams in; a stalled upload "
        "gets 408 and is closed.",
    )
    keep_alive_s: float = Field(
        default=5.0, gt=0.0, description="An idle keep-alive connection is closed after this."
    )
    http: Literal["auto", "httptools", "h11"] = Field(
        default="auto",
        description='HTTP parser: "auto" or "httptools" (in C), or "h11" (pure Python, '
        "uvicorn's fallback).",
    )
    loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description='Event loop: "auto" (uvloop when installed), "uvloop" or "asyncio".',
    )


class LimitSettings(BaseModel):
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest accepted image upload."
    )
    max_json_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest accepted JSON request body."
    )
    max_image_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Largest accepted upload in pixels (width x height), read from the "
        "image's header before any pixel is decoded.",
    )
    max_concurrent_decodes: int = Field(
        default=2, ge=1, description="Uploads decoded at once; others wait their turn."
    )


class BatchingSettings(BaseModel):
    max_batch_size: int = Field(default=32, ge=1, description="Queries encoded together.")
    max_wait_ms: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="How long a query that finds the encoder idle waits for company (0: "
        "none; under load, batches form while the previous batch encodes).",
    )
    search: Literal["batched", "per-query"] = Field(
        default="batched",
        description='"batched": the queries of a batch are searched together, one index '
        'search per target and filter set; "per-query": one search each.',
    )


class RankingSettings(BaseModel):
    hubness_alpha: float = Field(
        default=DEFAULT_ALPHA,
        ge=0.0,
        le=2.0,
        description="Hubness correction (models.hubness): text searches over photos and "
        "product vectors score cosine - alpha * the product's hubness against the model's "
        "query bank, photo searches over titles against its photo bank; 0 turns it off.",
    )
    hubness_min_words: int = Field(
        default=DEFAULT_MIN_WORDS,
        ge=1,
        description="Only text queries of at least this many words are corrected: a "
        "shorter one names a kind of product, where typical photos are right.",
    )


class QueryCacheSettings(BaseModel):
    size: int = Field(
        default=4096,
        ge=0,
        description="Text-query embeddings kept in memory (LRU, ~2 KB each at 512-d); "
        "0 turns the cache off.",
    )


class AdminSettings(BaseModel):
    token: SecretStr | None = Field(
        default=None, description="Bearer token for /v1/admin/*; empty = admin endpoints off."
    )


class MilvusSettings(BaseModel):
    token: SecretStr | None = Field(
        default=None,
        description="Milvus: token (user:password or an API key) for a server with "
        "authentication; empty = none.",
    )


class Settings(BaseSettings):
    """All settings of the service, grouped; see docs/service.md for the table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=None,
        extra="ignore",
        protected_namespaces=(),
    )

    model: ModelSettings = Field(default_factory=ModelSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    query_cache: QueryCacheSettings = Field(default_factory=QueryCacheSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    milvus: MilvusSettings = Field(default_factory=MilvusSettings)

    @property
    def admin_token(self) -> str | None:
        """The configured admin token, or None when admin endpoints are off."""
        token = self.admin.token.get_secret_value() if self.admin.token else ""
        return token or None

    @property
    def milvus_token(self) -> str | None:
        """The Milvus token, or None for a server without authentication."""
        token = self.milvus.token.get_secret_value() if self.milvus.token else ""
        return token or None


def env_var_names() -> dict[str, str]:
    """Every environment variable the settings read, with its description."""
    names: dict[str, str] = {}
    for group_name, group in Settings.model_fields.items():
        group_type = group.annotation
        for field_name, field in group_type.model_fields.items():  # type: ignore[union-attr]
            key = f"{ENV_PREFIX}{group_name}__{field_name}".upper()
            names[key] = field.description or ""
    return names
