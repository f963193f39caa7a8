"""Mutated media files, as an adversary or a broken uploader would make them.

`mutate(data, kind, rng)` returns (name of the mutation, mutated bytes). Mutations: bit flips,
byte deletes and duplicates, truncations, and structure-aware ones: MP4/MOV box sizes and types,
PNG chunk lengths and types, JPEG markers and segment lengths, WebP (RIFF) chunk sizes.
Used by `benchmarks/robustness.py` and by the test suite's short version of it.
"""

from __future__ import annotations

import random
import re
import struct

MP4_BOXES = (
    b"ftyp",
    b"moov",
    b"mvhd",
    b"trak",
    b"tkhd",
    b"mdia",
    b"mdhd",
    b"hdlr",
    b"minf",
    b"stbl",
    b"stsd",
    b"avc1",
    b"avcC",
    b"stts",
    b"stss",
    b"stsc",
    b"stsz",
    b"stco",
    b"mdat",
    b"edts",
    b"elst",
    b"uuid",
    b"udta",
    b"vmhd",
    b"dinf",
    b"dref",
    b"ctts",
    b"sgpd",
    b"sbgp",
)


def _boxes(data: bytes) -> list[int]:
    """Offsets of the 4-byte size field of every box header found by its type."""
    out = []
    for t in MP4_BOXES:
        for m in re.finditer(re.escape(t), data):
            if m.start() >= 4:
                out.append(m.start() - 4)
    return out


def _png_chunks(data: bytes) -> list[int]:
    out, i = [], 8
    while i + 8 <= len(data):
        out.append(i)
        n = struct.unpack(">I", data[i : i + 4])[0]
        i += 12 + n
    return out


def _jpeg_markers(data: bytes) -> list[int]:
    return [m.start() for m in re.finditer(rb"\xff[\xc0-\xfe]", data)]


def _riff_chunks(data: bytes) -> list[int]:
    out, i = [4], 12
    while i + 8 <= len(data):
        out.append(i + 4)
        n = struct.unpack("<I", data[i + 4 : i + 8])[0]
        i += 8 + n + (n & 1)
    return out


def _size_values(rng: random.Random, old: int) -> int:
    return (
        rng.choice(
            [
                0,
                1,
                7,
                8,
                0xFFFFFFFF,
                0x7FFFFFFF,
                max(0, old - rng.randint(1, 64)),
                old + rng.randint(1, 64),
                old * 2,
                rng.randrange(1 << 32),
            ]
        )
        & 0xFFFFFFFF
    )


def _resize_field(data: bytes, o: int, fmt: str, rng: random.Random) -> bytes:
    """`data` with the 4-byte size field at `o` (struct format `fmt`) set to a hostile value."""
    b = bytearray(data)
    b[o : o + 4] = struct.pack(fmt, _size_values(rng, struct.unpack(fmt, data[o : o + 4])[0]))
    return bytes(b)


def structural(data: bytes, kind: str, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    if kind in ("mp4", "mov"):
        offs = _boxes(data)
        if offs:
            o = rng.choice(offs)
            if rng.random() < 0.7:
                return "box-size", _resize_field(data, o, ">I", rng)
            b[o + 4 : o + 8] = rng.choice(MP4_BOXES + (b"\x00\x00\x00\x00", b"free"))
            return "box-type", bytes(b)
    elif kind == "png":
        offs = _png_chunks(data)
        if offs:
            o = rng.choice(offs)
            if rng.random() < 0.7:
                return "chunk-length", _resize_field(data, o, ">I", rng)
            b[o + 4 : o + 8] = rng.choice([b"IHDR", b"IDAT", b"IEND", b"tEXt", b"caBX", b"zzzz"])
            return "chunk-type", bytes(b)
    elif kind in ("jpg", "jpeg"):
        offs = _jpeg_markers(data)
        if offs:
            o = rng.choice(offs)
            if rng.random() < 0.5 and o + 4 <= len(data):
                b[o + 2 : o + 4] = struct.pack(">H", rng.choice([0, 1, 2, 0xFFFF, rng.randrange(1 << 16)]))
                return "segment-length", bytes(b)
            b[o + 1] = rng.choice([0xC0, 0xC4, 0xD8, 0xD9, 0xDA, 0xDB, 0xE1, 0xEB, 0xFE, rng.randrange(256)])
            return "marker", bytes(b)
    elif kind == "webp":
        offs = _riff_chunks(data)
        if offs:
            o = rng.choice(offs)
            if o + 4 <= len(data):
                return "riff-size", _resize_field(data, o, "<I", rng)
    return bitflip(data, rng)


def bitflip(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return "bit-flip", bytes(b)


def mutate(data: bytes, kind: str, rng: random.Random) -> tuple[str, bytes]:
    """One random mutation of `data` (a file of type `kind`: mp4, mov, png, jpg, webp)."""
    n = len(data)
    u = rng.random()
    if u < 0.25:
        return bitflip(data, rng)
    if u < 0.35:
        i = rng.randrange(n)
        return "delete", data[:i] + data[i + rng.randint(1, 256) :]
    if u < 0.45:
        i = rng.randrange(n)
        j = min(n, i + rng.randint(1, 256))
        return "duplicate", data[:j] + data[i:j] + data[j:]
    if u < 0.55:
        return "truncate", data[: rng.randrange(n)]
    return structural(data, kind, rng)
