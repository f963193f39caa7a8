"""Media I/O: the one place that reads and writes pixels.

Reading: images with Pillow; video with decord (fast path, MP4/MOV with H.264) and PyAV
(everything else, the fallback when decord fails, and an H.264 file whose quantiser is asked for:
`h264_qp`, which the detector's calibration reads). Every read first *probes* the file's
declared size, dimensions, frame count and duration and refuses it with `MediaTooLarge` before
a frame is decoded. Writing: H.264 MP4 (yuv420p) through PyAV, PNG/JPEG/WebP through Pillow,
always atomically (temp file in the same folder + rename).

Length: probe, read, write and the atomic-file helpers are the one place that touches media
bytes; keeping them together keeps every limit check next to the decoder it guards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from trustframe.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from trustframe.settings import Settings, load_settings

IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif", "image/tiff"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/x-matroska", "video/webm", "video/x-msvideo"}
EXTENSIONS = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".gif": "image/gif", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
    ".mkv": "video/x-matroska", ".webm": "video/webm", ".avi": "video/x-msvideo",
}  # fmt: skip


@dataclass
class Frames:
    """Decoded pixels: `data` is uint8 (T, H, W, 3) RGB; an image is T == 1.

    `fps` is the playback rate (0 for an image); `indices` are the source frame numbers the
    frames came from (a sampled read keeps every k-th frame); `total` is the source's frame count.
    """

    data: np.ndarray
    fps: float = 0.0
    source: str | None = None
    media_type: str | None = None
    indices: np.ndarray | None = None
    total: int | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        d = self.data
        if d.ndim == 3:
            d = self.data = d[None]
        if d.ndim != 4 or d.shape[-1] != 3 or d.dtype != np.uint8:
            raise ValueError(f"Frames.data must be uint8 (T, H, W, 3), got {d.dtype} {d.shape}")
        if self.indices is None:
            self.indices = np.arange(len(d))
        if self.total is None:
            self.total = len(d)

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def height(self) -> int:
        return self.data.shape[1]

    @property
    def width(self) -> int:
        return self.data.shape[2]

    @property
    def is_image(self) -> bool:
        return self.fps == 0 and len(self) == 1

    def replace(self, data: np.ndarray) -> Frames:
        """Same metadata, new pixels (e.g. after watermarking)."""
        return Frames(data, self.fps, self.source, self.media_type, self.indices, self.total,
                      dict(self.meta))


@dataclass(frozen=True)
class MediaInfo:
    media_type: str
    width: int
    height: int
    frames: int  # declared frame count (1 for images; estimated from duration if undeclared)
    fps: float
    duration_s: float
    size_bytes: int
    codec: str | None = None


def expand(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files named by FILE, DIR (recursive, media extensions only) or GLOB arguments, in order.

    A name that matches nothing is yielded as is, so that its audit reports the error.
    """
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if not f.startswith(".") and Path(f).suffix.lower() in EXTENSIONS:
                        yield Path(root) / f
        elif p.exists():
            yield p
        else:
            matches = sorted(glob.glob(str(item), recursive=True))
            if matches:
                yield from (Path(m) for m in matches if Path(m).is_file())
            else:
                yield p


