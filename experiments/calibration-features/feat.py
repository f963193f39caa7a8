# ruff: noqa  (an experiment, reverted next: kept as it ran)
"""Per-clip frame features of the published calibration/test splits (same publishing as experiments/calibration-features/score.py).
python experiments/calibration-features/feat.py DATA OUT.npz"""
import sys, time
from dataclasses import fields
from pathlib import Path
import numpy as np, cv2
sys.path.insert(0, "benchmarks")
from detector import training_flags
from trustframe.detector.api import load
from trustframe.detector.train import TrainConfig, load_split, published

data, out = Path(sys.argv[1]), sys.argv[2]
seed0 = int(sys.argv[3]) if len(sys.argv) > 3 else None
det = load("tfdet-s")
tc = training_flags(det.card)
cfg = TrainConfig(**{k: v for k, v in tc.items() if k in {f.name for f in fields(TrainConfig)}})
if seed0 is not None: cfg.seed = seed0

def feats(clip):
    g = clip.astype(np.float32).mean(-1)  # T,H,W
    lap = np.abs(np.stack([cv2.Laplacian(f, cv2.CV_32F) for f in g])).mean()
    dx = np.abs(np.diff(g, axis=2)); dy = np.abs(np.diff(g, axis=1))
    w = dx.shape[2]; h = dy.shape[1]
    bx = np.zeros(w, bool); bx[7::8] = True
    by = np.zeros(h, bool); by[7::8] = True
    blk = (dx[:, :, bx].mean() + dy[:, by, :].mean() + 1e-3) / (dx[:, :, ~bx].mean() + dy[:, ~by, :].mean() + 1e-3)
    grad = dx.mean() + dy.mean()
    return np.log(lap + 1e-3), np.log(blk), np.log(grad + 1e-3)

res = {}
for split, seed in (("calibration", cfg.seed), ("test", cfg.seed + 1)):
    t = time.time()
    d = published(load_split(data, split), cfg, seed)
    for k in ("real", "fake"):
        res[f"{split}_feat_{k}"] = np.array([feats(c) for c in d[k]])
    print(split, round(time.time() - t), "s", flush=True)
np.savez(out, **res)
