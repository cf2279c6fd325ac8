"""Head experiments on cached tower features (tower_features.py): val scores after each epoch."""

import argparse
import random
import sys
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import load_model, read_catalog
from training.data import split_products
from training.diagnose import attribute_value
from training.losses import CMPCClassifier, cmpm_loss
from training.metrics import ranked_relevance, summarise

torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))

p = argparse.ArgumentParser()
p.add_argument("--feats", default="runs/scratch/ft")  # prefix written by tower_features.py
p.add_argument("--init", default="")  # models/default: start from its heads
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--bs", type=int, default=128)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--loss", default="cmpm")  # cmpm | clip | cmpm+cmpc
p.add_argument("--scale", type=float, default=1.0)
p.add_argument(
    "--hard", type=float, default=0.0
)  # share of batches drawn from one (gender, articleType) group
p.add_argument("--hard_key", default="gender,articleType")
p.add_argument("--mlp", type=int, default=0)
p.add_argument("--eval_only", action="store_true")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--attr", type=float, default=0.0)
p.add_argument("--attrs", default="gender,articleType,baseColour,brand")
p.add_argument("--attr_scale", type=float, default=10.0)
p.add_argument("--save", default="")
a = p.parse_args()
torch.manual_seed(a.seed)
random.seed(a.seed)

cat = read_catalog("../shared/data/kagl/catalog.csv")
splits = split_products(list(cat.products))
order = splits.train + splits.val + splits.test
nt, nv = len(splits.train), len(splits.val)
img = torch.from_numpy(np.load(a.feats + "_image.npy").astype(np.float32))
txt = torch.from_numpy(np.load(a.feats + "_text.npy").astype(np.float32))
titles = [p.text for p in order]


def make_head(i, o):
    if a.mlp:
        return nn.Sequential(nn.Linear(i, a.mlp), nn.GELU(), nn.Linear(a.mlp, o))
    return nn.Linear(i, o)


ih, th = make_head(img.shape[1], 512), make_head(txt.shape[1], 512)
if a.init:
    m = load_model(a.init, device="cpu")
    ih.load_state_dict(m.image_head.state_dict())
    th.load_state_dict(m.text_head.state_dict())


def catalog_eval(split_slice, ih, th):
    """The `catalog` protocol (distinct titles of the split against every photo) and a
    1,000-product `seed`-style gallery, scored by training.metrics like `evaluate`."""
    with torch.no_grad():
        gallery = F.normalize(ih(img), dim=1).numpy()
        first_idx = {}
        for i in range(*split_slice):
            first_idx.setdefault(titles[i], i)
        query_titles = sorted(first_idx)
        queries = F.normalize(th(txt[[first_idx[t] for t in query_titles]]), dim=1).numpy()
        catalog = summarise(
            ranked_relevance(queries @ gallery.T, query_titles, titles), recall="share"
        )
        idx = np.random.default_rng(0).choice(np.arange(*split_slice), 1000, replace=False)
        seed_titles = [titles[i] for i in idx]
        scores = F.normalize(th(txt[idx]), dim=1).numpy() @ gallery[idx].T
        t2i = summarise(ranked_relevance(scores, seed_titles, seed_titles))
        i2t = summarise(ranked_relevance(scores.T, seed_titles, seed_titles))
    return {
        "cat_R10": round(catalog["R@10"], 4),
        "cat_MRR10": round(catalog["MRR@10"], 4),
        "seed_t2i_R1": t2i["R@1"],
        "seed_t2i_R10": t2i["R@10"],
        "seed_i2t_R1": i2t["R@1"],
        "seed_i2t_R10": i2t["R@10"],
    }


val = (nt, nt + nv)
print("start", catalog_eval(val, ih, th), flush=True)
if a.eval_only:
    sys.exit()

# identities and hard groups over the train split
labels = {}
lab = [labels.setdefault(titles[i], len(labels)) for i in range(nt)]
groups_by_id = defaultdict(list)
for i in range(nt):
    groups_by_id[lab[i]].append(i)
keys = a.hard_key.split(",")
attr_of_id = {}
for i in range(nt):
    attr_of_id.setdefault(lab[i], tuple(order[i].attributes.get(k, "") for k in keys))
