"""Old (calibrated on the old calibration split) vs new calibration of the same tfdet-s weights,
on the old and the new test split: ECE per codec bucket (footage + renders), with floors."""
import json, sys
import numpy as np
sys.path.insert(0, "benchmarks")
from detector import codec_bucket
from trustframe.detector.api import Calibration
from trustframe.detector.metrics import ece, ece_floor

def calib(path):
    return Calibration(**json.load(open(path))["calibration"])
cals = {"old cal": calib("runs/tfdet-s/tfdet-s-card-before-splits.json"), "new cal": calib("detector/weights/tfdet-s.json")}
for test in ("test", "new-test"):
    z = np.load(f"runs/ece/{test}.npz"); n = len(z["lr"])
    L = np.r_[z["lr"], z["lf"]]; Q = np.r_[z["qr"], z["qf"]]; Y = np.r_[np.zeros(n), np.ones(n)]
    B = np.array([codec_bucket(t) for t in np.r_[z["codec"], z["codec"]]])
    for name, c in cals.items():
        p = c.prob(L, Q)
        row = {"all": round(ece(Y, p), 4), **{b: round(ece(Y[B == b], p[B == b]), 4) for b in sorted(set(B))}}
        fl = {b: round(ece_floor(p[B == b]), 4) for b in sorted(set(B))}
        print(test, n, name, json.dumps(row), "floors", json.dumps(fl))
        read = np.isfinite(Q)
        print("   qp-read subsets:", {b: (int((read & (B == b)).sum()), round(ece(Y[read & (B == b)], p[read & (B == b)]), 4)) for b in sorted(set(B)) if (read & (B == b)).sum()})
