import sys
import numpy as np
sys.path.insert(0, "benchmarks")
from detector import codec_bucket
from trustframe.detector.metrics import ece, ece_floor
from trustframe.detector.api import _isotonic
from sklearn.linear_model import LogisticRegression

def get(split):
    z = np.load(f"runs/ece/{split}.npz")
    n = len(z["lr"])
    L = np.r_[z["lr"], z["lf"]]; Q = np.r_[z["qr"], z["qf"]]; Y = np.r_[np.zeros(n), np.ones(n)]
    B = np.array([codec_bucket(t) for t in np.r_[z["codec"], z["codec"]]])
    m = np.isfinite(Q)
    return L[m], Q[m], Y[m], B[m]
cal, test = get("calibration"), get("test")
print("qp-read clips: cal", len(cal[0]), "test", len(test[0]))
for name, (L, Q, Y, B) in (("cal", cal), ("test", test)):
    for lo, hi in ((0, 30), (30, 37), (37, 60)):
        m = (Q >= lo) & (Q < hi)
        print(name, f"qp {lo}-{hi}", m.sum(), "real logit mean %.2f fake %.2f" % (L[m & (Y == 0)].mean(), L[m & (Y == 1)].mean()))
def feats(L, Q, kind):
    q = (Q - 32) / 8
    if kind == "linear": return np.c_[L, q, L * q]
    if kind == "quad": return np.c_[L, q, q * q, L * q, L * q * q]
    if kind == "bands":
        oh = np.c_[Q < 30, (Q >= 30) & (Q < 37), Q >= 37].astype(float)
        return np.c_[L, oh[:, 1:], L[:, None] * oh[:, 1:]]
def fitpred(tr, te, kind, C):
    L, Q, Y, _ = tr
    lr = LogisticRegression(C=C, max_iter=5000).fit(feats(L, Q, kind), Y)
    x, y = _isotonic(lr.decision_function(feats(L, Q, kind)), Y)
    return np.interp(lr.decision_function(feats(te[0], te[1], kind)), x, y), lr
for kind in ("linear", "quad", "bands"):
    for C in (1e4, 1.0):
        for trn, tr, te in (("cal->test", cal, test), ("test->cal", test, cal)):
            p, lr = fitpred(tr, te, kind, C)
            L, Q, Y, B = te
            row = {b[-5:]: round(ece(Y[B == b], p[B == b]), 4) for b in sorted(set(B))}
            print(f"{kind:7s} C={C:g} {trn} all={ece(Y, p):.4f}", row, "floors", {b[-5:]: round(ece_floor(p[B == b]), 3) for b in sorted(set(B))} if trn=="cal->test" and kind=="linear" else "")
