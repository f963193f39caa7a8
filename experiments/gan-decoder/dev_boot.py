# Paired bootstrap of the AnimateDiff-vs-real-video-dev AUC difference between two weight files.
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from trustframe import media
from trustframe.detector.api import load

torch.set_num_threads(1)
clips = [(1, p) for p in sorted(Path("../shared/data/ai-video-dev").glob("*.mp4"))] + [
    (0, p) for p in sorted(Path("../shared/data/real-video-dev").glob("*.mp4"))
]
frames = [media.read(p) for _, p in clips]
y = np.array([label for label, _ in clips])
S = []
for w in sys.argv[1:]:
    det = load()
    if w != "shipped":
        det.net.load_state_dict(load_file(w))
    det.net.eval()
    S.append(np.array([det.logit(f) for f in frames]))
rng = np.random.default_rng(0)
d = []
for _ in range(2000):
    i = np.r_[rng.choice(np.where(y == 1)[0], 63), rng.choice(np.where(y == 0)[0], 38)]
    d.append(roc_auc_score(y[i], S[0][i]) - roc_auc_score(y[i], S[1][i]))
print(
    [round(roc_auc_score(y, s), 3) for s in S],
    "diff",
    round(float(np.mean(d)), 3),
    "95% CI",
    np.percentile(d, [2.5, 97.5]).round(3),
)
