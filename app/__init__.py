"""The FastAPI search service and its web UI: `create_app()`, `fashion-retrieval serve`.

`create_app` is loaded on first use, so that light entry points of this package
(`python -m app.healthcheck`, run by Docker every 30 s) do not import torch and FAISS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.main import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from app.main import create_app

        return create_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
