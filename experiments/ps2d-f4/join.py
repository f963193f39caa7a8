"""runs/f4ps/data = runs/tfdet-s/data with ps2d-f4's train pairs appended."""
from pathlib import Path
import numpy as np
src, dst = Path("runs/tfdet-s/data"), Path("runs/f4ps/data")
dst.mkdir(exist_ok=True)
for f in src.iterdir():
    if not f.name.startswith("train") and not (dst / f.name).exists():
        (dst / f.name).symlink_to(f.resolve())
for name in ("train", "train-world"):
    a, b = dict(np.load(src / f"{name}.npz")), dict(np.load(f"runs/f4ps/{name}-f4.npz"))
    np.savez(dst / f"{name}.npz", **{k: np.concatenate([a[k], b[k]]) for k in a})
    print(name, len(a["real"]), "+", len(b["real"]))
