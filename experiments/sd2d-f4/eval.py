"""tfvae-f4c8 test pairs under each attack, for LODO models.
python experiments/sd2d-f4/eval.py DIR... (each holds lodo-tfvae-f4c8/)"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from detector import ATTACKS, detector_from_checkpoint, framed, row

torch.set_num_threads(2)
split = dict(np.load("runs/tfdet-s/data/test.npz"))
test = {k: v[split["scale"] >= 0.75] for k, v in split.items()}
idx = np.flatnonzero(test["decoder"] == 3)[:150]
for d in sys.argv[1:]:
    p = Path(d) / "lodo-tfvae-f4c8"
    det = detector_from_checkpoint(torch.load(p / "state.pt", weights_only=True)["model"],
                                   json.loads((p / "lodo-tfvae-f4c8.json").read_text()), "lodo")
    clean = {k: framed(test[k][idx], test[f"qp_{k}"][idx]) for k in ("real", "fake")}
    for attack, fn in ATTACKS.items():
        if attack == "clean":
            r, f = clean["real"], clean["fake"]
        else:
            r, f = ([fn(c.data) for c in clean[k]] for k in ("real", "fake"))
        x = row(det, r, f)
        print(d, attack, "AUC", x["auc"], "TPR1%", x["tpr_at_1pct_fpr"], flush=True)
