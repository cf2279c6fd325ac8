"""A server's memory from start to its first queries: RSS (and peak) when ready, after
200 text queries and after 200 photo uploads (60x80 JPEGs).

    python benchmarks/bench_startup_rss.py var/kagl-index MODEL_DIR --catalog ../shared/data/kagl/catalog.csv

Starts `python -m app` over the index with MODEL_DIR, the query cache off. Remove
MODEL_DIR/onnx first to measure a start that exports the ONNX graphs (models.encoders
exports them in a child process, so the server does not keep PyTorch's memory).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import uuid
from pathlib import Path

from http_load import free_port, memory_mb, start_server
from PIL import Image

from models.catalog import read_catalog


def upload(connection: http.client.HTTPConnection, photo: Path) -> None:
    buffer = io.BytesIO()
    Image.open(photo).convert("RGB").resize((60, 80)).save(buffer, "JPEG")
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    body = head.encode() + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    kind = f"multipart/form-data; boundary={boundary}"
    connection.request("POST", "/v1/search/image", body, {"Content-Type": kind})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"an upload got {response.status}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("index", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    products = random.Random(0).sample(read_catalog(args.catalog).products, args.queries)
    port = free_port()
    server = start_server(args.index, args.model, port, {"FASHION_QUERY_CACHE__SIZE": "0"})
    try:
        rows = [("ready", memory_mb(server.pid))]
        connection = http.client.HTTPConnection("127.0.0.1", port)
        for product in products:
            query = json.dumps({"query": product.text, "k": 10, "target": "image"})
            connection.request(
                "POST", "/v1/search/text", query, {"Content-Type": "application/json"}
            )
            connection.getresponse().read()
        rows.append((f"after {len(products)} text queries", memory_mb(server.pid)))
        for product in products:
            upload(connection, Path(product.image))
        rows.append((f"after {len(products)} uploads", memory_mb(server.pid)))
    finally:
        server.terminate()
        server.wait()
    print(f"{args.model} over {args.index}")
    print(f"{'when':<26}{'RSS MB':>10}{'peak MB':>10}")
    for when, (rss, peak) in rows:
        print(f"{when:<26}{rss:>10.1f}{peak:>10.1f}")


if __name__ == "__main__":
    main()
