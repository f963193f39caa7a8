# Per-clip logits of the shipped detector on the dev pair, beside each clip's fine-detail energy.
# nice -n 19 .venv/bin/python runs/adiff/score.py
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from trustframe import media
from trustframe.detector.api import load

torch.set_num_threads(1)
det = load()
out = []
for label, d in ((1, "ai-video-dev"), (0, "real-video-dev")):
    for p in sorted(Path("../shared/data", d).glob("*.mp4")):
        fr = media.read(p, quantiser=True)
        lg = det.logit(fr)
        y = fr.data[:8].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        e = float(np.mean([np.abs(f - cv2.blur(f, (3, 3))).mean() for f in y]))
        out.append(dict(file=p.name, label=label, logit=lg, energy=e, w=fr.width, qp=fr.meta.get("h264_qp")))
        print(label, p.name, fr.width, round(lg, 2), round(e, 2), flush=True)
Path("runs/adiff/scores.json").write_text(json.dumps(out, indent=1))
y = np.array([o["label"] for o in out])
lg = np.array([o["logit"] for o in out])
e = np.array([o["energy"] for o in out])
print(
    "auc logit",
    roc_auc_score(y, lg),
    "auc energy",
    roc_auc_score(y, e),
    "corr logit-energy within ai",
    np.corrcoef(lg[y == 1], e[y == 1])[0, 1],
    "within real",
    np.corrcoef(lg[y == 0], e[y == 0])[0, 1],
)
