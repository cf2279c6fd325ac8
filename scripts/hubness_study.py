"""How the hubness correction (models.hubness) moves each kind of query, on the val split.

    python scripts/hubness_study.py --catalog ../shared/data/kagl/catalog.csv [--model M]

The gallery is the val split's photos (as training's model selection); the bank is a
seeded sample of the training split's titles (models.hubness.sample_bank, as the
artifact's). For each bank size, k and alpha it prints, on the same gallery:
  - seed protocol (a 1,000-product val gallery, seed 0): text->image R@1 / R@10;
  - the title task: R@10 / MRR@10 (val titles against the val photos);
  - the category tasks' P@10 (category, sub-category, fine category, colour): one or
    two words, so the service never corrects them; shown corrected, to see why;
  - two-attribute shopper queries (training.queries' colour + article type, gender +
    article type; three words or more, so corrected): P@10.
It is how alpha, k, the bank size and the three-word gate were chosen
(docs/training-log.md, "Hubness correction").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from val_gallery import load_val_gallery

from models.hubness import hubness, sample_bank
from training.evaluate import CATEGORY_FIELDS
from training.metrics import precision_summary, ranked_relevance, summarise
from training.queries import FIELDS, MISSING

SHOPPER_FIELDS = ("colour_article", "gender_article")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="artifact (default: the bundled model)")
    parser.add_argument("--banks", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    args = parser.parse_args()

    gallery = load_val_gallery(args.catalog, args.model)
    model, splits, val = gallery.model, gallery.splits, gallery.val
    photos, titles, title_vectors = gallery.photos, gallery.titles, gallery.title_vectors
    seed_rows, seed_titles = gallery.seed_rows, gallery.seed_titles
    distinct, distinct_vectors = gallery.distinct, gallery.distinct_vectors

    # (name, query texts, their vectors, each query's key, each photo's key)
    tasks = []
    for field in CATEGORY_FIELDS:
        keys = [p.attributes.get(field, "").strip() for p in val]
        values = sorted({k for k in keys if k.lower() not in MISSING})
        tasks.append((field, model.encode_texts(values), values, keys))
    for name in SHOPPER_FIELDS:
        field = FIELDS[name]
        product_keys = [field.key(p) for p in val]
        wanted = sorted({k for k in product_keys if k is not None})
        texts = [field.wordings(k)[1] for k in wanted]  # "navy blue shirts", "men shirts"
        keys = ["|".join(k) if k else "" for k in product_keys]
        tasks.append((name, model.encode_texts(texts), ["|".join(k) for k in wanted], keys))

    all_train = [p.text for p in splits.train]
    print(f"model {model.model_id}; val: {len(val):,} photos, {len(distinct):,} titles")
    print(
        f"{'bank':>6}{'k':>4}{'alpha':>7}  {'seed R@1':>8}{'R@10':>7}  {'title R@10':>10}{'MRR':>7}"
        f"  {'category P@10: cat / sub / fine / colour':>42}  {'colour+article':>14}{'gender+article':>15}"
    )
    for size in args.banks:
        bank = model.encode_texts(sample_bank(all_train, size))
        for k in args.ks:
            r = hubness(photos, bank, k)
            for alpha in args.alphas:
                bias = -alpha * r
                seed_scores = title_vectors[seed_rows] @ photos[seed_rows].T + bias[seed_rows]
                seed = summarise(ranked_relevance(seed_scores, seed_titles, seed_titles))
                title = summarise(
                    ranked_relevance(distinct_vectors @ photos.T + bias, distinct, titles),
                    recall="share",
                )
                p10 = []
                for _, vectors, queries, keys in tasks:
                    relevant = ranked_relevance(vectors @ photos.T + bias, queries, keys)
                    p10.append(precision_summary(relevant)["P@10"])
                categories = " / ".join(f"{p:.3f}" for p in p10[:4])
                print(
                    f"{size:>6}{k:>4}{alpha:>7.2f}  {seed['R@1']:>8.3f}{seed['R@10']:>7.3f}"
                    f"  {title['R@10']:>10.3f}{title['MRR@10']:>7.3f}  {categories:>42}"
                    f"  {p10[4]:>14.3f}{p10[5]:>15.3f}"
                )


if __name__ == "__main__":
    main()
