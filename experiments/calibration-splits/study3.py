import json, sys
import numpy as np
sys.path.insert(0, "benchmarks")
from detector import codec_bucket
from trustframe.detector.metrics import ece, ece_floor
from trustframe.detector import load
z = np.load("runs/ece/test.npz")
n = len(z["lr"])
L = np.r_[z["lr"], z["lf"]]; Q = np.r_[z["qr"], z["qf"]]; Y = np.r_[np.zeros(n), np.ones(n)]
B = np.array([codec_bucket(t) for t in np.r_[z["codec"], z["codec"]]])
c = load("tfdet-s").calibration
p = c.prob(L, Q)
for b in sorted(set(B)):
    for read in (True, False):
        m = (B == b) & (np.isfinite(Q) == read)
        if m.sum() < 50: continue
        print(f"{b:18s} qp read={read!s:5s} n={m.sum():5d} ece={ece(Y[m], p[m]):.4f} floor={ece_floor(p[m]):.4f} mean p={p[m].mean():.3f} frac fake={Y[m].mean():.3f}")
print("---- qp-read subsets: plain curve vs qp form; calibration-split qp-read stats")
from trustframe.detector.api import Calibration
zc = np.load("runs/ece/calibration.npz")
Lc = np.r_[zc["lr"], zc["lf"]]; Qc = np.r_[zc["qr"], zc["qf"]]; Yc = np.r_[np.zeros(len(zc["lr"])), np.ones(len(zc["lf"]))]
Bc = np.array([codec_bucket(t) for t in np.r_[zc["codec"], zc["codec"]]])
print("h264 coef", c.h264["coef"], c.h264["intercept"], c.h264["qp_range"])
pp = c.prob(L)
for b in sorted(set(B)):
    m = (B == b) & np.isfinite(Q)
    mc = (Bc == b) & np.isfinite(Qc)
    if m.sum() < 50: continue
    iso = Calibration.fit(Lc[mc & (Yc == 0)], Lc[mc & (Yc == 1)])
    print(f"{b:18s} test n={m.sum()} plain={ece(Y[m], pp[m]):.4f} qpform={ece(Y[m], p[m]):.4f} own-band-curve={ece(Y[m], iso.prob(L[m])):.4f} | cal n={mc.sum()} qp test {np.nanmean(Q[m]):.1f} cal {np.nanmean(Qc[mc]):.1f} | real qp {np.nanmean(Q[m & (Y==0)]):.2f} fake qp {np.nanmean(Q[m & (Y==1)]):.2f}")
