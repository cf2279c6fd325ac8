"""Prometheus metrics, in a registry of each app's own (several apps can live in one
process, as they do in the tests), and the ASGI middleware that times requests."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The methods of RFC 9110 and PATCH; anything else a client makes up counts as "other",
# so that made-up methods cannot grow the label set.
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "fashion_http_requests",
            "HTTP requests answered.",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "fashion_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.encode_seconds = Histogram(
            "fashion_encode_seconds",
            "Time to encode one batch of queries.",
            ["modality"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.encode_batch_size = Histogram(
            "fashion_encode_batch_size",
            "Queries encoded together in one batch.",
            ["modality"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.search_seconds = Histogram(
            "fashion_search_seconds",
            "Time of one index search: one query, or a batch of queries searched together.",
            ["target"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.search_batch_size = Histogram(
            "fashion_search_batch_size",
            "Queries searched together (same target and filters) in one index search.",
            ["target"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.index_size = Gauge(
            "fashion_index_products", "Products in the index being served.", registry=r
        )
        self.model_info = Info("fashion_model", "The model encoding queries.", registry=r)
        self.reloads = Counter(
            "fashion_index_reloads", "Index reloads, by outcome.", ["outcome"], registry=r
        )
        self.query_cache = Counter(
            "fashion_query_cache",
            "Text queries looked up in the embedding cache, by result (hit or miss).",
            ["result"],
            registry=r,
        )
        for result in ("hit", "miss"):  # both series exist from the start, at 0
            self.query_cache.labels(result)

    def observe_encode(self, modality: str, batch_size: int, seconds: float) -> None:
        self.encode_seconds.labels(modality).observe(seconds)
        self.encode_batch_size.labels(modality).observe(batch_size)

    def observe_search(self, target: str, queries: int, seconds: float) -> None:
        self.search_seconds.labels(target).observe(seconds)
        self.search_batch_size.labels(target).observe(queries)

    def set_serving(self, *, model_id: str, index_size: int) -> None:
        self.model_info.info({"model_id": model_id})
        self.index_size.set(index_size)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status. Every
    label is bounded whatever clients send: unknown methods are "other", paths are the
    route template (product ids do not explode the label set), unknown paths "unmatched"."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            labels = (method, endpoint, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
