# ruff: noqa  (an experiment, reverted next: kept as it ran)
"""Cache a detector's clip logits on the calibration and test splits, published as in training.
python experiments/calibration-features/score.py PRESET DATA OUT.npz"""
import sys, time
from dataclasses import fields
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "benchmarks")
torch.set_num_threads(1)
from detector import training_flags, framed, codec_bucket  # benchmarks/detector.py
from trustframe.detector.api import load
from trustframe.detector.train import TrainConfig, load_split, published

preset, data, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
det = load(preset)
tc = training_flags(det.card)
cfg = TrainConfig(**{k: v for k, v in tc.items() if k in {f.name for f in fields(TrainConfig)}})
res = {}
for split, seed in (("calibration", cfg.seed), ("test", cfg.seed + 1)):
    t = time.time()
    d = published(load_split(data, split), cfg, seed)
    n = len(d["real"])
    for k in ("real", "fake"):
        fr = framed(d[k], d.get(f"qp_{k}"))
        res[f"{split}_logit_{k}"] = np.array([det.logit(f) for f in fr])
        res[f"{split}_qp_{k}"] = np.array([f.meta.get("h264_qp", np.nan) for f in fr], dtype=float)
    res[f"{split}_bucket"] = np.array([codec_bucket(c) for c in d["codec"]])
    res[f"{split}_decoder"] = d["decoder"]
    print(split, n, round(time.time() - t), "s", flush=True)
np.savez(out, **res)
