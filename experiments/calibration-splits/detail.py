import numpy as np, time
from pathlib import Path
from trustframe.detector.train import TrainConfig, load_split, published
from trustframe.detector.data import detail
cfg = TrainConfig(gif_p=0.3, grain_p=0.25, jpeg_p=0.3)
data = Path("runs/tfdet-s/data")
for split, seed in (("calibration", cfg.seed), ("test", cfg.seed + 1)):
    t = time.time()
    d = published(load_split(data, split), cfg, seed)
    dr = np.array([detail(c) for c in d["real"]]); df = np.array([detail(c) for c in d["fake"]])
    # luma-only fine detail at full res, and a blockiness measure (8-px grid vs off-grid gradient)
    def block(c):
        y = c.astype(np.float32).mean(-1)
        g = np.abs(np.diff(y, axis=2))  # (T,H,W-1)
        on = g[:, :, 7::8].mean(); off = g.mean()
        return on / (off + 1e-3)
    br = np.array([block(c) for c in d["real"]]); bf = np.array([block(c) for c in d["fake"]])
    np.savez(f"runs/ece/{split}-detail.npz", dr=dr, df=df, br=br, bf=bf)
    print(split, round(time.time() - t), flush=True)
