"""Training steps with and without cached gradients (training.grad_cache): seconds per
step and peak memory, for the batch sizes that bound the CMPL runs on these CPUs.

    OMP_NUM_THREADS=1 python benchmarks/bench_grad_cache.py --catalog ../shared/data/kagl/catalog.csv

Each setting (batch size, chunk; chunk 0 = the plain step) runs in its own process, so
its peak RSS is its own: the default model's towers at the run-8 config
(`lite0-minilm-colour-b256-lr2`: 128x96 photos, the shopper-query fields), a batch of
the catalogue's first training products' titles and queries with random pixels (the
cost does not depend on the pixels), `--steps` timed steps after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

SETTINGS = ("128:0", "128:32", "256:64", "512:64")


def one(catalog: Path, batch: int, chunk: int, steps: int) -> dict[str, float]:
    from models import DEFAULT_MODEL_DIR, read_catalog
    from training.config import load_config
    from training.grad_cache import cached_gradient_step
    from training.init import model_from_artifact
    from training.loop import _embedding_loss
    from training.objectives import build_objective
    from training.optim import apply_freezing
    from training.queries import batch_queries, query_rng

    torch.manual_seed(0)
    config = load_config("lite0-minilm-colour-b256-lr2")
    config = replace(config, optim=replace(config.optim, batch_size=batch, grad_cache_chunk=chunk))
    products = config.data.split.split(read_catalog(catalog).products).train[:batch]
    model = model_from_artifact(config.model, DEFAULT_MODEL_DIR).train()
    apply_freezing(config, model, epoch=1)  # as the run: MiniLM's word table stays frozen
    objective = build_objective(config, batch, image_dim=0, text_dim=0)
    trained = [p for p in [*model.parameters(), *objective.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-6)
    height, width = config.model.preprocess.height, config.model.preprocess.width
    pixels = torch.randn(batch, 3, height, width)
    titles = [p.text for p in products]
    labels = torch.arange(batch)
    times = []
    for step in range(steps + 1):
        queries = batch_queries(config.fields, products, query_rng(0, 1, step))
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if chunk:
            loss_fn = partial(_embedding_loss, objective, config, labels, queries)
            cached_gradient_step(
                model, pixels, titles, [q.texts for q in queries], loss_fn, chunk=chunk
            )
        else:
            outputs = model(
                pixels,
                model.tokenize(titles),
                extra_tokens=[model.tokenize(q.texts) for q in queries],
            )
            _embedding_loss(
                objective, config, labels, queries, *outputs[2:4], list(outputs[4:])
            ).backward()
        optimizer.step()
        if step:  # the first step warms up
            times.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds_per_step": sum(times) / len(times), "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per setting")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), metavar="BATCH:CHUNK")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # BATCH:CHUNK, in a child process
    args = parser.parse_args()
    if args.one:
        batch, chunk = map(int, args.one.split(":"))
        print(json.dumps(one(args.catalog, batch, chunk, args.steps)))
        return
    print(f"{'batch':>6}{'chunk':>7}{'s/step':>9}{'images/s':>10}{'peak RSS MB':>13}")
    for setting in args.settings:
        batch, chunk = map(int, setting.split(":"))
        command = [sys.executable, __file__, "--catalog", str(args.catalog), "--one", setting]
        command += ["--steps", str(args.steps)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{batch:>6}{chunk:>7}  failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        seconds = result["seconds_per_step"]
        print(
            f"{batch:>6}{chunk or '-':>7}{seconds:>9.1f}{batch / seconds:>10.1f}"
            f"{result['peak_rss_mb']:>13,.0f}"
        )


if __name__ == "__main__":
    main()
