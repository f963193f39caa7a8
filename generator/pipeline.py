"""Text-to-video generation as explicit steps, each testable alone:

    refuse_unsafe -> sample_latents (encodes the text, then samples) -> decode_watermarked
                  -> write_and_sign (encode MP4/PNG, sign C2PA, register the manifest)

`generate()` runs them in order. The only way out of the pipeline is through
`decode_watermarked`, so every frame carries the watermark, and `write_and_sign` so every file
carries a signed manifest whose soft binding equals the embedded payload.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trustframe import media
from trustframe.errors import ConfigError, UnsupportedMedia
from trustframe.settings import Settings, load_settings

DEFAULT_PRESET = "tfdit-s"
# Classifier-free guidance scale unless a caller asks otherwise. Chosen on tfdit-s (40 world
# prompts, `generator.checker`): guidance 1 / 2 / 4 / 7 got the colours right in 0.35 / 0.42 /
# 0.20 / 0.15 of clips and the count in 0.38 / 0.42 / 0.25 / 0.20; above 2 the textured
# backgrounds over-saturate into blobs that read as extra objects.
DEFAULT_GUIDANCE = 2.0
# Weight of contrastive shape guidance (`Generator.sample_batch`): the sampler also pushes away from the
# prompt with its shape words swapped for the other shapes. The denoiser under-uses shape words (a
# swapped shape raises its loss 6 %, a swapped colour 51 %); on tfdit-s, 60 + 60 benchmark prompts, weight
# 0 / 1 / 2 gave all-attributes adherence 0.42 / 0.52 / 0.50 seen and 0.15 / 0.30 / 0.33 held-out.
DEFAULT_SHAPE_GUIDANCE = 2.0
# Sampler time shift written into the DiT card at export (SD3's shift: > 1 spends more of the steps at
# high noise, where layout is decided). On tfdit-s with shape guidance 2, 100 + 100 benchmark prompts,
# shift 1 / 2 / 3 / 5 gave adherence 0.46 / 0.48 / 0.51 / 0.51 seen and 0.37 / 0.36 / 0.38 / 0.38 held-out.
DEFAULT_SHIFT = 3.0
GENERATION_ASSERTION = "org.trustframe.generation"


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    frames: int = 16
    width: int = 64
    height: int = 64
    seed: int = 0
    steps: int = 25
    guidance: float = DEFAULT_GUIDANCE
    shape_guidance: float = DEFAULT_SHAPE_GUIDANCE
    preset: str = DEFAULT_PRESET
    fps: float = 8.0
    # The decode step upsamples (Lanczos) by this factor before watermarking: the model works at
    # 64 px, and a mark spread over 256 px survives re-encoding far better (see the note in README).
    upscale: int = 4

    def __post_init__(self):
        if not isinstance(self.prompt, str):
            raise TypeError("prompt must be a string")
        if not 1 <= self.frames <= 64:
            raise ConfigError(f"frames must be 1..64, got {self.frames}")
        for name, v in (("width", self.width), ("height", self.height)):
            if not 32 <= v <= 256 or v % 8:
                raise ConfigError(f"{name} must be a multiple of 8 in 32..256, got {v}")
        if not 1 <= self.steps <= 200:
            raise ConfigError(f"steps must be 1..200, got {self.steps}")
        if not 0 <= self.guidance <= 20:
            raise ConfigError(f"guidance must be 0..20, got {self.guidance}")
        if not 0 <= self.shape_guidance <= 20:
            raise ConfigError(f"shape_guidance must be 0..20, got {self.shape_guidance}")
        if self.upscale not in (1, 2, 4):
            raise ConfigError(f"upscale must be 1, 2 or 4, got {self.upscale}")

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(self.prompt.encode()).hexdigest()


@dataclass
class GenerationResult:
    path: Path
    manifest_id: str
    payload: str
    prompt_sha256: str
    seconds: dict = field(default_factory=dict)  # per step
    watermark_verified: bool = True  # False: the mark did not read back, so the manifest binds no payload


def refuse_unsafe(req: GenerationRequest) -> None:
    """Raise PolicyRefusal for a prompt the usage policy forbids."""
    from trustframe.generator.policy import enforce

    enforce(req.prompt)


def sample_latents(req: GenerationRequest, progress: Callable[[int, int], None] | None = None):
    """Encode the prompt and run the sampler: latents for `req`."""
    from trustframe.generator.models import load_generator

    g = load_generator(req.preset)
    return g.sample(req.prompt, frames=req.frames, height=req.height, width=req.width,
                    steps=req.steps, guidance=req.guidance, shape_guidance=req.shape_guidance, seed=req.seed,
                    progress=progress)


def decode_watermarked(req: GenerationRequest, latents, payload: str, settings: Settings) -> media.Frames:
    """The decode step: VAE decode, then the invisible watermark carrying `payload`."""
    from trustframe.generator.models import load_generator
    from trustframe.service.protect import embed_watermark

    pixels = load_generator(req.preset).decode(latents)  # (T, H, W, 3) uint8
    if req.upscale > 1:
        from PIL import Image

        size = (req.width * req.upscale, req.height * req.upscale)
        pixels = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.LANCZOS)) for f in pixels])
    frames = media.Frames(pixels, fps=req.fps if req.frames > 1 else 0.0)
    return embed_watermark(frames, payload, settings)


def generation_assertion(req: GenerationRequest) -> dict:
    """What the manifest says of the model and request: card hashes, the prompt's SHA-256, not the prompt."""
    from trustframe.generator.models import load_generator

    g = load_generator(req.preset)
    cards = {Path(p).stem: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in g.card_paths}
    return {"label": GENERATION_ASSERTION, "data": {
        "model": req.preset, "model_card_sha256": cards, "prompt_sha256": req.prompt_sha256,
        "seed": req.seed, "steps": req.steps, "guidance": req.guidance,
        "shape_guidance": req.shape_guidance,
        "frames": req.frames, "width": req.width, "height": req.height, "upscale": req.upscale}}


