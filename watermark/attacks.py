"""Attacks on frames, shared by training and benchmarks.

Every attack takes frames as a float tensor (T, 3, H, W) in [0, 1] (T is time for a clip, or a
batch of unrelated images) and returns the attacked frames. Attacks that keep the shape and are
not differentiable (real JPEG through Pillow, real H.264/H.265 through PyAV, rounding) pass the
gradient straight through: `x + (f(x) - x).detach()`. Geometric attacks are differentiable
(interpolation). `ATTACKS` names the benchmark's list; `random_attack` is the training sampler.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from trustframe.watermark.nets import blur, gaussian_kernel


def straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward value `y`, gradient of the identity with respect to `x`."""
    return x + (y - x).detach()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float [0, 1] -> (T, H, W, 3) uint8."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def from_uint8(a: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255


def quantize(x: torch.Tensor) -> torch.Tensor:
    return straight_through(x, (x.clamp(0, 1) * 255).round() / 255)


# ---- compression -------------------------------------------------------------------------------

def jpeg(x: torch.Tensor, quality: int = 50) -> torch.Tensor:
    """Real JPEG (Pillow, 4:2:0) of every frame at `quality`."""
    out = []
    for frame in to_uint8(x):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=int(quality))
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return straight_through(x, from_uint8(np.stack(out)))


def video_codec(x: torch.Tensor, crf: int = 28, codec: str = "libx264", fps: int = 25,
                preset: str = "medium") -> torch.Tensor:
    """Real H.264 / H.265 (PyAV, yuv420p, constant quality `crf`) of the frames as one clip."""
    frames = to_uint8(x)
    t, h, w, _ = frames.shape  # encode_video pads odd sides; the crop below removes the padding
    container = "mp4"
    if codec == "libx265":
        # Matroska: the MP4 muxer refuses some x265 packets ("not yet implemented"). Frames
        # smaller than x265's 64-px coding tree unit are edge-padded: the x265 in the PyAV 18.1
        # wheel aborted the process (corrupted heap) on some 48 x 48 clips at CRF 30, veryfast.
        container = "matroska"
        frames = np.pad(frames, ((0, 0), (0, max(0, 64 - h)), (0, max(0, 64 - w)), (0, 0)), mode="edge")
    dec = _encode_decode(frames, crf, codec, fps, preset, container)
    return straight_through(x, from_uint8(dec[:t, :h, :w]))


def _encode_decode(frames: np.ndarray, crf: int, codec: str, fps: int, preset: str,
                   container: str) -> np.ndarray:
    import av

    from trustframe.media import encode_video

    buf = io.BytesIO()
    encode_video(frames, buf, fps=fps, crf=crf, codec=codec, container=container, preset=preset, threads=1)
    buf.seek(0)
    with av.open(buf) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def h264(x: torch.Tensor, crf: int = 28) -> torch.Tensor:
    return video_codec(x, crf, "libx264")


def h265(x: torch.Tensor, crf: int = 28) -> torch.Tensor:
    return video_codec(x, crf, "libx265")


# ---- geometry ----------------------------------------------------------------------------------

def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Rescale both sides by `scale` (antialiased when shrinking)."""
    h, w = x.shape[-2:]
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)


def crop(x: torch.Tensor, area: float = 0.8, resize_back: bool = False,
         rng: random.Random | None = None) -> torch.Tensor:
    """Keep a window of `area` of the frame (same aspect ratio) at a random (seeded) position."""
    rng = rng or random.Random(0)
    h, w = x.shape[-2:]
    ch, cw = max(8, round(h * math.sqrt(area))), max(8, round(w * math.sqrt(area)))
    top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
    out = x[..., top: top + ch, left: left + cw]
    if resize_back:
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out


def rotate(x: torch.Tensor, degrees: float = 5.0) -> torch.Tensor:
    """Rotate about the centre, same canvas size, edges filled by reflection."""
    a = math.radians(degrees)
    h, w = x.shape[-2:]
    theta = x.new_tensor([[math.cos(a), -math.sin(a) * h / w, 0],
                          [math.sin(a) * w / h, math.cos(a), 0]])
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


# ---- signal ------------------------------------------------------------------------------------

def gaussian_blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    return blur(x, gaussian_kernel(sigma), border="replicate")


def noise(x: torch.Tensor, sigma: float = 0.02, seed: int = 0) -> torch.Tensor:
    """Additive Gaussian noise, `sigma` in [0, 1] units (0.02 = 5/255)."""
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)


def brightness(x: torch.Tensor, factor: float = 1.3) -> torch.Tensor:
    return (x * factor).clamp(0, 1)


def contrast(x: torch.Tensor, factor: float = 1.3) -> torch.Tensor:
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - m) * factor + m).clamp(0, 1)


def saturation(x: torch.Tensor, factor: float = 1.5) -> torch.Tensor:
    g = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return ((x - g) * factor + g).clamp(0, 1)


def hue(x: torch.Tensor, degrees: float = 20.0) -> torch.Tensor:
    """Rotate the chroma plane of YIQ by `degrees` (luma kept)."""
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    a = math.radians(degrees)
    rot = x.new_tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    m = torch.linalg.inv(to_yiq) @ rot @ to_yiq
    return torch.einsum("ij,njhw->nihw", m, x).clamp(0, 1)


# ---- time --------------------------------------------------------------------------------------

def frame_drop(x: torch.Tensor, keep: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Drop frames at random, keeping a fraction `keep` (at least one)."""
    t = x.shape[0]
    n = max(1, round(t * keep))
    idx = sorted(random.Random(seed).sample(range(t), n))
    return x[idx]


