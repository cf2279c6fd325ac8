"""Image->text recall when the query photo is an upload of another size.

    python scripts/upload_sizes.py --model models/default --catalog ../shared/data/kagl/catalog.csv

Shoppers upload photos larger than the catalogue's 60x80 thumbnails. The seed protocol
(a seeded 1,000-product gallery of the test split) is scored with the query photos as
they are, scaled up to 225x300 (same shape), padded on white to a square and scaled to
224x224, and stretched to 224x224; the gallery titles are unchanged. A model that
reads products, not pixel sizes, scores the same on every row.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image, ImageOps

from models import load_model, open_image, read_catalog
from training.data import SplitSpec
from training.metrics import ranked_relevance, summarise


def _square(image: Image.Image) -> Image.Image:
    side = max(image.size)
    return ImageOps.pad(image, (side, side), color=(255, 255, 255)).resize(
        (224, 224), Image.Resampling.BICUBIC
    )


VARIANTS = {
    "as catalogued (60x80)": lambda image: image,
    "scaled to 225x300": lambda image: image.resize((225, 300), Image.Resampling.BICUBIC),
    "padded square, 224x224": _square,
    "stretched to 224x224": lambda image: image.resize((224, 224), Image.Resampling.BICUBIC),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="artifact directory (default: the bundled model)"
    )
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--gallery-size", type=int, default=1000)
    args = parser.parse_args(argv)

    model = load_model(args.model, device="cpu")
    catalogue = read_catalog(args.catalog).products
    products = SplitSpec.from_metrics(model.metrics).split(catalogue).get(args.split)
    products = random.Random(0).sample(products, min(args.gallery_size, len(products)))
    titles = [p.text for p in products]
    title_emb = model.encode_texts(titles)
    photos = [open_image(p.image) for p in products]
    print(f"model {model.model_id}, {args.split} split, gallery {len(products)}")
    print(f"{'query photo':<26}{'i->t R@1':>10}{'R@10':>8}")
    for name, variant in VARIANTS.items():
        queries = model.encode_images([variant(photo) for photo in photos])
        metrics = summarise(ranked_relevance(queries @ title_emb.T, titles, titles))
        print(f"{name:<26}{metrics['R@1']:>10.3f}{metrics['R@10']:>8.3f}")


if __name__ == "__main__":
    main()
