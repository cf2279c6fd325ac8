"""Pooled features of the untouched pretrained Lite0 (128x96) and MiniLM towers for every KAGL product."""
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models import open_image, read_catalog
from models.joint import build_model
from training.config import load_config
from training.data import split_products

torch.set_num_threads(1)
which = sys.argv[1]
m = build_model(load_config("lite0-minilm").model).eval()
cat = read_catalog("../shared/data/kagl/catalog.csv"); s = split_products(list(cat.products))
order = s.train + s.val + s.test
t = time.time()
with torch.inference_mode():
    if which == "text":
        texts = [p.text for p in order]
        f = [m.text_tower(**m.tokenize(texts[i:i+512])) for i in range(0, len(texts), 512)]
    else:
        train = torch.load("runs/lite0-minilm/prefix_cache_329f83a43ac5aa48.pt", weights_only=True)
        rest_path = Path("runs/scratch/prefix_rest.pt")  # first 8 blocks of the val + test photos
        if not rest_path.is_file():
            rest = order[len(s.train):]
            torch.save(torch.cat([m.image_tower.prefix(m.transform.batch([open_image(p.image) for p in rest[i:i+128]]), 8).half()
                                  for i in range(0, len(rest), 128)]), rest_path)
        cache = torch.cat([train, torch.load(rest_path, weights_only=True)])
        f = [m.image_tower.forward_from(cache[i:i+512].float(), 8) for i in range(0, len(order), 512)]
np.save(f"runs/scratch/pre_{which}.npy", torch.cat(f).half().numpy()); print("done", time.time() - t)
