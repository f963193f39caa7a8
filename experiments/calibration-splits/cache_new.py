"""Cache tfdet-s logits + qp + codec tags for the calibration and test splits, published as training."""
import sys, time
from pathlib import Path
import numpy as np
from trustframe.detector import load
from trustframe.detector.train import TrainConfig, load_split, published, clip_logits

det = load("tfdet-s")
data = Path("runs/tfdet-s/data")
cfg = TrainConfig(gif_p=0.3, grain_p=0.25, jpeg_p=0.3)
for split, seed in (("calibration", cfg.seed), ("test", cfg.seed + 1)):
    t = time.time()
    d = published(load_split(data, split), cfg, seed)
    lr, lf = clip_logits(det, d["real"]), clip_logits(det, d["fake"])
    np.savez(f"runs/ece/new-{split}.npz", lr=lr, lf=lf, qr=d["qp_real"], qf=d["qp_fake"], codec=np.asarray(d["codec"]),
             decoder=np.asarray(d["decoder"]))
    print(split, len(lr), round(time.time() - t), "s", flush=True)
