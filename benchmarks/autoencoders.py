"""The shipped autoencoders that make the detector's fakes: how well they reconstruct held-out
footage and how much of its fine detail they put back.

    python benchmarks/autoencoders.py    # -> benchmarks/results/autoencoders.{json,md}

Per autoencoder (`detector/weights/<name>`): PSNR on the test split's sources at the sizes the data
command decodes at (`train_autoencoder.heldout_psnr`, the figure its card holds), and "detail kept":
the median of detail(reconstruction) / detail(source) over 12 test sources at 160 px
(`data.detail`: mean |x - its sigma-1 blur|). A decoder that blurs keeps little; Stable
Diffusion's, trained against a critic, invents texture and keeps about all of it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from trustframe.detector.autoencoders import create_autoencoder, reconstruct
from trustframe.detector.data import FRAMES, SourceSampler, decoder_checkpoints, detail
from trustframe.detector.train_autoencoder import HELDOUT_PX, heldout_psnr, training_frames

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    torch.set_num_threads(2)
    t0 = time.time()
    sources = [SourceSampler("test")(np.random.default_rng(s), 160, FRAMES) for s in range(12)]
    rows = {}
    for name, ck in decoder_checkpoints().items():
        model = create_autoencoder(name)
        model.load_state_dict(ck.state_dict)
        model.eval()
        kept = [detail(reconstruct(model, c)) / detail(c) for c in sources]
        rows[name] = {
            "psnr_db_heldout_by_px": heldout_psnr(model, training_frames(name)),
            "detail_kept": round(float(np.median(kept)), 3),
            "steps": ck.card.get("steps"),
        }
        print(name, rows[name], flush=True)
    res = {"command": "python benchmarks/autoencoders.py", "autoencoders": rows,
           "seconds": round(time.time() - t0)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "autoencoders.json").write_text(json.dumps(res, indent=2) + "\n")
    head = " / ".join(str(px) for px in HELDOUT_PX)
    md = [f"# The detector's autoencoders\n\n`{res['command']}` ({res['seconds']} s)\n",
          f"| autoencoder | PSNR dB at {head} px | detail kept |", "|---|---|---|"]
    md += [f"| {n} | {' / '.join(str(v) for v in r['psnr_db_heldout_by_px'].values())} | {r['detail_kept']} |"
           for n, r in rows.items()]
    (RESULTS / "autoencoders.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
