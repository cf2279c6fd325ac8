"""Which shopper-query fields help, measured with the towers frozen (heads only).

    python scripts/experiments/field_ablation.py --model MODEL_DIR --out runs/scratch/fields

Pooled tower features of a seeded 12,000-product sample of the train split and of
every val product are computed once (cached under --out); then, for each variant, the
model's two projections are trained for 3 epochs with the title CMPM term plus the
variant's field terms (training.queries, training.objectives.multi_field_loss), and
scored on val with every val photo as the gallery: the title task's recall@10 and
MRR@10 and the four category tasks' P@10 (training.evaluate's metrics). A field that
raises its own category task without lowering the title task is worth its weight.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models import load_model, open_image, read_catalog
from training.config import load_config
from training.data import IdentityBatchSampler, SplitSpec, identity_labels
from training.evaluate import CATEGORY_FIELDS
from training.losses import cmpm_loss
from training.metrics import precision_summary, ranked_relevance, summarise
from training.objectives import multi_field_loss
from training.queries import FIELDS, all_wordings, batch_queries, query_rng

# The default model's field weights, read from its training config (one place).
CONFIG_WEIGHTS = load_config("lite0-minilm-fields").fields
VARIANTS = {
    "titles only": {},
    **{f"+ {name} 0.5": {name: 0.5} for name in FIELDS},
    "all, config weights": CONFIG_WEIGHTS,
    "all, 2x config weights": {k: 2 * v for k, v in CONFIG_WEIGHTS.items()},
}


def features(model, products, texts, cache: Path):
    if cache.with_suffix(".npz").is_file():
        saved = np.load(cache.with_suffix(".npz"))
        return torch.from_numpy(saved["images"]), torch.from_numpy(saved["texts"])
    with torch.inference_mode():
        images = torch.cat(
            [
                model.image_tower(
                    model.transform.batch([open_image(p.image) for p in products[i : i + 128]])
                )
                for i in range(0, len(products), 128)
            ]
        )
        text = torch.cat(
            [
                model.text_tower(**model.tokenize(texts[i : i + 256]))
                for i in range(0, len(texts), 256)
            ]
        )
    np.savez(cache, images=images.numpy(), texts=text.numpy())
    return images, text


def score(model, img, title_txt, val, text_index, values_txt):
    with torch.no_grad():
        photos = F.normalize(model.image_head(img), dim=1).numpy()
        titles = sorted({p.text for p in val})
        queries = F.normalize(
            model.text_head(title_txt[[text_index[t] for t in titles]]), dim=1
        ).numpy()
        title = summarise(
            ranked_relevance(queries @ photos.T, titles, [p.text for p in val]), recall="share"
        )
        out = {"title R@10": title["R@10"], "title MRR@10": title["MRR@10"]}
        for field in CATEGORY_FIELDS:
            values = sorted({p.attributes[field] for p in val})
            emb = F.normalize(
                model.text_head(values_txt[[text_index[v] for v in values]]), dim=1
            ).numpy()
            rel = ranked_relevance(emb @ photos.T, values, [p.attributes[field] for p in val])
            out[f"{field} P@10"] = precision_summary(rel)["P@10"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, default=Path("../shared/data/kagl/catalog.csv"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-size", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    model = load_model(args.model, device="cpu")
    splits = SplitSpec.from_metrics(model.metrics).split(read_catalog(args.catalog).products)
    train = random.Random(0).sample(splits.train, args.train_size)
    val = splits.val
    products = train + val
    # every text the variants or the scoring need, encoded once: titles, wordings, values
    extra = all_wordings(list(FIELDS), train) + [
        p.attributes[f] for p in val for f in CATEGORY_FIELDS
    ]
    texts = list(dict.fromkeys([p.text for p in products] + extra))
    text_index = {t: i for i, t in enumerate(texts)}
    img, txt = features(model, products, texts, args.out / "features")
    train_img, val_img = img[: len(train)], img[len(train) :]
    labels, _ = identity_labels(train)
    heads = {k: v.clone() for k, v in model.state_dict().items() if "head" in k}

    start = score(model, val_img, txt, val, text_index, txt)
    print(f"{'variant':<28}" + "".join(f"{c:>22}" for c in start))
    print(f"{'the model as it is':<28}" + "".join(f"{v:>22.4f}" for v in start.values()))
    for name, weights in VARIANTS.items():
        model.load_state_dict(heads, strict=False)
        params = [*model.image_head.parameters(), *model.text_head.parameters()]
        optimizer = torch.optim.AdamW(params, lr=3e-4, weight_decay=1e-4)
        sampler = IdentityBatchSampler(labels, 64, per_identity=4, seed=0)
        for epoch in range(1, args.epochs + 1):
            sampler.set_epoch(epoch)
            for step, batch in enumerate(sampler):
                x = model.image_head(train_img[batch])
                z = model.text_head(txt[[text_index[train[i].text] for i in batch]])
                loss = cmpm_loss(x, z, torch.tensor([labels[i] for i in batch]))
                queries = batch_queries(
                    weights, [train[i] for i in batch], query_rng(0, epoch, step)
                )
                if queries:
                    embs = [model.text_head(txt[[text_index[t] for t in q.texts]]) for q in queries]
                    loss = loss + multi_field_loss(x, queries, embs, weights)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        found = score(model, val_img, txt, val, text_index, txt)
        print(f"{name:<28}" + "".join(f"{v:>22.4f}" for v in found.values()), flush=True)


if __name__ == "__main__":
    main()
