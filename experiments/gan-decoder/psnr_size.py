# PSNR of each trained autoencoder on held-out (test split) sources at the sizes pairs are made at.
import numpy as np
import torch
from safetensors.torch import load_file

from trustframe.detector.autoencoders import create_autoencoder, psnr
from trustframe.detector.data import SourceSampler

torch.set_num_threads(1)
s = SourceSampler("test")
for n in ("sd2d-f8", "sd2d-f8-gan", "tconv2d-f8", "causal3d-f8t4"):
    m = create_autoencoder(n.replace("-gan", ""))
    m.load_state_dict(load_file(f"runs/det8/data/{n}.safetensors"))
    m.eval()
    row = []
    for px in (64, 128, 192, 384):
        vals = []
        for k in range(6):
            c = s(np.random.default_rng(k), px, 5)
            x = torch.from_numpy(c).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]
            with torch.no_grad():
                vals.append(psnr(m(x), x))
        row.append(round(float(np.mean(vals)), 2))
    print(n, dict(zip((64, 128, 192, 384), row, strict=True)), flush=True)
