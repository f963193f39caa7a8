"""How much fine detail each trained decoder puts back: detail(reconstruction) / detail(source) on
held-out sources at 160 px (`data.detail`: mean |x - its sigma-1 blur|), L1 stage vs adversarial.

  python experiments/gan-decoders-ab/texture.py L1_DIR ADV_DIR
"""

import sys

import numpy as np
import torch
from safetensors.torch import load_file

from trustframe.detector.autoencoders import TRAINED_HERE, create_autoencoder, reconstruct
from trustframe.detector.data import SourceSampler, detail

torch.set_num_threads(1)
src = [SourceSampler("test")(np.random.default_rng(s), 160, 5) for s in range(12)]
for name in TRAINED_HERE:
    row = []
    for folder in sys.argv[1:3]:
        m = create_autoencoder(name)
        m.load_state_dict(load_file(f"{folder}/{name}.safetensors"))
        row.append(np.median([detail(reconstruct(m.eval(), s)) / detail(s) for s in src]))
    print(name, "L1 %.3f  adversarial %.3f" % tuple(row), flush=True)
