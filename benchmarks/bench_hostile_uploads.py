"""Server RSS and text-query latency while N clients upload hostile photos at once.

    python benchmarks/bench_hostile_uploads.py --url http://127.0.0.1:8000 --pid PID

Each round, `--clients` threads each upload one of: the issue's 1.8 KB JPEG claiming
13000x13000, a 36-byte lossless WebP claiming 12000x12000 (both refused from the header)
and a real 6000x6000 JPEG (under the 40 MP budget: decoded at 1/8 scale), while one
thread times text queries. Prints the server's peak RSS (from /proc/PID/status).
Only loopback traffic; bounded rounds.
"""

from __future__ import annotations

import argparse
import io
import struct
import threading
import time
from pathlib import Path

import httpx
from PIL import Image


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def bombs() -> dict[str, bytes]:
    jpeg = bytearray(_encoded(Image.new("RGB", (8, 8)), "JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 13000, 13000)
    webp = _encoded(Image.new("RGB", (1, 1)), "WEBP", lossless=True)
    at = webp.index(b"VP8L") + 9
    bits = struct.unpack("<I", webp[at : at + 4])[0] & ~((1 << 28) - 1)
    webp = webp[:at] + struct.pack("<I", bits | 11999 | (11999 << 14)) + webp[at + 4 :]
    big = _encoded(Image.new("RGB", (6000, 6000), (90, 20, 200)), "JPEG", quality=70)
    return {"jpeg-13000": bytes(jpeg), "webp-12000": webp, "jpeg-6000-real": big}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    payloads = bombs()
    peak = before = rss_mb(args.pid)
    statuses: dict[str, list[int]] = {name: [] for name in payloads}
    latencies: list[float] = []
    done = threading.Event()

    def upload(name: str) -> None:
        with httpx.Client(base_url=args.url, timeout=120) as client:
            files = {"file": ("x", payloads[name], "application/octet-stream")}
            statuses[name].append(client.post("/v1/search/image", files=files).status_code)

    def text_queries() -> None:
        with httpx.Client(base_url=args.url, timeout=120) as client:
            while not done.is_set():
                started = time.perf_counter()
                client.post("/v1/search/text", json={"query": "blue shirt", "k": 5})
                latencies.append(time.perf_counter() - started)

    timer = threading.Thread(target=text_queries)
    timer.start()
    for _ in range(args.rounds):
        threads = [
            threading.Thread(target=upload, args=(name,))
            for name in payloads
            for _ in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, rss_mb(args.pid))
            time.sleep(0.05)
    done.set()
    timer.join()
    latencies.sort()
    print(f"{args.clients} clients x {len(payloads)} payloads x {args.rounds} rounds")
    for name, codes in statuses.items():
        print(f"  {name}: statuses {sorted(set(codes))} ({len(codes)} uploads)")
    print(
        f"  server RSS: {before:.0f} MB before, peak {peak:.0f} MB, {rss_mb(args.pid):.0f} MB after"
    )
    if latencies:
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        print(
            f"  text queries meanwhile: {len(latencies)}, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
