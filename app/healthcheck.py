"""`python -m app.healthcheck`: exit 0 when the service answers /readyz with 200.

The Docker HEALTHCHECK runs this (slim images have no curl). The URL defaults to the
configured port on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def default_url() -> str:
    port = os.environ.get("FASHION_SERVER__PORT", "8000")
    return f"http://127.0.0.1:{port}/readyz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.healthcheck",
        description="Exit 0 when the search service is ready (GET /readyz answers 200), else 1.",
    )
    parser.add_argument(
        "--url", help="readiness URL (default: http://127.0.0.1:$FASHION_SERVER__PORT/readyz)"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default: 3)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    url = args.url or default_url()
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            ready = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
