"""Pairs of a split through one decoder file (the experiment's), as the data command makes them.
python runs/gan/pairs.py runs/det8/data sd2d-f8-gan SPLIT N SEED OUT.npz"""

import sys
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from trustframe.detector import data as D
from trustframe.detector.autoencoders import create_autoencoder

folder, name, split, n, seed, out = (
    Path(sys.argv[1]),
    sys.argv[2],
    sys.argv[3],
    int(sys.argv[4]),
    int(sys.argv[5]),
    sys.argv[6],
)


def load(_):
    m = create_autoencoder("sd2d-f8")
    m.load_state_dict(load_file(str(folder / f"{name}.safetensors")))
    return [m.eval()]


D.load_decoders = load  # the workers fork after this
d = D.build_split(split, n, folder, seed, 2)
d["decoder"][:] = len(D.DECODERS)  # a fifth decoder
np.savez(out, **d)
print(out, len(d["real"]))
