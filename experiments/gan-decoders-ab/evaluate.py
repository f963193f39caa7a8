"""A/B of the decoders that make the fakes: a detector's AUC / TPR at 1 % FPR on the dev pair and on
test pairs made by the L1 decoders and by the adversarially trained ones, clean and after
CRF 28 + resize 0.5 (benchmarks/detector.py's functions).

  python experiments/gan-decoders-ab/evaluate.py WEIGHTS.safetensors|tfdet-s OUT.json [PER_DECODER]
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "benchmarks")
from detector import ATTACKS, DECODERS, framed, row, shared_rows  # noqa: E402

from trustframe.detector.api import load  # noqa: E402

torch.set_num_threads(1)
det = load(sys.argv[1])
per = int(sys.argv[3]) if len(sys.argv) > 3 else 100
res = {"weights": sys.argv[1], "dev": {k: {m: v[m] for m in ("auc", "tpr_at_1pct_fpr") if m in v}
                                       for k, v in shared_rows(det).items()}}
for tag, data in (("L1 decoders", "runs/det8/data"), ("adversarial decoders", "runs/gan9/data")):
    split = dict(np.load(Path(data) / "test.npz"))
    near = split["scale"] >= 0.75
    test = {k: v[near] for k, v in split.items()}
    for k, name in enumerate(DECODERS):
        idx = np.flatnonzero(test["decoder"] == k)[:per]
        clean = {kind: framed(test[kind][idx], test[f"qp_{kind}"][idx]) for kind in ("real", "fake")}
        fn = ATTACKS["CRF 28 + resize 0.5"]
        for attack, (r, f) in (("clean", (clean["real"], clean["fake"])),
                               ("CRF 28 + resize 0.5", ([fn(c.data) for c in clean["real"]],
                                                        [fn(c.data) for c in clean["fake"]]))):
            v = row(det, r, f)
            res[f"{tag} / {name} / {attack}"] = {m: v[m] for m in ("auc", "tpr_at_1pct_fpr") if m in v}
            print(tag, name, attack, res[f"{tag} / {name} / {attack}"], flush=True)
Path(sys.argv[2]).write_text(json.dumps(res, indent=1) + "\n")
print(json.dumps(res["dev"], indent=1))
