"""Watermark: payload code, statistics, attacks, embed -> detect through real files, bad input."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.stats import binom, kstest

from trustframe import media
from trustframe.errors import ConfigError, UnsupportedMedia
from trustframe.media import Frames
from trustframe.watermark import ALG, attacks, detect, embed, stats
from trustframe.watermark import payload as codec

KEY = bytes(range(32))
N_BITS = 128


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from trustframe.watermark.data import heldout_photos

    return heldout_photos()["coffee"]  # (400, 600, 3)


@pytest.fixture(scope="module")
def clip(photo) -> np.ndarray:
    """16 frames panning over the photo, 256x384."""
    return np.stack([photo[2 * i: 2 * i + 256, 3 * i: 3 * i + 384] for i in range(16)])


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data dir with fresh keys, so key=None uses the local watermark key.

    The watermark key is then pinned to KEY: robustness margins depend on the key's layout,
    and the tests must be deterministic."""
    from trustframe.provenance.keys import WATERMARK_KEY, init_keys, watermark_key
    from trustframe.settings import load_settings

    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "home"))
    settings = load_settings()
    init_keys(settings)
    (settings.keys_dir / WATERMARK_KEY).write_text(KEY.hex())
    assert watermark_key(settings) == KEY
    return tmp_path


# ---- payload code ------------------------------------------------------------------------------

def test_payload_encodes_and_decodes_exactly():
    bits = codec.encode("0123456789ab", KEY, N_BITS)
    assert bits.shape == (N_BITS,) and set(np.unique(bits)) <= {0, 1}
    dec = codec.decode(bits.astype(float) * 2 - 1, KEY)
    assert dec.ecc_ok and dec.payload == "0123456789ab" and dec.corrected == 0
    assert dec.sync_matches == dec.sync_total == N_BITS - 48 - codec.parity_bits()


@pytest.mark.parametrize("n_errors", [1, 3, 5])
def test_bch_corrects_up_to_five_weak_flips(n_errors):
    rng = np.random.default_rng(n_errors)
    for _ in range(20):
        payload = codec.random_payload()
        soft = codec.encode(payload, KEY, N_BITS).astype(float) * 2 - 1
        soft[rng.choice(48 + codec.parity_bits(), n_errors, replace=False)] *= -0.5
        dec = codec.decode(soft, KEY, chase=0)
        assert dec.ecc_ok and dec.payload == payload and dec.corrected == n_errors
        assert dec.soft_distance <= codec.MAX_SOFT_DISTANCE


def test_a_codeword_that_overrules_confident_bits_is_refused():
    """Five flips are within BCH's reach, but when every flipped bit was as confident as the rest,
    the codeword found is more likely another payload than ours: no payload, whatever the Chase depth."""
    rng = np.random.default_rng(5)
    payload = codec.random_payload()
    clean = codec.encode(payload, KEY, N_BITS).astype(float) * 2 - 1
    flips = rng.choice(48 + codec.parity_bits(), 5, replace=False)
    for strength, accepted in ((-0.5, True), (-1.0, False), (-2.0, False)):
        soft = clean.copy()
        soft[flips] *= strength
        for chase in (0, 6):
            dec = codec.decode(soft, KEY, chase=chase)
            assert dec.soft_distance is not None  # the codeword was found either way
            assert (dec.payload == payload) is accepted and dec.ecc_ok is accepted
            assert (dec.soft_distance <= codec.MAX_SOFT_DISTANCE) is accepted
    # the sync bits, and so detection, do not depend on the payload's fate
    assert dec.sync_matches == dec.sync_total


def test_chase_decoding_uses_reliabilities_beyond_t():
    payload = "a1b2c3d4e5f6"
    soft = codec.encode(payload, KEY, N_BITS).astype(float) * 2 - 1
    flips = [0, 7, 20, 33, 50, 61, 70]  # 7 errors > t = 5, flagged as unreliable
    soft[flips] *= -0.1
    assert not codec.decode(soft, KEY, chase=0).ecc_ok
    assert codec.decode(soft, KEY, chase=6).payload == payload


def test_scrambling_depends_on_the_key():
    a = codec.encode("000000000000", KEY, N_BITS)
    b = codec.encode("000000000000", bytes(32), N_BITS)
    assert 0.3 < (a != b).mean() < 0.7  # all-zero payload still looks random
    assert 0.3 < a.mean() < 0.7


