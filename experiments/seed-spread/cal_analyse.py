# ruff: noqa  (experiment scripts, reverted after their commit)
"""Per-bucket ECE of calibration variants fitted on the calibration split: 5-fold cross-fitted on the
calibration split itself, and on the test split. python experiments/seed-spread/cal_analyse.py runs/cal/shipped.npz"""
import sys

import numpy as np

from trustframe.detector.api import Calibration
from trustframe.detector.metrics import ece, ece_floor

z = np.load(sys.argv[1])
def split(s):
    l = np.r_[z[f"{s}_logit_real"], z[f"{s}_logit_fake"]]
    q = np.r_[z[f"{s}_qp_real"], z[f"{s}_qp_fake"]]
    y = np.r_[np.zeros(len(z[f"{s}_logit_real"])), np.ones(len(z[f"{s}_logit_fake"]))]
    b = np.r_[z[f"{s}_bucket"], z[f"{s}_bucket"]]
    pair = np.r_[np.arange(len(y) // 2), np.arange(len(y) // 2)]
    return l, q, y, b, pair

def fit_current(l, q, y):
    return Calibration.fit(l[y == 0], l[y == 1], real_qp=q[y == 0], fake_qp=q[y == 1])

VARIANTS = {"current (logit, q, logit*q) + isotonic": fit_current}

def report(name, fit):
    l, q, y, b, pair = split("calibration")
    rng = np.random.default_rng(0)
    fold = rng.integers(0, 5, pair.max() + 1)[pair]  # pairs stay together
    p_cv = np.zeros(len(y))
    for k in range(5):
        c = fit(l[fold != k], q[fold != k], y[fold != k])
        p_cv[fold == k] = c.prob(l[fold == k], q[fold == k])
    c = fit(l, q, y)
    lt, qt, yt, bt, _ = split("test")
    pt = c.prob(lt, qt)
    rows = []
    for bk in ["all"] + sorted(set(b)):
        m, mt = (b == b) if bk == "all" else b == bk, (bt == bt) if bk == "all" else bt == bk
        rows.append(f"{bk:>16}: cal-cv {ece(y[m], p_cv[m]):.3f} (floor {ece_floor(p_cv[m]):.3f})  "
                    f"test {ece(yt[mt], pt[mt]):.3f} (floor {ece_floor(pt[mt]):.3f})  n_test {mt.sum()}")
    print(name); print("\n".join(rows))

if __name__ == "__main__":
    for n, f in VARIANTS.items():
        report(n, f)