ids_by_group = defaultdict(list)
for ident, g in attr_of_id.items():
    ids_by_group[g].append(ident)


def batches(epoch):
    rng = random.Random(a.seed * 1000 + epoch)
    per = {ident: rng.sample(ix, len(ix))[:4] for ident, ix in groups_by_id.items()}
    ids = list(per)
    rng.shuffle(ids)
    n_hard = int(len(ids) * a.hard)
    hard_ids, easy_ids = set(ids[:n_hard]), ids[n_hard:]
    # hard: consecutive identities of the same group
    chunks = []
    for members in ids_by_group.values():
        mem = [x for x in members if x in hard_ids]
        rng.shuffle(mem)
        flat = [i for x in mem for i in per[x]]
        chunks += [flat[k : k + a.bs] for k in range(0, len(flat), a.bs)]
    flat = [i for x in easy_ids for i in per[x]]
    chunks += [flat[k : k + a.bs] for k in range(0, len(flat), a.bs)]
    rng.shuffle(chunks)
    return [c for c in chunks if len(c) >= 8]


params = list(ih.parameters()) + list(th.parameters())
clf = None
if "cmpc" in a.loss:
    clf = CMPCClassifier(512, len(labels))
    params += list(clf.parameters())
logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
if a.loss == "clip":
    params.append(logit_scale)
attr_names = a.attrs.split(",")
attr_labels, attr_heads = {}, nn.ModuleDict()
for k in attr_names:
    vocab = {}
    attr_labels[k] = torch.tensor(
        [vocab.setdefault(attribute_value(order[i], k), len(vocab)) for i in range(nt)]
        + [0] * (len(titles) - nt)
    )
    attr_heads[k] = nn.Linear(512, len(vocab), bias=False)
if a.attr:
    params += list(attr_heads.parameters())


def attr_loss(x, z, b):
    tot = 0
    for k in attr_names:
        w = F.normalize(attr_heads[k].weight, dim=1)
        y = attr_labels[k][b]
        tot = (
            tot
            + F.cross_entropy(a.attr_scale * F.normalize(x, dim=1) @ w.T, y)
            + F.cross_entropy(a.attr_scale * F.normalize(z, dim=1) @ w.T, y)
        )
    return tot


opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
title_rep = torch.tensor([groups_by_id[i][0] for i in range(len(labels))])
if a.loss == "locked":
    params = list(ih.parameters()) + (list(attr_heads.parameters()) if a.attr else [])
opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-4)
lab_t = torch.tensor(lab + [0] * (len(titles) - nt))
total = sum(len(batches(e)) for e in range(a.epochs))
step = 0
best = None
for ep in range(a.epochs):
    t0 = time.time()
    tot = 0
    for b in batches(ep):
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1 + np.cos(np.pi * step / total))
        b = torch.tensor(b)
        y = lab_t[b]
        x, z = ih(img[b]), th(txt[b])
        if a.loss == "locked":
            with torch.no_grad():
                T = F.normalize(th(txt[title_rep]), dim=1)
            loss = F.cross_entropy(a.scale * F.normalize(x, dim=1) @ T.T, y)
        elif a.loss == "clip":
            same = (y[:, None] == y[None]).float()
            tgt = same / same.sum(1, keepdim=True)
            s = logit_scale.exp().clamp(max=100) * F.normalize(x, dim=1) @ F.normalize(z, dim=1).T
            loss = (
                -(tgt * F.log_softmax(s, 1)).sum(1).mean()
                - (tgt * F.log_softmax(s.T, 1)).sum(1).mean()
            )
        else:
            loss = cmpm_loss(x, z, y, scale=a.scale)
            if clf is not None:
                loss = loss + clf(x, z, y)
        if a.attr:
            loss = loss + a.attr * attr_loss(x, z, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        tot += loss.item()
    r = catalog_eval(val, ih, th)
    print(ep + 1, round(tot, 1), round(time.time() - t0, 1), r, flush=True)
if a.save:
    torch.save({"image_head": ih.state_dict(), "text_head": th.state_dict()}, a.save)
