"""The autoencoders that make the detector's fakes: their two training stages and their bad input."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from trustframe.detector.autoencoders import PatchDiscriminator, create_autoencoder, decoder_of
from trustframe.detector.data import WALLPAPER_PACKAGES, wallpapers_installed
from trustframe.detector.train_autoencoder import balance, main

needs_wallpapers = pytest.mark.skipif(
    not wallpapers_installed(),
    reason=f"needs Debian's wallpapers (apt-get install {WALLPAPER_PACKAGES})",
)


@needs_wallpapers
def test_the_adversarial_stage_trains_the_decoder_alone_and_keeps_its_critic(tmp_path):
    common = ["--out", str(tmp_path), "--px", "32", "--batch", "2", "--threads", "1"]
    first = main(["--name", "sd2d-f8", "--minutes", "0.02", *common])
    start = load_file(first["weights"][0])
    second = main(["--name", "sd2d-f8", "--minutes", "0.03", "--adversarial", "0.5", "--lr", "1e-3",
                   "--init-from", first["weights"][0], "--out", str(tmp_path / "adv"), *common[2:]])
    assert second["steps"] > 0
    end = load_file(second["weights"][0])
    encoder = [k for k in start if k.startswith("encoder.")]
    decoder = [k for k in start if k.startswith("decoder.") and "weight" in k]
    assert encoder and decoder
    assert all(torch.equal(start[k], end[k]) for k in encoder)  # the latents stay the first stage's
    assert all(not torch.equal(start[k], end[k]) for k in decoder)  # every decoder layer learnt
    state = torch.load(tmp_path / "adv" / "sd2d-f8" / "state.pt", weights_only=True)
    assert "critic" in state and "opt_critic" in state  # a resumed run continues the same game
    assert set(second["metrics"]["psnr_db_heldout_by_px"]) == {"64", "128", "192"}


def test_the_balance_equalises_the_two_gradients_at_the_last_layer():
    torch.manual_seed(0)
    ae = create_autoencoder("tconv2d-f8")
    last = [p for p in decoder_of(ae).parameters() if p.dim() >= 4][-1]
    x = torch.rand(1, 3, 1, 16, 16) * 2 - 1
    y = ae(x)
    rec = (y - x).abs().mean()
    gen = -PatchDiscriminator()(y[:, :, 0]).mean()
    w = balance(rec, gen * 1000, last)  # a loss 1000x larger gets a 1000x smaller weight
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0].norm()
    g_gen = torch.autograd.grad(gen * 1000 * w, last)[0].norm()
    assert w > 0 and torch.isclose(g_rec, g_gen, rtol=1e-2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "sd3-f8"], "--name must be one of"),
        (["--adversarial", "-1"], "--adversarial must be >= 0"),
    ],
)
def test_bad_flags_are_refused_before_anything_trains(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        main([*argv, "--out", str(tmp_path), "--minutes", "0.01"])
    assert not any(tmp_path.iterdir())  # nothing written
