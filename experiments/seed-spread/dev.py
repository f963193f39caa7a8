# ruff: noqa  (experiment scripts, reverted after their commit)
"""The dev pair (AnimateDiff vs real-video-dev): per-clip logits, clean and after CRF 28 and resize 0.5,
for each weights file given, with AUCs and a bootstrap 95 % interval of the clean AUC.
THREADS=1 python experiments/seed-spread/dev.py OUT.npz A.safetensors [B.safetensors ...]"""
import os
import sys

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, "benchmarks")
from detector import ATTACKS, SHARED, scores
from trustframe import media
from trustframe.detector.api import load
from trustframe.media import Frames

torch.set_num_threads(int(os.environ.get("THREADS", "1")))

def clips(folder):
    read = (media.read(p, max_frames=None, quantiser=True) for p in sorted(folder.glob("*.mp4")))
    return [Frames(f.data[:16], f.fps, meta=f.meta) for f in read]

fa, fr = clips(SHARED / "ai-video-dev"), clips(SHARED / "real-video-dev")
sets = {"clean": (fr, fa)}
for att in ("H.264 CRF 28", "resize 0.5"):
    sets[att] = tuple([ATTACKS[att](f.data) for f in x] for x in (fr, fa))
out, rng = {}, np.random.default_rng(0)
y = np.r_[np.zeros(len(fr)), np.ones(len(fa))]
for p in sys.argv[2:]:
    det, name = load(p), os.path.basename(os.path.dirname(os.path.dirname(p))) or p
    line = []
    for att, (r, a) in sets.items():
        lr, _ = scores(det, r); la, _ = scores(det, a)
        out[f"{name}|{att}"] = np.r_[lr, la]
        line.append(f"{att} {roc_auc_score(y, out[f'{name}|{att}']):.3f}")
    s = out[f"{name}|clean"]
    boot = []
    for _ in range(2000):
        i = np.r_[rng.integers(0, len(fr), len(fr)), len(fr) + rng.integers(0, len(fa), len(fa))]
        boot.append(roc_auc_score(y[i], s[i]))
    print(p, "|", " / ".join(line), f"| clean 95 % CI {np.quantile(boot, 0.025):.3f}-{np.quantile(boot, 0.975):.3f}", flush=True)
np.savez(sys.argv[1], labels=y, **out)