def frame_rate(x: torch.Tensor, ratio: float = 0.6) -> torch.Tensor:
    """Resample time to `ratio` x the frame rate by nearest frame (e.g. 25 -> 15 fps)."""
    t = x.shape[0]
    n = max(1, round(t * ratio))
    return x[np.floor(np.arange(n) / ratio).astype(int).clip(0, t - 1)]


# ---- the benchmark list and the training sampler -----------------------------------------------

def combo(x: torch.Tensor) -> torch.Tensor:
    """Crop to 80% area, resize to 0.75, H.264 CRF 30."""
    return h264(resize(crop(x, 0.8), 0.75), 30)


ATTACKS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "clean": lambda x: x,
    "jpeg50": lambda x: jpeg(x, 50),
    "resize0.5": lambda x: resize(x, 0.5),
    "crop0.8": lambda x: crop(x, 0.8),
    "crop0.8_resized": lambda x: crop(x, 0.8, resize_back=True),
    "h264_crf23": lambda x: h264(x, 23),
    "h264_crf28": lambda x: h264(x, 28),
    "h264_crf35": lambda x: h264(x, 35),
    "h265_crf28": lambda x: h265(x, 28),
    "brightness1.3": lambda x: brightness(x, 1.3),
    "blur1": lambda x: gaussian_blur(x, 1.0),
    "noise0.02": lambda x: noise(x, 0.02),
    "framedrop0.5": lambda x: frame_drop(x, 0.5),
    "rotate5": lambda x: rotate(x, 5.0),
    "hflip": hflip,
    "combo": combo,
}
NOT_TARGETED = ("rotate5", "hflip")  # reported, not part of the robustness target


def random_attack(x: torch.Tensor, pattern: torch.Tensor, rng: random.Random, out_px: int,
                  codec_p: float = 0.35, jpeg_p: float = 0.35,
                  crf: tuple[int, int] = (18, 40)) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The training chain: one random draw for the whole batch.

    x (N, 3, P, P) watermarked frames at the working resolution, pattern (N, 1, P, P) the pattern
    they carry. A crop window at a random scale (0.7x-1.45x: crops arrive magnified, downscales
    shrink) is resized to `out_px` in both (the pattern is the extractor's target, so geometry
    moves it too); then, on the frames only: sometimes a resolution loss (down to 0.4x and back),
    colour jitter, blur, noise; then real H.264/H.265 (CRF drawn from `crf`, default 18-40), real
    JPEG (q30-95) or rounding.
    Returns (frames (N, 3, o, o), pattern (N, 1, o, o), a short description).
    """
    o, p = out_px, x.shape[-1]
    s = rng.uniform(0.7, 1.45)
    c = min(p, round(o / s))
    top, left = rng.randint(0, p - c), rng.randint(0, p - c)

    def move(t):
        t = t[..., top: top + c, left: left + c]
        return F.interpolate(t, size=(o, o), mode="bilinear", align_corners=False, antialias=c > o)

    x, pattern = move(x), move(pattern)
    names = [f"scale{o / c:.2f}"]
    if rng.random() < 0.3:
        u = rng.uniform(0.4, 0.9)
        small = max(8, round(o * u))
        x = F.interpolate(x, size=(small, small), mode="bilinear", align_corners=False, antialias=True)
        x = F.interpolate(x, size=(o, o), mode="bilinear", align_corners=False)
        names.append(f"resize{u:.2f}")
    if rng.random() < 0.4:
        x = brightness(x, rng.uniform(0.7, 1.3))
        x = contrast(x, rng.uniform(0.7, 1.3))
        x = saturation(x, rng.uniform(0.5, 1.5))
        x = hue(x, rng.uniform(-30, 30))
        names.append("colour")
    if rng.random() < 0.15:
        sigma = rng.uniform(0.3, 1.2)
        x = gaussian_blur(x, sigma)
        names.append(f"blur{sigma:.1f}")
    if rng.random() < 0.15:
        sigma = rng.uniform(0.005, 0.03)
        x = noise(x, sigma, seed=rng.randrange(1 << 30))
        names.append(f"noise{sigma:.3f}")
    u = rng.random()
    if u < codec_p:
        codec, q = ("libx265" if rng.random() < 0.3 else "libx264"), rng.randint(*crf)
        x = video_codec(x, q, codec, preset="veryfast")
        names.append(f"{codec}{q}")
    elif u < codec_p + jpeg_p:
        q = rng.randint(30, 95)
        x = jpeg(x, q)
        names.append(f"jpeg{q}")
    else:
        x = quantize(x)
    return x, pattern, "+".join(names)
