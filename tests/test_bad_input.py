"""Bad input: every case gets a clear error or the right validation state, never a crash or a hang,
no temporary file is left behind, and nothing is fetched over the network."""

import contextlib
import socket
import struct
import threading
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trustframe
from trustframe import media
from trustframe.errors import TrustFrameError
from trustframe.provenance.reading import read_provenance
from trustframe.provenance.signing import sign_file


@pytest.fixture(autouse=True)
def no_temporary_file_left(spool):
    """Spool files go to a folder we can check is empty afterwards."""
    yield
    assert list(spool.iterdir()) == [], "a temporary file was left behind"


def _png_chunks(data: bytes):
    i, out = 8, []
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        out.append((data[i + 4:i + 8], i, n))
        i += 12 + n
    return out


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


@pytest.mark.parametrize("name,content,code", [
    ("empty.mp4", b"", "corrupt-media"),
    ("empty.png", b"", "corrupt-media"),
    ("random.mp4", bytes(range(256)) * 40, "unsupported-media"),
    ("random.jpg", b"\x13\x37" * 999, "unsupported-media"),
    ("notes.png", b"just some text\n" * 10, "unsupported-media"),
    ("fake-ftyp.mp4", _box(b"ftyp", b"isom\x00\x00\x02\x00") + b"\xde\xad" * 50, "corrupt-media"),
])
def test_garbage_gets_a_clear_error(home, tmp_path, name, content, code):
    p = tmp_path / name
    p.write_bytes(content)
    v = trustframe.audit(p, settings=home)
    assert v.label == "error" and v.error.code == code and v.error.message.startswith(name)


@pytest.mark.parametrize("ext", ["png", "jpg", "mp4"])
def test_truncated_files(home, media_files, tmp_path, ext):
    signed = sign_file(media_files[ext], tmp_path / f"signed.{ext}", settings=home).path
    data = signed.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) * 2 // 3])
    v = trustframe.audit(cut, settings=home)
    # either the pixels cannot be decoded, or they decode and the credentials no longer verify
    assert v.label in ("error", "tampered"), v
    if v.label == "error":
        assert v.error.code == "corrupt-media"


def test_huge_declared_dimensions_are_refused_before_decoding(home, tmp_path):
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + _chunk(b"IEND", b"")
    p = tmp_path / "bomb.png"
    p.write_bytes(png)
    v = trustframe.audit(p, settings=home)
    assert v.error.code == "media-too-large" and "100000" in v.error.message


