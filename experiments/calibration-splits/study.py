import json, sys
import numpy as np
sys.path.insert(0, "benchmarks")
from detector import codec_bucket
from trustframe.detector.api import Calibration
from trustframe.detector.metrics import ece, ece_floor
from trustframe.detector import load

def get(split):
    z = np.load(f"runs/ece/{split}.npz")
    logits = np.r_[z["lr"], z["lf"]]; qp = np.r_[z["qr"], z["qf"]]
    labels = np.r_[np.zeros(len(z["lr"])), np.ones(len(z["lf"]))]
    b = np.array([codec_bucket(t) for t in np.r_[z["codec"], z["codec"]]])
    return z, logits, qp, labels, b

zc, Lc, Qc, Yc, Bc = get("calibration")
zt, Lt, Qt, Yt, Bt = get("test")
shipped = load("tfdet-s").calibration

def report(name, p):
    row = {"all": round(ece(Yt, p), 4)}
    for b in sorted(set(Bt)):
        m = Bt == b
        row[b] = round(ece(Yt[m], p[m]), 4)
    print(f"{name:40s}", json.dumps(row), flush=True)

report("shipped", shipped.prob(Lt, Qt))
refit = Calibration.fit(zc["lr"], zc["lf"], real_qp=zc["qr"], fake_qp=zc["qf"])
report("refit on cal (sanity)", refit.prob(Lt, Qt))
report("floors", np.array(shipped.prob(Lt, Qt)))  # placeholder
p = shipped.prob(Lt, Qt)
print("floors", {b: round(ece_floor(p[Bt == b]), 4) for b in sorted(set(Bt))})
n = len(zt["lr"])
oracle = Calibration.fit(zt["lr"], zt["lf"], real_qp=zt["qr"], fake_qp=zt["qf"])
report("same form, fit on test (in-sample)", oracle.prob(Lt, Qt))
report("no qp (one curve)", shipped.prob(Lt))
# per-bucket isotonic fit on calibration
p = np.zeros_like(Lt)
for b in sorted(set(Bt)):
    mc, mt = Bc == b, Bt == b
    c = Calibration.fit(Lc[mc & (Yc == 0)], Lc[mc & (Yc == 1)])
    p[mt] = c.prob(Lt[mt])
report("per-bucket curve from cal", p)
p = np.zeros_like(Lt)
for b in sorted(set(Bt)):
    mt = Bt == b
    c = Calibration.fit(Lt[mt & (Yt == 0)], Lt[mt & (Yt == 1)])
    p[mt] = c.prob(Lt[mt])
report("per-bucket curve from test (in-sample)", p)
# how many qp read per bucket
for b in sorted(set(Bt)):
    m = Bt == b
    print(b, "n", m.sum(), "qp read", np.isfinite(Qt[m]).mean().round(3))
