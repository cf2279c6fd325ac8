"""Model selection on the val split: what training scores after each epoch, and what
`fashion-retrieval average` scores an averaged model with."""

from __future__ import annotations

from typing import Any

from models import JointModel, Product
from training.evaluate import evaluate_catalog, evaluate_categories, evaluate_seed, selection_score


def validate(
    model: JointModel, val: list[Product], *, gallery_size: int = 1000, seed: int = 0
) -> tuple[dict[str, Any], float]:
    """Val metrics and the model-selection score.

    The seed protocol (a `gallery_size`-product gallery drawn with `seed`) is logged for
    continuity; selection uses the title task and the category tasks with every val
    photo as the gallery (training.evaluate.selection_score), the catalogue-scale tasks
    in miniature. Training draws the seed gallery with the split's seed, not the run's,
    so that runs trained with other seeds are scored on the same gallery.
    """
    seed_metrics = evaluate_seed(model, val, gallery_size=gallery_size, seed=seed)
    photos = model.encode_images([p.image for p in val])
    title = evaluate_catalog(model, val, val, gallery_embeddings=(photos, None))
    categories = evaluate_categories(model, val, val, gallery_embeddings=photos)
    metrics = {**seed_metrics, "title_to_photo": title["text_to_image"], "categories": categories}
    return metrics, selection_score(title["text_to_image"], categories)
