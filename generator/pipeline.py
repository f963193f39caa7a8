"""Text-to-video generation as explicit steps, each testable alone, each given the objects it uses:

    refuse_unsafe -> sample_latents (text encoder + DiT + sampler settings: the `Generator`)
                  -> decode_watermarked (the Generator's VAE, then the `Watermarker`)
                  -> write_and_sign (encode MP4/PNG; the Watermarker checks the written file; the
                     `Signer` signs it with C2PA and registers the manifest)

`Pipeline` holds those objects, built once (`Pipeline.load(preset, settings)`, or from objects a
caller made), and `Pipeline.run` takes the steps in order; `generate()` is the one-call form. The
only way out of the pipeline is through `decode_watermarked`, so every frame carries the watermark,
and `write_and_sign`, so every file carries a signed manifest whose soft binding equals the
embedded payload.

`Watermarker`, `Signer` and `write_and_sign` use only the watermark and provenance components, so
`trustframe sign --watermark` (`service/protect.py`) protects a file with the same steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trustframe import media
from trustframe.errors import ConfigError, PromptNotUnderstood, UnsupportedMedia
from trustframe.generator.models import DEFAULT_PRESET, Generator, Latents, load_generator
from trustframe.generator.sampler import SamplerSettings
from trustframe.generator.text import PromptReading
from trustframe.provenance.keys import ensure_keys, watermark_key
from trustframe.provenance.repository import ManifestRepository, open_repository
from trustframe.provenance.signing import SignResult, sign_file
from trustframe.settings import Settings, load_settings

GENERATION_ASSERTION = "org.trustframe.generation"


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. steps, guidance and shape_guidance left None are the model card's
    (`Generator.sampler`)."""

    prompt: str
    frames: int = 16
    width: int = 64
    height: int = 64
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    shape_guidance: float | None = None
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
        if self.steps is not None and not 1 <= self.steps <= 200:
            raise ConfigError(f"steps must be 1..200, got {self.steps}")
        if self.guidance is not None and not 0 <= self.guidance <= 20:
            raise ConfigError(f"guidance must be 0..20, got {self.guidance}")
        if self.shape_guidance is not None and not 0 <= self.shape_guidance <= 20:
            raise ConfigError(f"shape_guidance must be 0..20, got {self.shape_guidance}")
        if self.upscale not in (1, 2, 4):
            raise ConfigError(f"upscale must be 1, 2 or 4, got {self.upscale}")

    @property
    def prompt_sha256(self) -> str:
        return hashlib.sha256(self.prompt.encode()).hexdigest()

    def check_output(self, output: Path) -> None:
        """UnsupportedMedia unless `output`'s extension fits: an image for one frame, else a video."""
        want = "image" if self.frames == 1 else "video"
        if media.EXTENSIONS.get(output.suffix.lower(), "").split("/")[0] != want:
            raise UnsupportedMedia(f"{output.name}: {self.frames} frame(s) need a {want} file extension "
                                   f"({'.png/.jpg' if want == 'image' else '.mp4/.mov'})")


@dataclass
class GenerationResult:
    path: Path
    manifest_id: str
    payload: str
    prompt_sha256: str
    seconds: dict = field(default_factory=dict)  # per step
    watermark_verified: bool = True  # False: the mark did not read back, so the manifest binds no payload
    unknown_words: tuple[str, ...] = ()  # content words of the prompt the text encoder does not know
    warning: str = ""  # one line naming them ('' when every word was understood)


@dataclass(frozen=True)
class Watermarker:
    """The invisible watermark under one key: embeds a payload, and checks that a written file,
    read as an auditor reads it, still carries it."""

    key: bytes
    settings: Settings

    @classmethod
    def from_settings(cls, settings: Settings) -> Watermarker:
        """The data directory's watermark key (created with the local keys on first use)."""
        ensure_keys(settings)
        return cls(watermark_key(settings), settings)

    def embed(self, frames: media.Frames, payload: str) -> media.Frames:
        """`frames` carrying `payload` (hex)."""
        from trustframe.watermark import embed

        return embed(frames, payload=payload, key=self.key).frames

    def reads_back(self, path: Path, payload: str) -> bool:
        """Whether the file at `path` yields the watermark and `payload`.

        A manifest binds a payload only when this holds: a soft binding that cannot be read back
        would promise a recovery that can never happen.
        """
        from trustframe.watermark import detect

        s = self.settings
        r = detect(media.read(path, max_frames=s.audit_frames, settings=s), key=self.key)
        return bool(r.detected and r.payload == payload)


