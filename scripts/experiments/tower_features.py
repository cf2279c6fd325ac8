"""Pooled tower features (pre-head) of every KAGL product, for fast head experiments."""
import sys
import time

import numpy as np
import torch

from models import load_model, open_image, read_catalog
from training.data import split_products

torch.set_num_threads(1)
model_dir, out = sys.argv[1], sys.argv[2]
which = sys.argv[3]  # image | text
m = load_model(model_dir, device="cpu").eval()
cat = read_catalog("../shared/data/kagl/catalog.csv")
products = list(cat.products)
splits = split_products(products)
order = splits.train + splits.val + splits.test
ids = np.array([int(p.id) for p in order])
t = time.time()
with torch.inference_mode():
    if which == "text":
        texts = [p.text for p in order]
        feats = [m.text_tower(**m.tokenize(texts[i:i+512])) for i in range(0, len(texts), 512)]
    else:
        cache = torch.load(sys.argv[4], weights_only=True) if len(sys.argv) > 4 else None
        feats = []
        n_train = len(splits.train)
        if cache is not None:
            assert cache.shape[0] == n_train
            for i in range(0, n_train, 256):
                feats.append(m.image_tower.forward_from(cache[i:i+256].float(), 8))
                if i % 5120 == 0: print("train", i, time.time()-t, flush=True)
            rest = order[n_train:]
        else:
            rest = order
        for i in range(0, len(rest), 128):
            px = m.transform.batch([open_image(p.image) for p in rest[i:i+128]])
            feats.append(m.image_tower(px))
            if i % 5120 == 0: print("rest", i, time.time()-t, flush=True)
feats = torch.cat(feats).half().numpy()
np.save(out, feats); np.save(out.replace(".npy", "_ids.npy"), ids)
print("done", feats.shape, time.time() - t)