@pytest.mark.parametrize("bad", ["zz", "0123456789abc", "0123456789a", "", "01234567 9ab"])
def test_bad_hex_payload_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="hex"):
        codec.parse_hex(bad)


def test_hex_round_trip():
    assert codec.to_hex(codec.parse_hex("DEADbeef0001")) == "deadbeef0001"


# ---- statistics --------------------------------------------------------------------------------

def test_p_values_under_h0_are_uniform():
    """Under H0 the soft bits are symmetric about zero but not identically distributed (content
    makes some bits far more confident than others): the signed-rank p-values of the decoded sync
    agreement are still uniform (KS), and the test's size never exceeds the nominal level."""
    rng = np.random.default_rng(0)
    scale = rng.lognormal(sigma=1.0, size=N_BITS)  # fixed per-bit confidence profile
    pv = np.array([stats.p_value(codec.decode(rng.standard_t(3, size=N_BITS) * scale, KEY,
                                              chase=0).sync_agreement) for _ in range(2000)])
    assert kstest(pv, "uniform").pvalue > 0.01
    for t in (0.5, 0.1, 0.01):
        assert (pv <= t).mean() <= t + 3 * np.sqrt(t * (1 - t) / len(pv))


def test_p_value_is_the_exact_signed_rank_tail():
    """For n = 10 every one of the 2^10 sign patterns is enumerated: the p-value is the exact
    share of patterns whose positive-rank sum reaches the observed one."""
    x = np.array([0.3, -1.2, 2.5, 0.7, -0.1, 1.9, 0.05, -0.6, 3.1, 1.1])
    ranks = np.argsort(np.argsort(np.abs(x))) + 1
    observed = ranks[x > 0].sum()
    signs = (np.arange(2**10)[:, None] >> np.arange(10)) & 1
    exact = ((signs * ranks).sum(1) >= observed).mean()
    assert stats.p_value(x) == pytest.approx(exact, rel=1e-12)


def test_confident_agreement_counts_more_than_marginal():
    """Same signs (38 of 45 agree), different confidence: disagreements on the weakest bits give
    a far smaller p-value than disagreements on the strongest, which a sign count cannot tell."""
    mags = np.linspace(0.1, 4.5, 45)
    weak_wrong, strong_wrong = mags.copy(), mags.copy()
    weak_wrong[:7] *= -1
    strong_wrong[-7:] *= -1
    p_weak, p_strong = stats.p_value(weak_wrong), stats.p_value(strong_wrong)
    assert p_weak < 1e-9 and p_strong > 1e-4
    assert binom.sf(37, 45, 0.5) > 1e-6  # the binomial test on the same 38 matches: not detected


def test_p_value_bad_input():
    assert stats.p_value(np.zeros(45)) == 1.0  # no signal either way
    with pytest.raises(ValueError, match="finite"):
        stats.p_value(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match="1-D"):
        stats.p_value(np.ones((3, 3)))