@dataclass(frozen=True)
class Signer:
    """C2PA signing with the data directory's signer, registering each manifest in `repository`
    under its soft binding (so that a stripped copy is resolved through its watermark)."""

    settings: Settings
    repository: ManifestRepository

    @classmethod
    def from_settings(cls, settings: Settings, repository: ManifestRepository | None = None) -> Signer:
        return cls(settings, repository or open_repository(settings))

    def allocate_payload(self) -> str:
        """A fresh watermark payload (hex) that no registered manifest binds yet."""
        from trustframe.watermark import ALG

        return self.repository.allocate_payload(ALG)

    def sign(self, src: Path, dst: Path, *, source_type: str, soft_binding: tuple[str, str] | None,
             **manifest) -> SignResult:
        """`provenance.signing.sign_file` with this signer's settings and repository; `manifest`:
        title, ingredient, software_agent, extra_assertions."""
        return sign_file(src, dst, source_type=source_type, soft_binding=soft_binding,
                         settings=self.settings, repository=self.repository, **manifest)


def write_and_sign(marked: media.Frames, dst: str | Path, payload: str, *, watermarker: Watermarker,
                   signer: Signer, source_type: str, title: str | None = None,
                   ingredient: str | Path | None = None, software_agent: dict | None = None,
                   extra_assertions: list[dict] = ()) -> SignResult:
    """Encode watermarked frames, sign them with the payload as soft binding, register the manifest.

    The payload is bound only if the watermark reads back from the encoded file
    (`Watermarker.reads_back`); otherwise the file is signed without a soft binding and the result
    says `watermark_verified=False`. Nothing appears under `dst` unless every step succeeded; the
    unsigned file is always removed.
    """
    from trustframe.watermark import ALG

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with media.scratch_path(suffix=dst.suffix, dir=dst.parent) as unsigned:
        media.write(marked, unsigned)
        verified = watermarker.reads_back(unsigned, payload)
        r = signer.sign(unsigned, dst, source_type=source_type, title=title or dst.name,
                        ingredient=ingredient, soft_binding=(ALG, payload) if verified else None,
                        software_agent=software_agent, extra_assertions=extra_assertions)
    return dataclasses.replace(r, watermark_verified=verified)


def refuse_unsafe(req: GenerationRequest) -> None:
    """Raise PolicyRefusal for a prompt the usage policy forbids."""
    from trustframe.generator.policy import enforce

    enforce(req.prompt)


def check_understood(req: GenerationRequest, generator: Generator) -> PromptReading:
    """Raise PromptNotUnderstood for a prompt the text encoder cannot read (nothing understood, or more
    than half of the content words unknown: `text.read_prompt`); otherwise what it read, whose
    `warning` names any words it did not understand."""
    reading = generator.read(req.prompt)
    if reading.refuse:
        raise PromptNotUnderstood(f"prompt not understood ({reading.warning}); the generator knows English "
                                  f"and Chinese words for colours, shapes, counts, motion, backgrounds and "
                                  f"camera moves", reading.understood, reading.unknown)
    return reading


def sampler_settings(req: GenerationRequest, generator: Generator) -> SamplerSettings:
    """The settings `req` is sampled with: the generator's card's, with what `req` sets."""
    return generator.sampler.override(steps=req.steps, guidance=req.guidance,
                                      shape_guidance=req.shape_guidance)


def sample_latents(req: GenerationRequest, generator: Generator,
                   progress: Callable[[int, int], None] | None = None) -> Latents:
    """Encode the prompt and run the sampler: latents for `req`."""
    s = sampler_settings(req, generator)
    return generator.sample(req.prompt, frames=req.frames, height=req.height, width=req.width,
                            steps=s.steps, guidance=s.guidance, shape_guidance=s.shape_guidance,
                            shift=s.shift, seed=req.seed, progress=progress)