def generate(prompt: str, output: str | Path, *, settings: Settings | None = None,
             progress: Callable[[int, int], None] | None = None, **options) -> GenerationResult:
    """Run the whole pipeline; returns where the signed file went and what it carries.

    A refused prompt raises PolicyRefusal before anything is computed or written.
    """
    from trustframe import __version__
    from trustframe.provenance.repository import open_repository
    from trustframe.service.protect import write_and_sign
    from trustframe.watermark import ALG

    s = settings or load_settings()
    req = GenerationRequest(prompt, **options)
    output = Path(output)
    want = "image" if req.frames == 1 else "video"
    if media.EXTENSIONS.get(output.suffix.lower(), "").split("/")[0] != want:
        raise UnsupportedMedia(f"{output.name}: {req.frames} frame(s) need a {want} file extension "
                               f"({'.png/.jpg' if want == 'image' else '.mp4/.mov'})")
    t: dict = {}
    t0 = time.perf_counter()
    refuse_unsafe(req)
    t["policy"] = time.perf_counter() - t0
    latents = sample_latents(req, progress)
    t["sample"] = time.perf_counter() - t0 - sum(t.values())
    repo = open_repository(s)
    payload = repo.allocate_payload(ALG)
    frames = decode_watermarked(req, latents, payload, s)
    t["decode_watermark"] = time.perf_counter() - t0 - sum(t.values())
    agent = {"name": f"TrustFrame {req.preset}", "version": __version__}
    signed = write_and_sign(frames, output, payload, source_type="trainedAlgorithmicMedia", settings=s,
                            repository=repo, software_agent=agent,
                            extra_assertions=[generation_assertion(req)])
    t["write_sign_register"] = time.perf_counter() - t0 - sum(t.values())
    return GenerationResult(signed.path, signed.manifest_id, signed.payload, req.prompt_sha256, t,
                            watermark_verified=bool(signed.watermark_verified))