# ---- attacks -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(attacks.ATTACKS))
def test_every_attack_runs(name):
    x = torch.rand(4, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    y = attacks.ATTACKS[name](x)
    assert y.ndim == 4 and y.shape[1] == 3 and 1 <= y.shape[0] <= 4
    assert float(y.min()) >= 0 and float(y.max()) <= 1 and torch.isfinite(y).all()
    if name in ("clean", "hflip"):
        assert y.shape == x.shape


@pytest.mark.parametrize("fn", [lambda x: attacks.jpeg(x, 40), lambda x: attacks.h264(x, 30),
                                lambda x: attacks.h265(x, 30), attacks.quantize,
                                lambda x: attacks.crop(x, 0.6, resize_back=True),
                                lambda x: attacks.hue(x, 20), lambda x: attacks.rotate(x, 3)])
def test_attacks_pass_gradients(fn):
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    fn(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_real_codecs_change_pixels_more_at_high_crf():
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    err = [float((attacks.h264(x, c) - x).abs().mean()) for c in (18, 40)]
    assert err[0] < err[1]
    assert attacks.frame_drop(x, 0.5).shape[0] == 2 and attacks.frame_rate(x, 0.6).shape[0] == 2


def test_random_attack_chain_is_seeded():
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    pattern = torch.randn(2, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    a, pa, da = attacks.random_attack(x, pattern, random.Random(5), 48, codec_p=0.5)
    b, pb, db = attacks.random_attack(x, pattern, random.Random(5), 48, codec_p=0.5)
    assert da == db and a.shape == (2, 3, 48, 48) and pa.shape == (2, 1, 48, 48)
    assert torch.allclose(a, b) and torch.equal(pa, pb)


def test_random_attack_draws_the_codec_crf_from_its_range():
    x = torch.rand(2, 3, 64, 64)
    pattern = torch.randn(2, 1, 64, 64)
    for seed in range(3):
        _, _, desc = attacks.random_attack(x, pattern, random.Random(seed), 48, 1.0, 0.0, crf=(37, 37))
        assert desc.split("+")[-1] in ("libx26437", "libx26537"), desc


def test_random_attack_moves_the_pattern_with_the_frames():
    """Geometry applies to frames and target alike: a pattern drawn into the frames stays aligned."""
    pattern = torch.randn(4, 1, 96, 96, generator=torch.Generator().manual_seed(4))
    x = (0.5 + 0.1 * pattern).clamp(0, 1).repeat(1, 3, 1, 1)
    for seed in range(4):  # codec_p = jpeg_p = 0: rounding only after the geometry
        xa, pa, desc = attacks.random_attack(x, pattern, random.Random(seed), 64, 0.0, 0.0)
        y = xa.mean(1, keepdim=True) - xa.mean()
        corr = float((y * pa).sum() / (y.norm() * pa.norm()))
        assert corr > 0.5, desc


# ---- embed -> detect ---------------------------------------------------------------------------

def test_embed_detect_image_and_quality(photo):
    res = embed(Frames(photo[None]), "0123456789ab", key=KEY)
    assert res.payload == "0123456789ab" and res.frames.data.shape == (1, *photo.shape)
    mse = np.mean((res.frames.data.astype(float) - photo) ** 2)
    assert 10 * np.log10(255**2 / mse) >= 42.0
    r = detect(res.frames, key=KEY)
    assert r.detected and r.p_value < 1e-6 and r.payload == "0123456789ab" and r.ecc_ok
    assert r.alg == ALG == "org.trustframe.wm.1" and r.frames_used == 1
    d = r.as_dict()
    assert json.loads(json.dumps(d))["payload"] == "0123456789ab"


def test_clean_and_wrong_key_are_not_detected(photo):
    assert not detect(Frames(photo[None]), key=KEY).detected
    marked = embed(Frames(photo[None]), key=KEY).frames
    r = detect(marked, key=bytes(32))
    assert not r.detected and r.payload is None and r.p_value > 1e-3


def test_random_payload_is_hex_and_read_back(clip):
    res = embed(Frames(clip, fps=25), key=KEY)
    assert len(res.payload) == 12 and int(res.payload, 16) >= 0
    r = detect(res.frames, key=KEY)
    assert r.detected and r.payload == res.payload and r.frames_used == 16


@pytest.mark.parametrize("suffix,kw", [(".png", {}), (".jpg", {"quality": 90})])
def test_round_trip_through_image_files(tmp_path, home, photo, suffix, kw):
    res = embed(Frames(photo[None]), "00ff00ff00ff")  # key from the data dir
    path = media.write(res.frames, tmp_path / f"wm{suffix}", **kw)
    r = detect(media.read(path))
    assert r.detected and r.payload == "00ff00ff00ff"


def test_round_trip_through_h264_mp4(tmp_path, home, clip):
    res = embed(Frames(clip, fps=25), "cafe00c0ffee")
    path = media.write(res.frames, tmp_path / "wm.mp4", crf=23)
    back = media.read(path)
    assert len(back) == 16
    r = detect(back)
    assert r.detected and r.payload == "cafe00c0ffee", r


def test_survives_crop_and_flip(clip):
    res = embed(Frames(clip, fps=25), "123456abcdef", key=KEY)
    x = attacks.from_uint8(res.frames.data)
    for attacked in (attacks.crop(x, 0.8), attacks.hflip(x)):
        r = detect(Frames(attacks.to_uint8(attacked), fps=25), key=KEY)
        assert r.detected and r.payload == "123456abcdef"


def test_frames_that_lost_the_mark_do_not_dilute_it(clip):
    """Only the first 2 of 16 frames carry the mark (as after a codec that keeps the pattern in the
    I-frame only), then real H.264: weighting the frame groups by their template agreement gives a
    far stronger detection than the plain mean of all frames, and reads the payload."""
    from trustframe.watermark.extractor import align, group_maps, soft_bits
    from trustframe.watermark.layout import read_bits
    from trustframe.watermark.presets import layout_for, load_preset

    mixed = clip.copy()
    mixed[:2] = embed(Frames(clip[:2]), "0123456789ab", key=KEY).frames.data
    coded = attacks.to_uint8(attacks.h264(attacks.from_uint8(mixed), 30))
    p = load_preset()
    layout = layout_for(KEY, p)
    _, coef = align(group_maps(coded, p.extractor, p.reveal).mean(0), layout, p.extractor)
    plain = stats.p_value(codec.decode(read_bits(layout, coef), KEY).sync_agreement)
    soft, _, _ = soft_bits(coded, layout, p.extractor, p.reveal)
    dec = codec.decode(soft, KEY)
    assert stats.p_value(dec.sync_agreement) < plain / 100
    assert dec.payload == "0123456789ab"


@pytest.mark.parametrize("shape", [(1, 100, 300, 3), (2, 257, 129, 3), (1, 720, 1280, 3)])
def test_any_resolution_and_aspect(photo, shape):
    import cv2

    t, h, w, _ = shape
    img = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    res = embed(Frames(np.stack([img] * t)), "0000000000ff", key=KEY)
    assert res.frames.data.shape == shape and res.frames.data.dtype == np.uint8
    if min(h, w) >= 256:
        assert detect(res.frames, key=KEY).payload == "0000000000ff"


# ---- bad input ---------------------------------------------------------------------------------

def test_bad_input_gives_clear_errors(photo):
    with pytest.raises(UnsupportedMedia, match="uint8"):
        embed(photo[None].astype(np.float32), key=KEY)
    with pytest.raises(UnsupportedMedia, match="empty"):
        detect(Frames(np.zeros((0, 64, 64, 3), np.uint8)), key=KEY)
    with pytest.raises(UnsupportedMedia, match="too small"):
        embed(Frames(np.zeros((1, 8, 8, 3), np.uint8)), key=KEY)
    with pytest.raises(ConfigError, match="hex"):
        embed(Frames(photo[None]), "not-hex", key=KEY)
    with pytest.raises(UnsupportedMedia, match="fpr"):
        detect(Frames(photo[None]), key=KEY, fpr=0)
    with pytest.raises(ConfigError, match="preset"):
        embed(Frames(photo[None]), key=KEY, preset="nope")


def test_missing_keys_raise(tmp_path, monkeypatch, photo):
    from trustframe.errors import KeysMissing

    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path / "empty"))
    with pytest.raises(KeysMissing):
        embed(Frames(photo[None]))


@pytest.mark.slow
def test_import_loads_nothing():
    code = ("import trustframe.watermark as w, sys; from trustframe.watermark import presets; "
            "assert presets.load_preset.cache_info().currsize == 0; "
            "assert 'bchlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- CLI ---------------------------------------------------------------------------------------

def test_cli_embed_and_detect(tmp_path, home, photo):
    from typer.testing import CliRunner

    from trustframe.watermark.cli import app

    src = media.write(Frames(photo[None]), tmp_path / "in.png")
    run = CliRunner().invoke
    r = run(app, ["embed", str(src), "-o", str(tmp_path / "out.png"), "--payload", "abcdef012345"])
    assert r.exit_code == 0 and r.output.strip() == "abcdef012345"
    r = run(app, ["detect", str(tmp_path / "out.png"), "--json"])
    got = json.loads(r.output)
    assert got["detected"] and got["payload"] == "abcdef012345" and got["alg"] == ALG
    r = run(app, ["detect", str(src)])
    assert r.exit_code == 0 and "no watermark" in r.output
    r = run(app, ["embed", str(src), "-o", str(tmp_path / "x.png"), "--payload", "xyz"])
    assert isinstance(r.exception, ConfigError)


@pytest.mark.slow
def test_training_runs_saves_and_resumes(tmp_path):
    """A few steps of the real training loop, then a second run resumes from the checkpoint."""
    from trustframe.watermark import train

    args = ["--pool", "8", "--batch", "2", "--patch", "64", "--out-px", "48", "--keys", "2",
            "--out", str(tmp_path), "--codec-p", "0.5"]
    train.main([*args, "--minutes", "0.05"])
    state = torch.load(tmp_path / "tfwm-base" / "state.pt", weights_only=True)
    first = int(state["step"])
    assert first > 0 and all(torch.isfinite(v).all() for v in state["model"].values())
    train.main([*args, "--minutes", "0.1"])
    again = torch.load(tmp_path / "tfwm-base" / "state.pt", weights_only=True)
    assert int(again["step"]) > first
    assert float(again["elapsed"]) >= 0.1 * 60
