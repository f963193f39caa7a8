import numpy as np
import pytest

from trustframe import media
from trustframe.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from trustframe.settings import load_settings
from trustframe.testing import scene


@pytest.mark.parametrize("ext,mime", [("png", "image/png"), ("jpg", "image/jpeg"),
                                      ("webp", "image/webp"), ("mp4", "video/mp4"),
                                      ("mov", "video/quicktime")])
def test_read_back_what_was_written(media_files, ext, mime):
    f = media.read(media_files[ext])
    assert f.media_type == mime
    assert f.data.dtype == np.uint8 and f.data.shape[1:] == (64, 96, 3)
    expected = 16 if mime.startswith("video") else 1
    assert len(f) == expected and f.total == expected
    original = scene(expected)
    err = np.abs(f.data.astype(int) - original.astype(int)).mean()
    assert err < (1 if ext == "png" else 12)  # lossless PNG; lossy codecs stay close


def test_video_is_sampled_evenly(media_files):
    f = media.read(media_files["mp4"], max_frames=4)
    assert list(f.indices) == [0, 5, 10, 15] and f.total == 16
    assert f.fps == pytest.approx(24.0)


def test_pyav_path_reads_what_decord_does(media_files):
    s = load_settings()
    info = media.probe(media_files["mp4"], s)
    a = media._read_video_av(media_files["mp4"], info, None, s)
    b = media._read_video_decord(media_files["mp4"], info, None)
    assert a.data.shape == b.data.shape
    assert np.abs(a.data.astype(int) - b.data.astype(int)).mean() < 2


def test_odd_dimensions_are_padded_for_yuv420(tmp_path):
    p = media.write(media.Frames(scene(4, 33, 47), fps=10), tmp_path / "odd.mp4")
    assert media.probe(p).width == 48 and media.probe(p).height == 34


def test_probe_reports_declared_properties(media_files):
    info = media.probe(media_files["mp4"])
    assert (info.width, info.height, info.frames, info.codec) == (96, 64, 16, "h264")
    assert info.duration_s == pytest.approx(16 / 24, abs=0.05)


@pytest.mark.parametrize("limit,value", [("max_width", 95), ("max_height", 63), ("max_frames", 15),
                                         ("max_duration_s", 0.5), ("max_file_bytes", 100),
                                         ("max_pixels", 96 * 64 - 1)])
def test_limits_refuse_before_decoding(media_files, monkeypatch, limit, value):
    monkeypatch.setenv(f"TRUSTFRAME_{limit.upper()}", str(value))
    s = load_settings()
    decoded = []
    monkeypatch.setattr(media, "_read_video_av", lambda *a: decoded.append(1))
    monkeypatch.setattr(media, "_read_video_decord", lambda *a: decoded.append(1))
    with pytest.raises(MediaTooLarge, match="exceeds the limit"):
        media.read(media_files["mp4"], settings=s)
    assert decoded == []


def test_sniff_uses_content_not_name(tmp_path, media_files):
    disguised = tmp_path / "photo.mp4"
    disguised.write_bytes(media_files["png"].read_bytes())
    assert media.sniff(disguised) == "image/png"
    text = tmp_path / "notes.png"
    text.write_text("hello, not an image")
    with pytest.raises(UnsupportedMedia):
        media.sniff(text)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(CorruptMedia, match="empty"):
        media.sniff(empty)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous content")
    with pytest.raises(ValueError):
        media.write(np.zeros((2, 8, 8, 4), np.uint8), target)  # 4 channels: rejected
    with pytest.raises(RuntimeError), media.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_frames_validates_layout():
    with pytest.raises(ValueError, match="uint8"):
        media.Frames(np.zeros((2, 8, 8, 3), np.float32))
    assert media.Frames(np.zeros((8, 8, 3), np.uint8)).data.shape == (1, 8, 8, 3)


def test_an_h264_files_quantiser_is_read_and_follows_its_crf(tmp_path):
    qps = []
    for crf in (18, 28, 40):
        p = media.encode_video(scene(10), tmp_path / f"{crf}.mp4", fps=12, crf=crf) or tmp_path / f"{crf}.mp4"
        qps.append(media.read(p, quantiser=True).meta["h264_qp"])
        assert media.h264_qp(p) == qps[-1] and "h264_qp" not in media.read(p).meta  # only when asked
    assert 15 < qps[0] < qps[1] < qps[2] <= 51, qps
    # other codecs carry no H.264 quantiser: nothing is read, nothing is guessed
    media.encode_video(scene(6), tmp_path / "hevc.mp4", fps=12, crf=28, codec="libx265")
    png = media.write(media.Frames(scene(1)), tmp_path / "still.png")
    for p in (tmp_path / "hevc.mp4", png):
        assert "h264_qp" not in media.read(p, quantiser=True).meta and media.h264_qp(p) is None
    assert media.h264_qp(tmp_path / "missing.mp4") is None


def test_hevc_and_h264_encode(tmp_path):
    for codec in ("libx264", "libx265"):
        p = tmp_path / f"{codec}.mp4"
        media.encode_video(scene(6), p, fps=12, crf=28, codec=codec)
        assert len(media.read(p)) == 6
