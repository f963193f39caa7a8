"""Pairs of one split through ps2d-f4 alone (decoder index 4), as detector.data builds them.
python experiments/ps2d-f4/pairs.py WEIGHTS SPLIT N OUT.npz [SOURCE]"""
import sys
from concurrent.futures import ProcessPoolExecutor
import numpy as np, torch
from trustframe.detector.autoencoders import create_autoencoder
from trustframe.detector.data import SAMPLERS, make_pair
from trustframe.training import load_weights

W, SPLIT, N, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
SOURCE = sys.argv[5] if len(sys.argv) > 5 else "footage"


def chunk(args):
    offset, n = args
    torch.set_num_threads(1)
    m = create_autoencoder("ps2d-f4")
    m.load_state_dict(load_weights("detector", W).state_dict)
    m.eval()
    rng = np.random.default_rng([404, offset, len(SOURCE)])
    sampler = SAMPLERS[SOURCE](SPLIT)
    out = {k: [] for k in ("real", "fake", "decoder", "codec", "scale", "qp_real", "qp_fake")}
    for i in range(n):
        r, f, t, q = make_pair(sampler, m, rng)
        for k, v in zip(out, (r, f, 4, t.tag, t.scale, q[0], q[1])):
            out[k].append(v)
    return {k: np.array(v) if k != "real" and k != "fake" else np.stack(v) for k, v in out.items()}


if __name__ == "__main__":
    half = N // 2
    with ProcessPoolExecutor(2) as pool:
        parts = list(pool.map(chunk, [(0, half), (1, N - half)]))
    d = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    d["decoder"] = d["decoder"].astype(np.int64)
    d["scale"] = d["scale"].astype(np.float32)
    np.savez(OUT, **d)
    print(OUT, {k: v.shape for k, v in d.items()})
