"""Shared fixtures: a private data directory per test and small media made on the fly."""

from __future__ import annotations

import sys

import pytest

from trustframe import media
from trustframe.settings import load_settings
from trustframe.testing import scene


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh TRUSTFRAME_HOME with the local key chain; returns its Settings."""
    from trustframe.provenance.keys import init_keys

    d = tmp_path / "home"
    monkeypatch.setenv("TRUSTFRAME_HOME", str(d))
    s = load_settings()
    init_keys(s)
    return s


@pytest.fixture
def spool(tmp_path, monkeypatch):
    """A private `tempfile.tempdir`, so that a test can check the product left no temporary file.

    Process-wide caches that libraries make once under the temp dir are made first, where they
    would be anyway: torch's compile cache (`torchinductor_<user>`, created when timm's import of
    torchvision imports torch._dynamo) and multiprocessing's folder. They are not ours to clean.
    """
    import multiprocessing.util
    import tempfile

    import torch._dynamo  # noqa: F401

    multiprocessing.util.get_temp_dir()
    d = tmp_path / "spool"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.fixture
def media_files(tmp_path):
    """Unsigned sample files: png, jpg, webp (images) and mp4, mov (16-frame H.264 clips)."""
    d = tmp_path / "media"
    files = {}
    for ext in ("png", "jpg", "webp"):
        files[ext] = media.write(scene(1), d / f"sample.{ext}")
    for ext in ("mp4", "mov"):
        files[ext] = media.write(media.Frames(scene(16), fps=24.0), d / f"sample.{ext}")
    return files


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run the real console entry point; returns (exit code, stdout, stderr)."""
    from trustframe.cli import main

    def run(*args: str):
        monkeypatch.setattr(sys, "argv", ["trustframe", *args])
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