def sniff(path: str | os.PathLike) -> str:
    """MIME type from the file's magic bytes (not its name); `UnsupportedMedia` if unknown."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except IsADirectoryError as e:
        raise UnsupportedMedia(f"{path.name}: is a directory") from e
    except OSError as e:
        raise UnsupportedMedia(f"{path.name}: cannot open: {e.strerror}") from e
    if not head:
        raise CorruptMedia(f"{path.name}: empty file (0 bytes)")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video/quicktime"
    raise UnsupportedMedia(f"{path.name}: not an image or video we can read")


def _check_limits(info: MediaInfo, name: str, s: Settings) -> None:
    checks = [
        (info.size_bytes, s.max_file_bytes, "file size", "bytes"),
        (info.width, s.max_width, "width", "px"),
        (info.height, s.max_height, "height", "px"),
        (info.width * info.height, s.max_pixels, "frame area", "px"),
        (info.frames, s.max_frames, "frame count", "frames"),
        (info.duration_s, s.max_duration_s, "duration", "s"),
    ]
    for value, limit, what, unit in checks:
        if value > limit:
            raise MediaTooLarge(f"{name}: declared {what} {value:g} {unit} exceeds the limit {limit:g}")


def probe(path: str | os.PathLike, settings: Settings | None = None) -> MediaInfo:
    """Read the declared properties without decoding pixels, and enforce the limits."""
    s = settings or load_settings()
    path = Path(path)
    media_type = sniff(path)
    size = path.stat().st_size
    if size > s.max_file_bytes:  # before opening any decoder
        raise MediaTooLarge(f"{path.name}: file size {size} bytes exceeds the limit {s.max_file_bytes}")
    if media_type in IMAGE_TYPES:
        info = _probe_image(path, media_type, size)
    else:
        info = _probe_video(path, media_type, size)
    _check_limits(info, path.name, s)
    return info


def _probe_image(path: Path, media_type: str, size: int) -> MediaInfo:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None  # our own limits apply, with our own message
            with Image.open(path) as im:
                w, h = im.size
                n = getattr(im, "n_frames", 1)
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptMedia(f"{path.name}: cannot read image header: {e}") from e
    return MediaInfo(media_type, w, h, n, 0.0, 0.0, size)


def _open_av(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise CorruptMedia(f"{path.name}: cannot open video container: {e}") from e


def _probe_video(path: Path, media_type: str, size: int) -> MediaInfo:
    with _open_av(path) as c:
        if not c.streams.video:
            raise UnsupportedMedia(f"{path.name}: container has no video stream")
        st = c.streams.video[0]
        cc = st.codec_context
        if cc is None:  # a stream whose codec parameters the demuxer could not make sense of
            raise CorruptMedia(f"{path.name}: video stream has no decodable codec parameters")
        w, h = cc.width, cc.height
        try:
            fps = float(st.average_rate or st.guessed_rate or 0) or 0.0
            if st.duration is not None and st.time_base is not None:
                duration = float(st.duration * st.time_base)
            elif c.duration is not None:
                duration = c.duration / 1_000_000
            else:
                duration = 0.0
            frames = st.frames or round(duration * fps)
        except (ArithmeticError, ValueError, TypeError) as e:  # e.g. a zero or absurd time base
            raise CorruptMedia(f"{path.name}: video stream declares impossible timing: {e}") from e
        codec = cc.name
    if w <= 0 or h <= 0:
        raise CorruptMedia(f"{path.name}: video stream declares no frame size")
    return MediaInfo(media_type, w, h, int(frames), fps, duration, size, codec)


def read(path: str | os.PathLike, max_frames: int | None = None,
         settings: Settings | None = None, info: MediaInfo | None = None, *,
         quantiser: bool = False) -> Frames:
    """Decode an image or video into `Frames`. With `max_frames`, a video is sampled evenly.

    `info` is this file's `probe()` result when the caller already has it (limits already checked).
    With `quantiser`, an H.264 file's `h264_qp` goes into `meta["h264_qp"]` (the detector's
    calibration reads it): such a file is then decoded by PyAV, which exports the quantiser on the
    way (about as fast as decord here), instead of decord.
    Raises `UnsupportedMedia`, `CorruptMedia` or `MediaTooLarge`; never returns empty frames.
    """
    s = settings or load_settings()
    path = Path(path)
    info = info or probe(path, s)
    if info.media_type in IMAGE_TYPES:
        return _read_image(path, info)
    quantiser = quantiser and info.codec == "h264"
    frames = None
    if info.media_type in ("video/mp4", "video/quicktime") and info.codec in ("h264", "hevc") \
            and not quantiser:
        frames = _read_video_decord(path, info, max_frames)
    if frames is None:
        frames = _read_video_av(path, info, max_frames, s, quantiser)
    return frames


def _read_image(path: Path, info: MediaInfo) -> Frames:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            arr = np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptMedia(f"{path.name}: cannot decode image: {e}") from e
    return Frames(arr.copy(), 0.0, str(path), info.media_type)


def _sample(total: int, max_frames: int | None) -> np.ndarray:
    if max_frames is None or total <= max_frames:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, max_frames).round().astype(int))


def _read_video_decord(path: Path, info: MediaInfo, max_frames: int | None) -> Frames | None:
    """decord's fast path; None if decord cannot read this file (PyAV then tries)."""
    try:
        import decord

        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        total = len(vr)
        if total == 0:
            return None
        idx = _sample(total, max_frames)
        data = vr.get_batch(list(idx)).asnumpy()
        fps = float(vr.get_avg_fps())
    except Exception:  # decord raises its own DECORDError and RuntimeErrors; PyAV will report
        return None
    if data.ndim != 4 or data.shape[0] == 0:
        return None
    return Frames(np.ascontiguousarray(data), fps or info.fps, str(path), info.media_type, idx, total)