def test_deeply_nested_mp4_boxes(home, tmp_path):
    inner = b""
    for _ in range(20_000):
        inner = _box(b"udta", inner)
    p = tmp_path / "nested.mp4"
    p.write_bytes(_box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2") + _box(b"moov", inner))
    assert read_provenance(p, home).present is False  # c2pa refuses the nesting, no crash
    v = trustframe.audit(p, settings=home)
    assert v.label == "error" and v.error.code == "corrupt-media"


def test_manifest_copied_from_another_file_is_tampered(home, media_files, tmp_path):
    signed = sign_file(media_files["png"], tmp_path / "a.png", settings=home).path.read_bytes()
    manifest = next(signed[i:i + 12 + n] for kind, i, n in _png_chunks(signed) if kind == b"caBX")
    other = media.write(media.read(media_files["png"]).data[:, ::-1].copy(), tmp_path / "other.png")
    data = other.read_bytes()
    ihdr_end = 8 + 12 + 13
    forged = tmp_path / "forged.png"
    forged.write_bytes(data[:ihdr_end] + manifest + data[ihdr_end:])
    v = trustframe.audit(forged, settings=home)
    assert v.label == "tampered" and "assertion.dataHash.mismatch" in v.provenance.failures


def test_flipped_signature_byte_is_tampered(home, media_files, tmp_path):
    signed = bytearray(sign_file(media_files["png"], tmp_path / "a.png", settings=home).path.read_bytes())
    kind, i, n = next(c for c in _png_chunks(bytes(signed)) if c[0] == b"caBX")
    signed[i + 8 + n - 5] ^= 0x01  # the COSE signature ends the manifest store
    signed[i + 8 + n:i + 12 + n] = struct.pack(">I", zlib.crc32(signed[i + 4:i + 8 + n]))  # keep PNG valid
    p = tmp_path / "flipped.png"
    p.write_bytes(bytes(signed))
    v = trustframe.audit(p, settings=home)
    assert v.label == "tampered" and "claimSignature.mismatch" in v.provenance.failures


def test_altered_pixels_in_signed_mp4_is_tampered(home, media_files, tmp_path):
    data = bytearray(sign_file(media_files["mp4"], tmp_path / "a.mp4", settings=home).path.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 200] ^= 0xFF
    p = tmp_path / "altered.mp4"
    p.write_bytes(bytes(data))
    v = trustframe.audit(p, settings=home)
    assert v.label == "tampered" and "assertion.bmffHash.mismatch" in v.provenance.failures


def test_remote_manifest_is_reported_not_fetched(home, media_files, tmp_path):
    """A manifest that lives at a URL: the audit names the URL and never connects to it."""
    import json

    import c2pa

    from trustframe.provenance.manifest import build_manifest, c2pa_context
    from trustframe.provenance.signing import make_signer

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/manifest.c2pa"
    connections = []

    def accept():
        with contextlib.suppress(OSError):  # timeout: nobody connected, as it should be
            connections.append(server.accept())

    out = tmp_path / "remote.jpg"
    m = build_manifest(title="remote", source_type="trainedAlgorithmicMedia")
    with c2pa_context(home) as ctx, c2pa.Builder.from_json(json.dumps(m), context=ctx) as b:
        b.set_no_embed()
        b.set_remote_url(url)
        with open(media_files["jpg"], "rb") as fin, open(out, "w+b") as fout:
            b.sign(make_signer(home), "image/jpeg", fin, fout)
    t = threading.Thread(target=accept)
    t.start()
    v = trustframe.audit(out, settings=home)
    t.join()
    server.close()
    assert connections == []
    assert v.provenance.remote_url == url and v.provenance.state is None
    assert any(url in r and "not fetched" in r for r in v.reasons)


_SEEDS = {}


def _seed_files(tmp_path_factory):
    if not _SEEDS:
        from trustframe.testing import scene

        d = tmp_path_factory.mktemp("seeds")
        _SEEDS["png"] = media.write(scene(1), d / "s.png").read_bytes()
        _SEEDS["jpg"] = media.write(scene(1), d / "s.jpg").read_bytes()
        _SEEDS["mp4"] = media.write(media.Frames(scene(4), fps=8), d / "s.mp4").read_bytes()
    return _SEEDS


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["png", "jpg", "mp4"]), data=st.data())
def test_fuzz_mutated_media_never_crashes(home, tmp_path_factory, kind, data):
    """Mutated real files through the loader and the audit: Frames or a TrustFrameError; always a
    Verdict from audit."""
    seed = bytearray(_seed_files(tmp_path_factory)[kind])
    ops = data.draw(st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)),
                             max_size=8))
    for pos, val in ops:
        seed[pos] = val
    cut = data.draw(st.integers(0, len(seed)))
    blob = bytes(seed[:cut])
    p = tmp_path_factory.mktemp("fuzz") / f"f.{kind}"
    p.write_bytes(blob)
    try:
        f = media.read(p, max_frames=4, settings=home)
        assert f.data.ndim == 4 and len(f) >= 1
    except TrustFrameError:
        pass
    v = trustframe.audit(p, settings=home)
    assert v.label in ("error", "no-evidence", "tampered", "likely-ai-generated", "ai-generated")


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=4096))
def test_fuzz_random_bytes_through_audit(home, blob):
    v = trustframe.audit(blob, settings=home, filename="upload.mp4")
    assert v.label in ("error", "no-evidence")
