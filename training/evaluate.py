"""The two evaluation protocols: `seed` (the research's) and `catalog` (public benchmarks').

A retrieved product is correct when its title equals the query product's title.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models import Product, fuse
from models.encoders import Encoder
from models.hubness import (
    DEFAULT_ALPHA,
    DEFAULT_K,
    DEFAULT_MIN_WORDS,
    hubness,
    is_specific,
    photo_bank_of,
    query_bank_of,
)
from models.progress import progress_bar
from training.metrics import precision_summary, ranked_relevance, summarise
from training.queries import MISSING

PROTOCOLS = ("seed", "catalog")
# Marqo's KAGL category tasks: the attribute value itself is the query.
CATEGORY_FIELDS = ("masterCategory", "subCategory", "articleType", "baseColour")


PHOTO_CHUNK = 1024  # photos per progress step when a whole catalogue is encoded


def encode_photos(model: Encoder, products: Sequence[Product], batch_size: int) -> np.ndarray:
    """The products' photo embeddings, with a progress bar on stderr: a catalogue's
    photos take minutes (41k on one core: about 4 with OpenVINO, 20 with PyTorch)."""
    chunks = [np.zeros((0, model.embed_dim), dtype=np.float32)]
    with progress_bar(total=len(products), unit=" photos", desc="encoding photos") as bar:
        for start in range(0, len(products), PHOTO_CHUNK):
            chunk = [p.image for p in products[start : start + PHOTO_CHUNK]]
            chunks.append(model.encode_images(chunk, batch_size=batch_size))
            bar.update(len(chunk))
    return np.concatenate(chunks)


@dataclass(frozen=True)
class Correction:
    """The service's hubness correction (models.hubness): text queries over photos and
    product vectors against `bank`, the model's query bank encoded; photo queries over
    titles against `photo_bank`, its photo bank. Either may be None (not corrected)."""

    bank: np.ndarray | None
    alpha: float = DEFAULT_ALPHA
    k: int = DEFAULT_K
    min_words: int = DEFAULT_MIN_WORDS
    photo_bank: np.ndarray | None = None
    # (id(gallery), bank kind) -> (gallery, its hubness): the title task and the four
    # category tasks rank against the same gallery, whose hubness (41k x bank cosines)
    # is measured once
    _measured: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, model: Encoder, alpha: float = DEFAULT_ALPHA) -> Correction | None:
        """The model's correction; None with alpha 0 or a model without banks."""
        texts = query_bank_of(model)
        photos = photo_bank_of(model)
        if alpha <= 0 or not (texts or photos is not None):
            return None
        return cls(model.encode_texts(texts) if texts else None, alpha, photo_bank=photos)

    def apply(self, scores: np.ndarray, queries: Sequence[str], gallery: np.ndarray) -> np.ndarray:
        """(Q, N) cosines of text `queries` against `gallery` (N, D) -> the scores the
        service ranks by: rows of queries of min_words or more lowered by alpha * hubness."""
        rows = np.array([is_specific(q, self.min_words) for q in queries], dtype=bool)
        if self.bank is None or not rows.any():
            return scores
        corrected = scores.copy()
        corrected[rows] -= self.alpha * self.hubness_of(gallery)[None, :]
        return corrected

    def apply_photos(self, scores: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """(Q, N) cosines of photo queries against title vectors `gallery` (N, D) -> the
        scores the service ranks by: every row lowered by alpha * hubness to photos."""
        if self.photo_bank is None:
            return scores
        return scores - self.alpha * self.hubness_of(gallery, "image")[None, :]

    def hubness_of(self, gallery: np.ndarray, queries: str = "text") -> np.ndarray:
        """(N,) hubness of each gallery row against the bank of `queries` ("text" or
        "image"), measured once per gallery array."""
        bank = self.bank if queries == "text" else self.photo_bank
        if bank is None:
            raise ValueError(f"this correction has no bank of {queries} queries")
        key = (id(gallery), queries)
        cached = self._measured.get(key)
        if cached is None or cached[0] is not gallery:
            cached = (gallery, hubness(gallery, bank, self.k))
            self._measured[key] = cached
        return cached[1]

    def describe(self) -> dict[str, float]:
        return {
            "alpha": self.alpha,
            "k": self.k,
            "min_words": self.min_words,
            "bank": 0 if self.bank is None else len(self.bank),
            "photo_bank": 0 if self.photo_bank is None else len(self.photo_bank),
        }


def _corrected(
    correction: Correction | None, scores: np.ndarray, queries: Sequence[str], gallery: np.ndarray
) -> np.ndarray:
    return scores if correction is None else correction.apply(scores, queries, gallery)


def _encode(
    model: Encoder, products: Sequence[Product], batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    images = model.encode_images([p.image for p in products], batch_size=batch_size)
    texts = model.encode_texts([p.text for p in products], batch_size=batch_size)
    return images, texts


def evaluate_seed(
    model: Encoder,
    products: Sequence[Product],
    *,
    gallery_size: int = 1000,
    seed: int = 0,
    batch_size: int = 128,
    correction: Correction | None = None,
) -> dict[str, dict[str, float]]:
    """A seeded gallery of `gallery_size` products; each is a query in both directions.
    `correction`: both directions ranked as the service ranks (hubness-corrected)."""
    products = list(products)
    if len(products) > gallery_size:
        products = random.Random(seed).sample(products, gallery_size)
    images, texts = _encode(model, products, batch_size)
    titles = [p.text for p in products]
    text_scores = _corrected(correction, texts @ images.T, titles, images)
    image_scores = images @ texts.T
    if correction is not None:
        image_scores = correction.apply_photos(image_scores, texts)
    results = {
        "text_to_image": summarise(ranked_relevance(text_scores, titles, titles)),
        "image_to_text": summarise(ranked_relevance(image_scores, titles, titles)),
    }
    chance = random_recall_at(titles, 10)
    for direction in results.values():
        direction["median_rank_pct"] = 100.0 * direction["median_rank"] / len(products)
        direction["gallery"] = float(len(products))
        direction["random_R@10"] = chance
    return results


def random_recall_at(titles: Sequence[str], k: int) -> float:
    """Expected R@k (hit) of a random ranking when every product of `titles` queries
    the gallery of all of them: 1 - C(N - r, k) / C(N, k) for a title with r products."""
    counts = Counter(titles)
    total = len(titles)
    if k >= total:
        return 1.0
    miss = [math.comb(total - counts[t], k) / math.comb(total, k) for t in titles]
    return float(1.0 - sum(miss) / len(miss))


def evaluate_catalog(
    model: Encoder,
    queries: Sequence[Product],
    gallery: Sequence[Product],
    *,
    batch_size: int = 128,
    gallery_embeddings: tuple[np.ndarray, np.ndarray | None] | None = None,
    correction: Correction | None = None,
) -> dict[str, dict[str, float]]:
    """Text->image: queries are the distinct titles of `queries`, the gallery every
    product photo of `gallery`; R@k is the share of a title's products in the top k.
    Image->text: each query product's photo against the distinct titles of `gallery`.
    `correction`: both ranked as the service ranks (hubness-corrected).
    """
    gallery = list(gallery)
    image_emb, _ = gallery_embeddings or (
        model.encode_images([p.image for p in gallery], batch_size=batch_size),
        None,
    )
    gallery_titles = [p.text for p in gallery]
    query_titles = sorted({p.text for p in queries})
    query_text_emb = model.encode_texts(query_titles, batch_size=batch_size)
    scores = _corrected(correction, query_text_emb @ image_emb.T, query_titles, image_emb)
    text_to_image = summarise(
        ranked_relevance(scores, query_titles, gallery_titles), recall="share"
    )
    distinct_titles = sorted(set(gallery_titles))
    title_emb = model.encode_texts(distinct_titles, batch_size=batch_size)
    # Query products are usually part of the gallery: reuse their photo embeddings.
    position = {p.id: i for i, p in enumerate(gallery)}
    query_list = list(queries)
    if all(p.id in position for p in query_list):
        query_image_emb = image_emb[[position[p.id] for p in query_list]]
    else:
        query_image_emb = model.encode_images([p.image for p in query_list], batch_size=batch_size)
    photo_scores = query_image_emb @ title_emb.T
    if correction is not None:
        photo_scores = correction.apply_photos(photo_scores, title_emb)
    image_to_text = summarise(
        ranked_relevance(photo_scores, [p.text for p in query_list], distinct_titles)
    )
    for direction, size in ((text_to_image, len(gallery)), (image_to_text, len(distinct_titles))):
        direction["gallery"] = float(size)
    return {"text_to_image": text_to_image, "image_to_text": image_to_text}


def evaluate_categories(
    model: Encoder,
    queries: Sequence[Product],
    gallery: Sequence[Product],
    *,
    gallery_embeddings: np.ndarray,
    fields: Sequence[str] = CATEGORY_FIELDS,
    batch_size: int = 128,
    correction: Correction | None = None,
) -> dict[str, dict[str, float]]:
    """Category tasks: each distinct value of `field` among `queries` ("Tshirts",
    "Navy Blue", "Topwear") is a text query against `gallery_embeddings` (one row per
    gallery product: photos, or product vectors); every gallery product with that
    value is relevant. -> {field: {P@1, P@10, MRR, queries}}; a field no query product
    has is left out."""
    results = {}
    for field in fields:
        values = sorted(
            {
                value
                for p in queries
                if (value := p.attributes.get(field, "").strip()).lower() not in MISSING
            }
        )
        if not values:
            continue
        value_emb = model.encode_texts(values, batch_size=batch_size)
        gallery_values = [p.attributes.get(field, "").strip() for p in gallery]
        scores = _corrected(
            correction, value_emb @ gallery_embeddings.T, values, gallery_embeddings
        )
        relevant = ranked_relevance(scores, values, gallery_values)
        if relevant.any():
            results[field] = precision_summary(relevant)
    return results


def selection_score(title: dict[str, float], categories: dict[str, dict[str, float]]) -> float:
    """Model selection on val: the title task's recall@10 plus the category tasks'
    mean P@10, so neither whole titles nor short shopper queries are traded away."""
    category = np.mean([m["P@10"] for m in categories.values()]) if categories else 0.0
    return float(title["R@10"] + category)


def format_categories(results: dict[str, dict[str, float]], title: str = "") -> str:
    header = f"{'category task':<16}" + "".join(
        f"{c:>10}" for c in ("P@1", "P@10", "MRR", "queries")
    )
    lines = [title, header] if title else [header]
    for field, m in results.items():
        lines.append(
            f"{field:<16}{m['P@1']:>10.4f}{m['P@10']:>10.4f}{m['MRR']:>10.4f}{m['queries']:>10.0f}"
        )
    return "\n".join(lines)


TARGETS = ("image", "product")


def evaluate_catalog_tasks(
    model: Encoder,
    queries: Sequence[Product],
    gallery: Sequence[Product],
    *,
    targets: Sequence[str] = ("image",),
    product_weights: Sequence[float] = (0.9, 0.1),
    batch_size: int = 128,
    correction: Correction | None = None,
) -> dict[str, dict]:
    """The catalogue-scale tasks for each search target, encoding the gallery once.

    target "image": the gallery's photos (both directions of `evaluate_catalog`, and the
    category tasks); "product": its product vectors (models.fuse of photo and title, as
    the indexer builds them), title->product and the category tasks. A title query finds
    its own title inside a product vector, so the product target's title task measures
    the search a shopper gets, not how well photos alone are understood. `correction`:
    text queries ranked as the service ranks them (hubness-corrected).
    -> {target: {"results": {...}, "categories": {...}}}
    """
    gallery = list(gallery)
    photos = encode_photos(model, gallery, batch_size)
    out: dict[str, dict] = {}
    for target in targets:
        if target == "image":
            embeddings = photos
        elif target == "product":
            titles = model.encode_texts([p.text for p in gallery], batch_size=batch_size)
            embeddings = fuse(photos, titles, product_weights)
        else:
            raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
        results = evaluate_catalog(
            model,
            queries,
            gallery,
            batch_size=batch_size,
            gallery_embeddings=(embeddings, None),
            correction=correction,
        )
        if target != "image":  # photos query titles: the product target has no such side
            del results["image_to_text"]
        categories = evaluate_categories(
            model,
            queries,
            gallery,
            gallery_embeddings=embeddings,
            batch_size=batch_size,
            correction=correction,
        )
        out[target] = {"results": results, "categories": categories}
    return out


def format_table(results: dict[str, dict[str, float]], title: str = "") -> str:
    """A plain-text table: one row per direction."""
    columns = ["R@1", "R@5", "R@10", "median_rank", "mAP", "MRR@10", "queries", "gallery"]
    header = f"{'direction':<15}" + "".join(f"{c:>13}" for c in columns)
    lines = [title, header] if title else [header]
    for direction, metrics in results.items():
        cells = []
        for column in columns:
            value = metrics.get(column, float("nan"))
            cells.append(
                f"{value:>13.0f}"
                if column in ("queries", "gallery", "median_rank")
                else f"{value:>13.4f}"
            )
        lines.append(f"{direction:<15}" + "".join(cells))
    return "\n".join(lines)