def _read_video_av(path: Path, info: MediaInfo, max_frames: int | None, s: Settings,
                   quantiser: bool = False) -> Frames:
    import av

    out: list[np.ndarray] = []
    qps: list[float] = []  # the first QP_FRAMES frames' mean QP, with `quantiser`
    count = 0
    keep_every = 1
    if max_frames and info.frames > max_frames:
        keep_every = max(1, info.frames // max_frames)
    try:
        with _open_av(path) as c:
            st = c.streams.video[0]
            if quantiser:  # one decoding thread: with frame threads the QP read varied run to run
                st.codec_context.options = {"export_side_data": "venc_params"}
                st.codec_context.thread_count = 1
            else:
                st.thread_type = "AUTO"
            for frame in c.decode(st):
                if frame.width * frame.height > s.max_pixels or frame.width > s.max_width \
                        or frame.height > s.max_height:
                    raise MediaTooLarge(f"{path.name}: a frame is {frame.width}x{frame.height}, "
                                        "over the limits")
                if quantiser and len(qps) < QP_FRAMES:
                    qps += _frame_qp(frame)
                if count % keep_every == 0 and (not max_frames or len(out) < max_frames):
                    out.append(frame.to_ndarray(format="rgb24"))
                count += 1
                if count > s.max_frames:
                    raise MediaTooLarge(f"{path.name}: more than {s.max_frames} frames")
    except av.error.FFmpegError as e:
        if not out:
            raise CorruptMedia(f"{path.name}: cannot decode video: {e}") from e
        # a truncated file: keep the frames that decoded, and say so
    if not out:
        raise CorruptMedia(f"{path.name}: no decodable video frames")
    shapes = {a.shape for a in out}
    if len(shapes) > 1:  # resolution changes mid-stream: keep the first resolution
        out = [a for a in out if a.shape == out[0].shape]
    idx = np.arange(0, count, keep_every)[: len(out)]
    meta = {"h264_qp": float(np.median(qps))} if qps else {}
    return Frames(np.stack(out), info.fps, str(path), info.media_type, idx, count, meta)


QP_FRAMES = 8  # an H.264 file's quantiser is the median over this many first frames


def h264_qp(source, max_frames: int = QP_FRAMES) -> float | None:
    """How hard an H.264 stream was quantised: the median over its first `max_frames` frames of
    each frame's mean macroblock QP (libavcodec exports them as `venc_params` side data). 0-51;
    CRF 23 gives about 25-30. None when the stream carries no H.264 quantiser (another codec) or
    cannot be decoded. `source` is a path or a seekable binary stream. (`read(..., quantiser=True)`
    gives the same on the way.)"""
    import av

    try:
        _, per_frame = _decode_with_qp(source, max_frames, keep_frames=False)
    except (av.error.FFmpegError, IndexError, ValueError):
        return None
    return float(np.median(per_frame)) if per_frame else None


def decode_h264(source) -> tuple[np.ndarray, float | None]:
    """Every frame of an H.264 stream (uint8 RGB, (T, H, W, 3)) and its quantiser as `h264_qp` reads
    it, from one decode. `source` is a path or a seekable binary stream; decoding errors propagate."""
    frames, per_frame = _decode_with_qp(source, QP_FRAMES, keep_frames=True)
    return np.stack(frames), float(np.median(per_frame)) if per_frame else None


def _decode_with_qp(source, qp_frames: int, keep_frames: bool) -> tuple[list[np.ndarray], list[float]]:
    """Decode `source` with libavcodec's `venc_params` side data exported, on one thread (as in read():
    frame threads made the per-frame QP vary run to run): (its frames as RGB when `keep_frames`, the
    mean QP of each of its first `qp_frames` frames that carry one). Without `keep_frames` it stops
    once it has those."""
    import av

    frames: list[np.ndarray] = []
    per_frame: list[float] = []
    with av.open(source if hasattr(source, "read") else str(source), metadata_errors="ignore") as c:
        st = c.streams.video[0]
        st.codec_context.options = {"export_side_data": "venc_params"}
        st.codec_context.thread_count = 1
        for frame in c.decode(st):
            if len(per_frame) < qp_frames:
                per_frame += _frame_qp(frame)
            if keep_frames:
                frames.append(frame.to_ndarray(format="rgb24"))
            elif len(per_frame) >= qp_frames:
                break
    return frames, per_frame


def _frame_qp(frame) -> list[float]:
    """[the frame's mean macroblock QP], or [] when it carries no H.264 encoding parameters."""
    params = [d for d in frame.side_data if d.type.name == "VIDEO_ENC_PARAMS"]
    return [_mean_qp(params[0])] if params and params[0].nb_blocks else []


def _mean_qp(params) -> float:
    """A frame's mean macroblock QP from its AVVideoEncParams: the frame's `qp` plus the mean of the
    blocks' `delta_qp` (the fifth int32 of each AVVideoBlockParams), read from the side data's bytes.
    (PyAV's `qp_map()` fills an uninitialised array by block position; about once in 800 frames it
    gave a frame mean of 3.8 for a frame that decodes to 23.3 every other time.)"""
    raw = np.frombuffer(bytes(params), np.uint8)
    n, offset, size = params.nb_blocks, params.blocks_offset, params.block_size
    blocks = raw[offset : offset + n * size].reshape(n, size)
    return float(params.qp + blocks[:, 16:20].copy().view(np.int32).mean())


TEMP_PREFIX = ".trustframe-"  # every temporary file we create: "<prefix><pid>-<random>.part<suffix>"


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def sweep_stale(directory: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ours in `directory` whose process is gone (a crash, a kill -9).

    Returns what was removed. A file of a process still running is left alone.
    """
    removed = []
    for p in Path(directory).glob(f"{TEMP_PREFIX}*"):
        pid = p.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _owner_alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def temp_file(suffix: str = "", dir: str | os.PathLike | None = None) -> Path:
    """Create an empty temporary file named as ours (so `sweep_stale` can tell it from others)."""
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".part" + suffix, dir=dir)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds.

    An interrupted or failing write never leaves a partial file under the final name, and the
    temporary file is removed whatever happens; one left by a killed process is swept by the
    next write into the same folder.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(final.parent)
    tmp = temp_file(final.suffix, final.parent)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write(frames: Frames | np.ndarray, path: str | os.PathLike, *, fps: float | None = None,
          crf: int = 18, quality: int = 95) -> Path:
    """Write frames atomically: a video container for `.mp4/.mov/.mkv`, else one image.

    Video is H.264 yuv420p at constant quality `crf` (dimensions padded to even); images use
    Pillow with JPEG/WebP `quality`.
    """
    if isinstance(frames, np.ndarray):
        frames = Frames(frames, fps or 0.0)
    path = Path(path)
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise UnsupportedMedia(f"{path.name}: unknown output extension {path.suffix!r}")
    with atomic_path(path) as tmp:
        if kind in VIDEO_TYPES:
            encode_video(frames.data, tmp, fps=fps or frames.fps or 24.0, crf=crf,
                         container=path.suffix.lower().lstrip("."))
        else:
            if len(frames) != 1:
                raise UnsupportedMedia(f"{path.name}: an image file holds one frame, got {len(frames)}")
            _encode_image(frames.data[0], tmp, kind, quality)
    return path


def _encode_image(rgb: np.ndarray, path: Path, kind: str, quality: int) -> None:
    from PIL import Image

    fmt = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF",
           "image/tiff": "TIFF"}[kind]
    opts = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(rgb).save(path, format=fmt, **opts)


def encode_video(data: np.ndarray, path, *, fps: float = 24.0, crf: int = 18, codec: str = "libx264",
                 container: str = "mp4", preset: str = "medium", threads: int = 2) -> None:
    """Encode uint8 (T, H, W, 3) RGB as `codec` (libx264 / libx265) yuv420p at quality `crf`.

    `path` is a file path or a writable binary stream (e.g. BytesIO, for in-memory codec attacks).
    """
    import av

    t, h, w, _ = data.shape
    ph, pw = h + h % 2, w + w % 2  # yuv420p needs even dimensions
    if (ph, pw) != (h, w):
        data = np.pad(data, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    rate = Fraction(fps).limit_denominator(1001)
    target = path if hasattr(path, "write") else str(path)
    with av.open(target, "w", format="mov" if container == "mov" else container) as c:
        st = c.add_stream(codec, rate=rate)
        st.width, st.height, st.pix_fmt = pw, ph, "yuv420p"
        st.time_base = 1 / rate
        opts = {"crf": str(crf), "preset": preset}
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        st.options = opts
        st.codec_context.thread_count = threads
        for i, frame in enumerate(data):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i, 1 / rate  # explicit timestamps: x265 in MP4 needs them
            for packet in st.encode(vf):
                c.mux(packet)
        for packet in st.encode():
            c.mux(packet)


@contextlib.contextmanager
def scratch_path(suffix: str = "", dir: str | os.PathLike | None = None) -> Iterator[Path]:
    """A fresh temporary file path (created empty), deleted when the block ends, whatever happens.

    Its name ends in `suffix`, so writers that choose the format by extension work on it.
    """
    if dir is not None:
        sweep_stale(dir)
    tmp = temp_file(suffix, dir)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def as_path(source, suffix: str = "") -> Iterator[Path]:
    """A filesystem path for a path, bytes, or binary stream; spooled copies are deleted after."""
    if isinstance(source, str | os.PathLike):
        yield Path(source)
        return
    with scratch_path(suffix) as tmp:
        with open(tmp, "wb") as f:
            if isinstance(source, bytes | bytearray | memoryview):
                f.write(source)
            elif hasattr(source, "read"):
                while chunk := source.read(1 << 20):
                    f.write(chunk)
            else:
                raise TypeError(f"expected a path, bytes or a binary stream, got {type(source).__name__}")
        yield tmp