def decode_watermarked(req: GenerationRequest, latents: Latents, payload: str, generator: Generator,
                       watermarker: Watermarker) -> media.Frames:
    """The decode step: VAE decode, then the invisible watermark carrying `payload`."""
    pixels = generator.decode(latents)  # (T, H, W, 3) uint8
    if req.upscale > 1:
        from PIL import Image

        size = (req.width * req.upscale, req.height * req.upscale)
        pixels = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.LANCZOS)) for f in pixels])
    return watermarker.embed(media.Frames(pixels, fps=req.fps if req.frames > 1 else 0.0), payload)


def generation_assertion(req: GenerationRequest, generator: Generator) -> dict:
    """What the manifest says of the model and request: card hashes, the prompt's SHA-256 (not the
    prompt), and the sampler settings used, enough to sample the clip again."""
    cards = {Path(p).stem: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in generator.card_paths}
    s = sampler_settings(req, generator)
    return {"label": GENERATION_ASSERTION, "data": {
        "model": generator.name, "model_card_sha256": cards, "prompt_sha256": req.prompt_sha256,
        "seed": req.seed, "steps": s.steps, "guidance": s.guidance, "shape_guidance": s.shape_guidance,
        "shift": s.shift, "frames": req.frames, "width": req.width, "height": req.height,
        "upscale": req.upscale}}


@dataclass(frozen=True)
class Pipeline:
    """The objects generation needs: the model (text encoder, DiT, sampler settings, VAE), the
    watermarker and the signer."""

    generator: Generator
    watermarker: Watermarker
    signer: Signer

    @classmethod
    def load(cls, preset: str = DEFAULT_PRESET, settings: Settings | None = None) -> Pipeline:
        """The shipped `preset` with the data directory's watermark key, signer and repository."""
        s = settings or load_settings()
        return cls(load_generator(preset), Watermarker.from_settings(s), Signer.from_settings(s))

    def run(self, req: GenerationRequest, output: str | Path,
            progress: Callable[[int, int], None] | None = None) -> GenerationResult:
        """Every step in order; returns where the signed file went and what it carries."""
        from trustframe import __version__

        output = Path(output)
        req.check_output(output)
        t: dict = {}
        t0 = time.perf_counter()
        refuse_unsafe(req)
        reading = check_understood(req, self.generator)
        t["policy"] = time.perf_counter() - t0
        latents = sample_latents(req, self.generator, progress)
        t["sample"] = time.perf_counter() - t0 - sum(t.values())
        payload = self.signer.allocate_payload()
        frames = decode_watermarked(req, latents, payload, self.generator, self.watermarker)
        t["decode_watermark"] = time.perf_counter() - t0 - sum(t.values())
        agent = {"name": f"TrustFrame {self.generator.name}", "version": __version__}
        signed = write_and_sign(frames, output, payload, watermarker=self.watermarker, signer=self.signer,
                                source_type="trainedAlgorithmicMedia", software_agent=agent,
                                extra_assertions=[generation_assertion(req, self.generator)])
        t["write_sign_register"] = time.perf_counter() - t0 - sum(t.values())
        return GenerationResult(signed.path, signed.manifest_id, signed.payload, req.prompt_sha256, t,
                                watermark_verified=bool(signed.watermark_verified),
                                unknown_words=reading.unknown, warning=reading.warning)


def generate(prompt: str, output: str | Path, *, settings: Settings | None = None,
             progress: Callable[[int, int], None] | None = None, preset: str = DEFAULT_PRESET,
             **options) -> GenerationResult:
    """Generate with the shipped `preset`; `options` are `GenerationRequest`'s fields.

    A refused prompt raises PolicyRefusal before a model is loaded or anything written; a prompt the
    model cannot read raises PromptNotUnderstood before anything is sampled or written, and one it
    partly reads comes back with `unknown_words` and a `warning`.
    """
    req = GenerationRequest(prompt, **options)
    req.check_output(Path(output))
    refuse_unsafe(req)
    check_understood(req, load_generator(preset))  # before keys or the repository are touched
    return Pipeline.load(preset, settings).run(req, output, progress)
