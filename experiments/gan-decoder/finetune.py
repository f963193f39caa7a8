"""Continue the shipped tfdet-s for MINUTES on a data folder (train.npz [+ extra npz]), as train.py
draws batches (same publishing flags as the recipe), constant small lr after a short warm-up.
  python runs/gan/finetune.py DATA OUT.safetensors MINUTES [EXTRA.npz ...]"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from trustframe.detector.api import load
from trustframe.detector.train import TrainConfig, draw_batch, load_split

data, out, minutes = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
torch.set_num_threads(1)
torch.manual_seed(0)
rng = np.random.default_rng(0)
d = load_split(data, "train")
for extra in sys.argv[4:]:
    e = dict(np.load(extra))
    d = {k: np.concatenate([d[k], e[k]]) for k in d if k in e}
print("pairs", len(d["real"]), "decoders", np.bincount(d["decoder"]), flush=True)
cfg = TrainConfig(resize_p=0.3, gif_p=0.3, grain_p=0.25)
net = load().net
net.train()
opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=0.05)
t0, step, losses = time.time(), 0, []
while time.time() - t0 < minutes * 60:
    frac = (time.time() - t0) / (minutes * 60)
    for g in opt.param_groups:
        g["lr"] = 3e-4 * min(1, step / 50) * 0.5 * (1 + np.cos(np.pi * frac))
    cur, pre, label = draw_batch(d, cfg, rng)
    loss = F.binary_cross_entropy_with_logits(net(cur, pre).mean(dim=(1, 2, 3)), label)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step += 1
    losses.append(loss.item())
    if step % 100 == 0:
        print(
            json.dumps(
                dict(step=step, min=round((time.time() - t0) / 60, 1), loss=round(float(np.mean(losses)), 4))
            ),
            flush=True,
        )
        losses = []
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out)
print("steps", step)
