"""One exception hierarchy for the whole toolkit.

Each error carries a stable machine-readable `code` (used in the Verdict's `error.code` and in
RFC 9457 problem types), a CLI `exit_code` and an HTTP `status`. The edges (CLI, HTTP) catch
`TrustFrameError`; nothing in the middle swallows it.
"""

from __future__ import annotations


class TrustFrameError(Exception):
    """Base class. `str(err)` is a one-line message safe to show to users."""

    code = "trustframe-error"
    exit_code = 1
    status = 500


class ConfigError(TrustFrameError):
    code = "config-error"
    exit_code = 2
    status = 500


class KeysMissing(ConfigError):
    """No signing keys in the data directory (run `trustframe keys init`)."""

    code = "keys-missing"


class UnsupportedMedia(TrustFrameError):
    """The file is not a media type we read (text, unknown container, ...)."""

    code = "unsupported-media"
    exit_code = 3
    status = 415


class CorruptMedia(TrustFrameError):
    """The file claims a supported type but cannot be decoded (truncated, garbage)."""

    code = "corrupt-media"
    exit_code = 3
    status = 422


class MediaTooLarge(TrustFrameError):
    """Declared size, dimensions, frame count or duration exceed the configured limits."""

    code = "media-too-large"
    exit_code = 3
    status = 413


class SigningError(TrustFrameError):
    code = "signing-failed"
    exit_code = 4
    status = 500


class PolicyRefusal(TrustFrameError):
    """The generator refused a prompt under the usage policy."""

    code = "policy-refusal"
    exit_code = 5
    status = 422

    def __init__(self, message: str, category: str = "", reason: str = ""):
        super().__init__(message)
        self.category = category
        self.reason = reason


class PromptNotUnderstood(TrustFrameError):
    """The generator cannot read the prompt: nothing in it is a word its text encoder knows, or more
    than half of its content words are unknown (`generator.text.read_prompt`)."""

    code = "prompt-not-understood"
    exit_code = 6
    status = 422

    def __init__(self, message: str, understood: tuple[str, ...] = (), unknown: tuple[str, ...] = ()):
        super().__init__(message)
        self.understood = tuple(understood)
        self.unknown = tuple(unknown)


class NotFound(TrustFrameError):
    code = "not-found"
    exit_code = 3
    status = 404
