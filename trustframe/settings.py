"""Settings from one place: defaults < config file < environment < explicit arguments (CLI flags).

The data directory (`~/.trustframe`, or `$TRUSTFRAME_HOME`) holds the keys, the manifest
repository and `config.toml`. Every setting can be given in the file, as `TRUSTFRAME_<NAME>` in
the environment, or as a keyword to `load_settings()`.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

from trustframe.errors import ConfigError


def data_home() -> Path:
    """The data directory: `$TRUSTFRAME_HOME` or `~/.trustframe`."""
    return Path(os.environ.get("TRUSTFRAME_HOME") or Path.home() / ".trustframe").expanduser()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUSTFRAME_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=data_home)

    # Media limits, checked on the container's declared values before any frame is decoded.
    max_file_bytes: int = 2 * 1024**3
    max_width: int = 8192
    max_height: int = 8192
    max_pixels: int = 8192 * 8192
    max_frames: int = 100_000
    max_duration_s: float = 3600.0
    # Frames the audit samples from a video (evenly spaced) for the watermark and detector.
    audit_frames: int = 32
    # Per-file time limit of a batch audit (seconds; 0 = none): a file still running becomes an
    # `error` verdict with code "timeout", and its worker process is replaced.
    audit_timeout_s: float = 300.0
    # The detector preset the audit scores files with.
    detector_preset: str = "tfdet-s"

    # Signing. Default: the local chain made by `trustframe keys init`. Or the user's own PEMs.
    signer_cert: Path | None = None  # PEM chain, signer first
    signer_key: Path | None = None
    signer_alg: str = "es256"
    signer_callback: str | None = None  # "module:function" signing bytes with a key held elsewhere
    tsa_url: str | None = None  # RFC 3161 timestamp authority; None signs fully offline
    trust_anchors: list[Path] = []  # extra PEM bundles trusted besides the local root

    # Generator: the operator-editable usage policy (default: the packaged policy.toml).
    policy_file: Path | None = None

    # HTTP service.
    api_key: SecretStr | None = None  # when set, requests need header `X-API-Key`
    cors_origins: list[str] = []
    upload_max_bytes: int = 512 * 1024**2
    public_url: str | None = None  # advertised as the soft-binding `endpoint`, if set
    # Audits run in this many worker processes (per server process); `audit_queue` more may wait.
    # Past that the server answers 503 with Retry-After rather than queueing without limit.
    audit_workers: int = Field(2, ge=1)
    audit_queue: int = Field(8, ge=0)
    # Requests per minute per client (the API key's holder, else the address) on `/v1/...`; 0 = off.
    rate_limit_per_minute: int = Field(0, ge=0)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, **_):
        toml = TomlConfigSettingsSource(settings_cls, toml_file=data_home() / "config.toml")
        return (init_settings, env_settings, toml)

    @cached_property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @cached_property
    def repository_path(self) -> Path:
        return self.home / "manifests.db"


def load_settings(**overrides) -> Settings:
    """Settings with `overrides` (e.g. CLI flags) on top; `None` values are ignored."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as e:  # pydantic ValidationError, TOML syntax error
        raise ConfigError(f"invalid settings: {e}".splitlines()[0]) from e
