"""TrustFrame: was this made by an AI, and can we prove it?

The public Python API. Heavy parts (torch, c2pa) load on first use, not at import.

    >>> import trustframe
    >>> verdict = trustframe.audit("clip.mp4")          # doctest: +SKIP
    >>> verdict.label, verdict.reasons                  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from trustframe.errors import (
    ConfigError,
    CorruptMedia,
    MediaTooLarge,
    PolicyRefusal,
    PromptNotUnderstood,
    TrustFrameError,
    UnsupportedMedia,
)
from trustframe.media import Frames

try:
    __version__ = version("trustframe")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = [
    "ConfigError", "CorruptMedia", "Frames", "MediaTooLarge", "PolicyRefusal", "PromptNotUnderstood",
    "TrustFrameError", "UnsupportedMedia", "Verdict", "__version__", "audit", "audit_many", "generate",
    "sign",
]  # fmt: skip


def audit(source, **kwargs):
    """Audit a path, bytes or binary stream -> `Verdict` (see `trustframe.service.audit`)."""
    from trustframe.service.audit import audit as _audit

    return _audit(source, **kwargs)


def audit_many(sources, **kwargs):
    """Audit many files, yielding one `Verdict` per file as each finishes."""
    from trustframe.service.audit import audit_many as _audit_many

    return _audit_many(sources, **kwargs)


def sign(src, dst, **kwargs):
    """Sign `src` into `dst` with a C2PA manifest (see `trustframe.provenance.sign_file`)."""
    from trustframe.provenance.signing import sign_file

    return sign_file(src, dst, **kwargs)


def generate(prompt, output, **kwargs):
    """Text to a watermarked, C2PA-signed clip (see `trustframe.generator.pipeline.generate`)."""
    from trustframe.generator.pipeline import generate as _generate

    return _generate(prompt, output, **kwargs)


def __getattr__(name):
    if name == "Verdict":
        from trustframe.service.verdict import Verdict

        return Verdict
    raise AttributeError(f"module 'trustframe' has no attribute {name!r}")
