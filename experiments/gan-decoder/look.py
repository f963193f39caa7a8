# A held-out source, sd2d-f8's and sd2d-f8-gan's reconstructions, and their luma residuals (x16).
import cv2
import numpy as np
import torch
from safetensors.torch import load_file

from trustframe.detector.autoencoders import create_autoencoder, reconstruct
from trustframe.detector.data import SourceSampler

torch.set_num_threads(1)
src = [SourceSampler("test")(np.random.default_rng(s), 192, 2) for s in (1, 2, 3)]
ms = []
for n in ("sd2d-f8", "sd2d-f8-gan"):
    m = create_autoencoder("sd2d-f8")
    m.load_state_dict(load_file(f"runs/det8/data/{n}.safetensors"))
    ms.append(m.eval())


def res(f):
    y = f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.clip(np.abs(y - cv2.blur(y, (3, 3))) * 16, 0, 255).astype(np.uint8)[..., None], 3, 2)


rows = []
for s in src:
    ims = [s[0]] + [reconstruct(m, s)[0] for m in ms]
    rows.append(np.concatenate(ims + [res(i) for i in ims], 1))
cv2.imwrite("runs/gan/look.png", cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
