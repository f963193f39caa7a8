"""Held-out sources, each trained autoencoder's reconstruction (L1 stage, then adversarial), and their
luma residuals (x16): what a detector trained on these fakes sees.

  python experiments/gan-decoders-ab/look.py L1_DIR ADV_DIR OUT.png
"""

import sys

import cv2
import numpy as np
import torch
from safetensors.torch import load_file

from trustframe.detector.autoencoders import TRAINED_HERE, create_autoencoder, reconstruct
from trustframe.detector.data import SourceSampler

torch.set_num_threads(1)
l1_dir, adv_dir, out = sys.argv[1:4]
src = [SourceSampler("test")(np.random.default_rng(s), 160, 5) for s in (1, 2)]


def residual(f):
    y = f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    r = np.clip(np.abs(y - cv2.blur(y, (3, 3))) * 16, 0, 255).astype(np.uint8)
    return np.repeat(r[..., None], 3, 2)


rows = []
for s in src:
    ims = [s[1]]
    for name in TRAINED_HERE:
        for folder in (l1_dir, adv_dir):
            m = create_autoencoder(name)
            m.load_state_dict(load_file(f"{folder}/{name}.safetensors"))
            ims.append(reconstruct(m.eval(), s)[1])
    rows.append(np.concatenate(ims, 1))
    rows.append(np.concatenate([residual(i) for i in ims], 1))
cv2.imwrite(out, cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
