# ruff: noqa  (an experiment, reverted next: kept as it ran)
"""Calibration variants conditioned on frame features. python experiments/calibration-features/variants.py LOGITS.npz FEAT.npz"""
import sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from trustframe.detector.api import Calibration, _isotonic, QP_CENTER, QP_SCALE
from trustframe.detector.metrics import ece, ece_floor

z, f = np.load(sys.argv[1]), np.load(sys.argv[2])
def split(s):
    l = np.r_[z[f"{s}_logit_real"], z[f"{s}_logit_fake"]]
    q = np.r_[z[f"{s}_qp_real"], z[f"{s}_qp_fake"]]
    y = np.r_[np.zeros(len(z[f"{s}_logit_real"])), np.ones(len(z[f"{s}_logit_fake"]))]
    b = np.r_[z[f"{s}_bucket"], z[f"{s}_bucket"]]
    F = np.r_[f[f"{s}_feat_real"], f[f"{s}_feat_fake"]]
    pair = np.r_[np.arange(len(y) // 2), np.arange(len(y) // 2)]
    return dict(l=l, q=q, y=y, b=b, F=F, pair=pair)

class Current:
    def fit(self, d):
        self.c = Calibration.fit(d["l"][d["y"] == 0], d["l"][d["y"] == 1], real_qp=d["q"][d["y"] == 0], fake_qp=d["q"][d["y"] == 1]); return self
    def prob(self, d): return self.c.prob(d["l"], d["q"])

class Feat:
    """z = LR(design(d)) then isotonic of z; optional QP-aware design for read files."""
    def __init__(self, design, qp=False): self.design, self.qp = design, qp
    def _X(self, d, m):
        return self.design(d["l"][m], d["F"][m], d["q"][m])
    def fit(self, d):
        self.parts = []
        masks = [np.ones(len(d["y"]), bool)] if not self.qp else [~np.isfinite(d["q"]), np.isfinite(d["q"])]
        self.models = []
        for i, m in enumerate(masks):
            des = self.design if not (self.qp and i == 1) else (lambda l, F, q: np.c_[self.design(l, F, q), (q - QP_CENTER) / QP_SCALE, l * (q - QP_CENTER) / QP_SCALE])
            X = des(d["l"][m], d["F"][m], d["q"][m])
            lr = LogisticRegression(C=1e4, max_iter=5000).fit(X, d["y"][m])
            zz = lr.decision_function(X)
            x, yk = _isotonic(zz, d["y"][m])
            self.models.append((des, lr, x, yk))
        return self
    def prob(self, d):
        out = np.zeros(len(d["l"]))
        masks = [np.ones(len(d["l"]), bool)] if not self.qp else [~np.isfinite(d["q"]), np.isfinite(d["q"])]
        for m, (des, lr, x, yk) in zip(masks, self.models):
            if m.any():
                out[m] = np.interp(lr.decision_function(des(d["l"][m], d["F"][m], d["q"][m])), x, yk)
        return out

K = lambda j: (lambda l, F, q: np.c_[l, l * F[:, j]])
KM = lambda j: (lambda l, F, q: np.c_[l, F[:, j], l * F[:, j]])
VARIANTS = {
    "current": lambda: Current(),
    "temp(lap)": lambda: Feat(K(0)),
    "temp(blk)": lambda: Feat(K(1)),
    "temp(grad)": lambda: Feat(K(2)),
    "temp(lap,blk)": lambda: Feat(lambda l, F, q: np.c_[l, l * F[:, 0], l * F[:, 1]]),
    "main+temp(lap)": lambda: Feat(KM(0)),
    "temp(lap) + qp": lambda: Feat(K(0), qp=True),
    "temp(lap,blk) + qp": lambda: Feat(lambda l, F, q: np.c_[l, l * F[:, 0], l * F[:, 1]], qp=True),
}

def sub(d, m): return {k: v[m] for k, v in d.items()}

def report(name, make):
    d = split("calibration")
    fold = np.random.default_rng(0).integers(0, 5, d["pair"].max() + 1)[d["pair"]]
    p_cv = np.zeros(len(d["y"]))
    for k in range(5):
        p_cv[fold == k] = make().fit(sub(d, fold != k)).prob(sub(d, fold == k))
    t = split("test"); pt = make().fit(d).prob(t)
    from sklearn.metrics import roc_auc_score
    cells = []
    for bk in ["all"] + sorted(set(d["b"])):
        m, mt = (d["b"] == d["b"]) if bk == "all" else d["b"] == bk, (t["b"] == t["b"]) if bk == "all" else t["b"] == bk
        cells.append(f"{ece(d['y'][m], p_cv[m]):.3f}/{ece(t['y'][mt], pt[mt]):.3f}")
    print(f"{name:>20} auc {roc_auc_score(t['y'], pt):.4f} | " + " ".join(cells))

print(" " * 20, "cal-cv/test ECE: all", sorted(set(split('calibration')['b'])))
for n, mk in VARIANTS.items():
    report(n, mk)
