"""Experiment: an SD-style decoder that synthesises texture, as real generators' decoders do.

sd2d-f8 (L1 only) reconstructs smoothly; Stable Diffusion's VAE was trained with perceptual and
PatchGAN losses, so its decoder invents fine texture. Here: sd2d-f8's trained weights, encoder
frozen, decoder fine-tuned with L1 + a hinge PatchGAN loss (a small discriminator from scratch).

  python runs/gan/train_gan.py runs/det8/data MINUTES THREADS
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from trustframe.detector.autoencoders import create_autoencoder, psnr
from trustframe.detector.data import SourceSampler, training_clips

out, minutes, threads = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(5)
rng = np.random.default_rng(5)
ae = create_autoencoder("sd2d-f8")
ae.load_state_dict(load_file(str(out / "sd2d-f8.safetensors")))
for p in ae.encoder.parameters():
    p.requires_grad_(False)
ae.encoder.eval()


def sn(m):
    return nn.utils.spectral_norm(m)


D = nn.Sequential(  # PatchGAN: 70-ish px receptive field is too much at 64 px; 3 stride-2 layers
    sn(nn.Conv2d(3, 32, 4, 2, 1)),
    nn.LeakyReLU(0.2),
    sn(nn.Conv2d(32, 64, 4, 2, 1)),
    nn.LeakyReLU(0.2),
    sn(nn.Conv2d(64, 128, 4, 2, 1)),
    nn.LeakyReLU(0.2),
    sn(nn.Conv2d(128, 1, 3, 1, 1)),
)
og = torch.optim.Adam(ae.decoder.parameters(), lr=1e-4, betas=(0.5, 0.9))
od = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.9))
draw = training_clips(SourceSampler("train"), frames=2)
held = training_clips(SourceSampler("calibration"))(16, np.random.default_rng(99))


def flat(x):
    return x.transpose(1, 2).reshape(-1, 3, *x.shape[-2:])


t0, step, log = time.time(), 0, []
while time.time() - t0 < minutes * 60:
    x = flat(draw(16, rng))
    with torch.no_grad():
        z = ae.encoder(x)
    y = ae.decoder(z)
    # discriminator
    ld = F.relu(1 - D(x)).mean() + F.relu(1 + D(y.detach())).mean()
    od.zero_grad()
    ld.backward()
    od.step()
    # decoder: L1 + adversarial (weight 0.1; SD-style adaptive weighting left out)
    l1 = (y - x).abs().mean()
    adv = -D(y).mean()
    lg = l1 + 0.1 * adv
    og.zero_grad()
    lg.backward()
    og.step()
    step += 1
    if step % 25 == 0:
        log.append(
            dict(
                step=step,
                min=round((time.time() - t0) / 60, 1),
                l1=round(l1.item(), 4),
                adv=round(adv.item(), 3),
                ld=round(ld.item(), 3),
            )
        )
        print(json.dumps(log[-1]), flush=True)
ae.eval()
with torch.no_grad():
    p = np.mean([psnr(ae(held[i : i + 4]), held[i : i + 4]) for i in range(0, 16, 4)])
save_file({k: v.contiguous() for k, v in ae.state_dict().items()}, str(out / "sd2d-f8-gan.safetensors"))
print("steps", step, "psnr", p)
