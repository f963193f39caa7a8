"""AUC / TPR at 1 % FPR of a detector's weights: dev pair (AnimateDiff vs real-video-dev) and a test split
(+ extra pairs), published as in training.
  python runs/gan/evaluate.py WEIGHTS|shipped DATA [EXTRA.npz ...]"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from trustframe import media
from trustframe.detector.api import load
from trustframe.detector.train import TrainConfig, clip_logits, load_split, published

torch.set_num_threads(2)
det = load()
if sys.argv[1] != "shipped":
    det.net.load_state_dict(load_file(sys.argv[1]))
det.net.eval()


def metrics(r, f):
    y = np.r_[np.zeros(len(r)), np.ones(len(f))]
    s = np.r_[r, f]
    thr = np.quantile(r, 0.99)
    return dict(
        auc=round(float(roc_auc_score(y, s)), 3), tpr1=round(float((f > thr).mean()), 3), n=(len(r), len(f))
    )


res = {}
dev = {}
for lab, folder in ((1, "ai-video-dev"), (0, "real-video-dev")):
    dev[lab] = np.array(
        [det.logit(media.read(p)) for p in sorted(Path("../shared/data", folder).glob("*.mp4"))]
    )
res["animatediff"] = metrics(dev[0], dev[1])
d = load_split(Path(sys.argv[2]), "test")
for extra in sys.argv[3:]:
    e = dict(np.load(extra))
    d = {k: np.concatenate([d[k], e[k]]) for k in d if k in e}
d = published(d, TrainConfig(gif_p=0.3, grain_p=0.25), 0)
r, f = clip_logits(det, d["real"]), clip_logits(det, d["fake"])
names = ["sd2d-f8", "tconv2d-f8", "causal3d-f8t4", "tfvae-f4c8", "sd2d-f8-gan"]
res["test, trained decoders"] = metrics(r[d["decoder"] < 4], f[d["decoder"] < 4])
for k in np.unique(d["decoder"]):
    m = d["decoder"] == k
    res[f"test {names[k]}"] = metrics(r[m], f[m])
res["real logit median"] = round(float(np.median(r)), 3)
print(json.dumps({"weights": sys.argv[1], **res}))
