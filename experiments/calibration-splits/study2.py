import json, sys
import numpy as np
sys.path.insert(0, "benchmarks")
from detector import codec_bucket
from trustframe.detector.api import _isotonic
from trustframe.detector.metrics import ece, ece_floor
from trustframe.detector import load
from sklearn.linear_model import LogisticRegression

def get(split, footage_only=False):
    z = np.load(f"runs/ece/{split}.npz"); e = np.load(f"runs/ece/{split}-detail.npz")
    n = len(z["lr"]); keep = np.arange(n) < (2400 if footage_only else n)
    k2 = np.r_[keep, keep]
    L = np.r_[z["lr"], z["lf"]][k2]; Q = np.r_[z["qr"], z["qf"]][k2]
    Y = np.r_[np.zeros(n), np.ones(n)][k2]
    B = np.array([codec_bucket(t) for t in np.r_[z["codec"], z["codec"]]])[k2]
    D = np.log(np.r_[e["dr"], e["df"]][k2] + 0.1); K = np.r_[e["br"], e["bf"]][k2]
    return L, Q, Y, B, D, K

cal = get("calibration")
for footage_only in (False, True):
    test = get("test", footage_only)
    L, Q, Y, B, D, K = test
    print("== test", "footage only" if footage_only else "footage + renders", len(L))
    def report(name, p):
        row = {"all": round(ece(Y, p), 4)}
        for b in sorted(set(B)):
            m = B == b
            row[b[:14]] = round(ece(Y[m], p[m]), 4)
        print(f"{name:34s}", json.dumps(row), flush=True)
    shipped = load("tfdet-s").calibration
    report("shipped", shipped.prob(L, Q))
    print(" " * 34, "floors", {b[:14]: round(ece_floor(shipped.prob(L, Q)[B == b]), 4) for b in sorted(set(B))})

    def feats(L, Q, D, K, kind):
        if kind == "detail":
            return np.c_[L, D, L * D]
        if kind == "detail+block":
            return np.c_[L, D, L * D, K, L * K]
    for kind in ("detail", "detail+block"):
        Lc, Qc, Yc, Bc, Dc, Kc = cal
        lr = LogisticRegression(C=1e4, max_iter=5000).fit(feats(Lc, Qc, Dc, Kc, kind), Yc)
        zc = lr.decision_function(feats(Lc, Qc, Dc, Kc, kind))
        x, y = _isotonic(zc, Yc)
        p = np.interp(lr.decision_function(feats(L, Q, D, K, kind)), x, y)
        report(f"{kind} for all", p)
        # qp form where read, detail form elsewhere
        p2 = p.copy(); read = np.isfinite(Q)
        p2[read] = shipped.prob(L[read], Q[read])
        report(f"qp where read, else {kind}", p2)
