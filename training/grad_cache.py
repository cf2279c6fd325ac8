"""A contrastive step over a whole batch with the towers' activations of only a chunk
of it in memory at a time (gradient caching: Gao et al., "Scaling Deep Contrastive
Learning Batch Size under Memory Limited Setup", RepL4NLP 2021).

CMPM and the shopper-query terms compare every photo with every text of the batch, so
more negatives need a larger batch, and a batch's activations grow with it (batches of
128 held 6.2 GB on these CPUs). The loss depends on the towers only through the
embeddings, so the step runs in three passes:

1. every chunk's embeddings, without a graph;
2. the loss over the whole batch's embeddings, and its gradient with respect to them;
3. every chunk again, with a graph, back-propagating that gradient into the towers.

The parameters' gradients are those of one pass over the whole batch with each chunk
forwarded on its own: dropout draws the same masks in passes 1 and 3 (each chunk's
random state is replayed) and BatchNorm normalises each chunk by its own statistics,
updating its running statistics once, in pass 3. Pass 3 costs one forward more than a
plain step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from models import JointModel

# (image embeddings (B, D), title embeddings (B, D), one (U, D) per query field) -> loss
BatchLoss = Callable[[torch.Tensor, torch.Tensor, list[torch.Tensor]], torch.Tensor]


class _RandomState:
    """The CPU (and CUDA) generator state, to replay a chunk's dropout masks."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        self.device = device

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


@contextlib.contextmanager
def _frozen_batch_norm_statistics(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers still normalise by the batch, but leave their running
    statistics alone (momentum 0), so pass 1 does not count each chunk twice."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(layer.momentum, _count(layer)) for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, (momentum, count) in zip(layers, saved, strict=True):
            layer.momentum = momentum
            tracked = layer.num_batches_tracked
            if count is not None and tracked is not None:
                tracked.copy_(count)


def _count(layer: nn.modules.batchnorm._BatchNorm) -> torch.Tensor | None:
    tracked = layer.num_batches_tracked
    return tracked.clone() if isinstance(tracked, torch.Tensor) else None


def _slices(total: int, chunk: int) -> list[slice]:
    return [slice(start, min(start + chunk, total)) for start in range(0, total, chunk)]


class _Encoder:
    """One kind of input cut into chunks, each embedded by `embed`."""

    def __init__(
        self, embed: Callable[[Any], torch.Tensor], parts: Sequence[Any], device: torch.device
    ) -> None:
        self.embed = embed
        self.parts = parts
        self.device = device
        self.states: list[_RandomState] = []

    def without_graph(self) -> torch.Tensor:
        outputs = []
        for part in self.parts:
            self.states.append(_RandomState(self.device))
            with torch.no_grad():
                outputs.append(self.embed(part))
        return torch.cat(outputs).requires_grad_(True)

    def backward(self, gradient: torch.Tensor) -> None:
        start = 0
        for part, state in zip(self.parts, self.states, strict=True):
            state.restore()
            output = self.embed(part)
            output.backward(gradient[start : start + len(output)].to(output.dtype))
            start += len(output)


def cached_gradient_step(
    model: JointModel,
    pixels: torch.Tensor,
    titles: Sequence[str],
    queries: Sequence[Sequence[str]],
    loss_fn: BatchLoss,
    *,
    chunk: int,
    image_from_block: int = 0,
    autocast: contextlib.AbstractContextManager | None = None,
) -> torch.Tensor:
    """Back-propagate `loss_fn` over the batch into the model's (and the loss's own)
    parameters' .grad, `chunk` photos or texts at a time; -> the loss, detached.

    pixels (B, 3, H, W) (or a frozen prefix's activations with `image_from_block`),
    titles B texts, queries one list of texts per shopper-query field."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    context = autocast if autocast is not None else contextlib.nullcontext()
    device = model.device

    def embed_images(part: torch.Tensor) -> torch.Tensor:
        with context:
            if image_from_block:
                features = model.image_tower.forward_from(part, image_from_block)
            else:
                features = model.image_tower(part)
            return model.image_head(features).float()

    def embed_texts(part: Sequence[str]) -> torch.Tensor:
        with context:
            return model.embed_texts(model.tokenize(part)).float()

    encoders = [
        _Encoder(embed_images, [pixels[s] for s in _slices(len(pixels), chunk)], device),
        _Encoder(embed_texts, [titles[s] for s in _slices(len(titles), chunk)], device),
        *(
            _Encoder(embed_texts, [texts[s] for s in _slices(len(texts), chunk)], device)
            for texts in queries
        ),
    ]
    with _frozen_batch_norm_statistics(model):
        embeddings = [encoder.without_graph() for encoder in encoders]
    loss = loss_fn(embeddings[0], embeddings[1], embeddings[2:])
    loss.backward()  # into the embeddings, and the loss's own parameters (CMPC's)
    for encoder, leaf in zip(encoders, embeddings, strict=True):
        assert leaf.grad is not None
        encoder.backward(leaf.grad)
    return loss.detach()
