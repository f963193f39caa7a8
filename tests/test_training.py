"""Every training script runs unchanged under torchrun (2 processes, gloo) and its ranks stay in sync.

Each run is a few seconds of the real loop on tiny settings; the scripts themselves raise if any
rank's weights differ from rank 0's at the end (`trustframe.training.check_in_sync`).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

RUNS = {
    "watermark": ("trustframe.watermark.train", ["--pool", "8", "--batch", "2", "--patch", "64",
                                                 "--out-px", "48", "--keys", "2", "--minutes", "0.1"],
                  "tfwm-base"),
    "vae": ("trustframe.generator.train_vae", ["--minutes", "0.15", "--crop-batch", "2", "--width", "8"],
            "tfvae-f8c16"),
    "dit": ("trustframe.generator.train_dit", ["--clips", "16", "--captions-per-clip", "1", "--batch", "2",
                                               "--minutes", "0.1"], "tfdit-s"),
    "dit-finetune": ("trustframe.generator.train_dit",
                     ["--clips", "16", "--captions-per-clip", "1", "--batch", "2", "--minutes", "0.1",
                      "--init-from", "tfdit-s", "--fg-weight", "4", "--attr-weight", "0.2", "--t-mean", "1",
                      "--pair-weight", "0.5", "--pairs", "4", "--pair-batch", "2", "--patch-px", "8"],
                     "tfdit-s"),
    "vae-decoder-finetune": ("trustframe.generator.train_vae",
                             ["--minutes", "0.15", "--crop-batch", "2", "--init-from", "tfvae-f4c8",
                              "--decoder-only", "--fg-weight", "4", "--edge-weight", "8",
                              "--grow-decoder", "1", "--name", "ft"],
                             "ft"),
}


@pytest.mark.parametrize("which", list(RUNS))
def test_trainer_runs_under_torchrun(tmp_path, which):
    module, args, name = RUNS[which]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", module, *args, "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    # on failure show what the ranks printed (a fatal signal's Python stacks among it), not only the
    # launcher's own traceback at the end
    assert r.returncode == 0, r.stderr[:6000] + "\n...\n" + r.stderr[-1500:]
    assert (tmp_path / name / "state.pt").is_file()
    if which == "dit-finetune":  # the fine-tune keeps what the base's card says of the base's own making
        import json

        import torch

        from trustframe.weights import load_checkpoint

        base = load_checkpoint("generator", "tfdit-s").card
        state = torch.load(tmp_path / name / "state.pt", weights_only=True)
        prior = json.loads(state["prior"])
        assert prior["steps"] == base["steps"]
        assert prior["init_from"] == base["init_from"]
        # --patch-px 8 refined the base's 16-px patches (4 x 4 cells of the f4 VAE) into 2 x 2 cells
        assert base["config"]["patch"] == [1, 4, 4]
        assert state["model"]["dit.x_embed.weight"].shape[1] == 2 * 2 * base["config"]["in_channels"]


def test_a_vae_fine_tune_card_keeps_every_stage_behind_its_weights(tmp_path):
    """The shipped VAE was trained in stages; a decoder fine-tune's card lists them all, then its own."""
    import json

    from trustframe.weights import load_checkpoint

    base_card = load_checkpoint("generator", "tfvae-f4c8").card
    base = base_card["stages"]
    cmd = [sys.executable, "-m", "trustframe.generator.train_vae", *RUNS["vae-decoder-finetune"][1],
           "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    card = json.loads((tmp_path / "ft" / "ft.json").read_text())
    assert card["stages"][:-1] == base
    assert "--decoder-only" in card["stages"][-1]["command"]
    assert card["stages"][-1]["what"].startswith("decoder only")
    assert card["stages"][-1]["what"].endswith("outlines +8, decoder grown by 1 last-level blocks")
    assert card["config"]["refine_blocks"] == base_card["config"].get("refine_blocks", 0) + 1
    # the encoder is frozen, so the latent statistics the DiTs were trained with stay exactly as they were
    assert (card["latent_mean"], card["latent_std"]) == (base_card["latent_mean"], base_card["latent_std"])


def test_vae_loss_weight_marks_object_outlines():
    """Outline pixels get fg + edge weight, object interiors fg only, far background 1."""
    import torch

    from trustframe.generator.train_vae import loss_weight

    x = -torch.ones(1, 3, 1, 32, 32)  # black background
    x[:, :, :, 8:24, 8:24] = 1.0  # a white 16 x 16 square
    w = loss_weight(x, fg_weight=4.0, edge_weight=8.0)[0, 0, 0]
    assert w[16, 16] == 5.0  # interior: 1 + fg
    assert w[8, 16] == 13.0 and w[7, 16] == 13.0  # outline, both sides: 1 + fg + edge
    assert w[6, 16] == 5.0  # dilated fg band, off the outline
    assert w[0, 0] == 1.0
    assert torch.equal(loss_weight(x, 4.0, 0.0), 1 + 4.0 * (w > 1).float()[None, None, None])


def test_a_grown_decoder_starts_as_exactly_its_base():
    """New last-level blocks begin as the identity: the grown VAE decodes bit for bit as its base, and
    weights that fit neither the base nor the grown shape are refused."""
    import torch

    from trustframe.errors import ConfigError
    from trustframe.generator.train_vae import grown_vae, heldout_clips
    from trustframe.generator.vae import VAEConfig
    from trustframe.weights import load_checkpoint

    ck = load_checkpoint("generator", "tfvae-f4c8")
    cfg = VAEConfig.from_dict(ck.card["config"])
    base, grown = grown_vae(cfg, ck.state_dict, 0), grown_vae(cfg, ck.state_dict, 2)
    assert len(grown.decoder.blocks) == len(base.decoder.blocks) + 2
    clip = heldout_clips(1)[0][None, :, :9]
    with torch.no_grad():
        z = base.encode(clip)
        assert torch.equal(base.decode(z), grown.decode(z))
    other = {k: v for k, v in ck.state_dict.items() if not k.startswith("decoder.conv_in.")}
    with pytest.raises(ConfigError, match="decoder.conv_in"):
        grown_vae(cfg, other, 1)


@pytest.mark.parametrize("init_from", [True, False])
def test_a_watermark_fine_tune_starts_from_the_shipped_networks(tmp_path, init_from):
    """--init-from loads the preset's MaskNet and RevealNet (a zero-minute run saves them untouched);
    without it the networks start from scratch."""
    import torch

    from trustframe.weights import load_checkpoint

    args = ["--minutes", "0", "--pool", "2", "--keys", "1", "--out", str(tmp_path)]
    if init_from:
        args += ["--init-from", "tfwm-base"]
    cmd = [sys.executable, "-m", "trustframe.watermark.train", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    saved = torch.load(tmp_path / "tfwm-base" / "state.pt", weights_only=True)["model"]
    shipped = load_checkpoint("watermark", "tfwm-base").state_dict
    same = [torch.equal(saved[k], shipped[k].float()) for k in saved]
    assert len(saved) == len(shipped) - 1  # all but the frequency ring
    assert all(same) if init_from else not any(same)


def test_a_watermark_card_lists_every_run_behind_its_weights():
    from trustframe.watermark.train import stages_behind

    run = {"command": "python -m trustframe.watermark.train --init-from tfwm-base", "steps": 5,
           "train_minutes": 1.0, "processes": 1}
    assert stages_behind({}, run) == [run]
    one_run = {"training": {"command": "first", "steps": 10, "train_minutes": 2.0, "processes": 1, "log": []}}
    first = {"command": "first", "steps": 10, "train_minutes": 2.0, "processes": 1}
    assert stages_behind(one_run, run) == [first, run]
    staged = {"training": {**one_run["training"], "stages": [first, run]}}
    assert stages_behind(staged, run) == [first, run, run]


def test_a_run_refuses_to_resume_another_runs_checkpoint(tmp_path):
    """Reusing an older run's --name must stop with the file named, not a state_dict traceback, and
    leave that run's checkpoint as it was; the run's own checkpoint resumes."""
    import torch

    from trustframe.training import resume_state

    assert resume_state(tmp_path / "none" / "state.pt", {}) is None
    small, big = torch.nn.Linear(2, 2), torch.nn.Linear(3, 3)
    opt = torch.optim.AdamW(small.parameters())
    path = tmp_path / "state.pt"
    torch.save({"model": small.state_dict(), "opt": opt.state_dict(), "step": 7}, path)
    before = path.read_bytes()
    with pytest.raises(SystemExit, match="state.pt is the checkpoint of another run"):
        resume_state(path, {"model": big, "opt": torch.optim.AdamW(big.parameters())})
    assert path.read_bytes() == before
    again = torch.nn.Linear(2, 2)
    st = resume_state(path, {"model": again, "opt": torch.optim.AdamW(again.parameters())})
    assert st["step"] == 7 and torch.equal(again.weight, small.weight)


@pytest.mark.parametrize(("objects_p", "expected"), [
    ("0.4,0.3,0.3", {"shape": 20, "count": 20, "bind": 20}),
    ("1,0,0", {"shape": 60}),  # one object per shot: nothing to remove or swap, every pair changes a shape
])
def test_counterfactual_pairs_take_the_kinds_in_equal_shares(objects_p, expected):
    """A spec that cannot make the kind in turn is redrawn, so the scarce kinds (bind needs two
    groups in a shot) are not crowded out by shape; the next kind only when no draw admits it."""
    from collections import Counter

    import numpy as np

    from trustframe.generator.train_dit import TrainConfig, pair_specs

    cfg = TrainConfig(pairs=60, objects_p=objects_p)
    specs = pair_specs(cfg, np.random.default_rng(0))
    assert Counter(kind for _, _, kind in specs) == expected
    assert all(a.to_dict() != b.to_dict() for a, b, _ in specs)


def test_a_flag_that_defaults_on_can_be_turned_off():
    """Every bool field is `--x` / `--no-x`: a default of True (bf16 on a CPU with bf16 in hardware)
    must not be a setting the command line cannot undo, and the command records what was asked."""
    from dataclasses import dataclass

    from trustframe.training import parse_config

    @dataclass
    class Config:
        fast: bool = True
        export: bool = False
        steps: int = 3

    cfg, command = parse_config(Config, ["--no-fast", "--export"], "m", "d")
    assert (cfg.fast, cfg.export, cfg.steps) == (False, True, 3)
    assert command == "python -m m --no-fast --export"
    assert parse_config(Config, [], "m", "d")[0] == Config()
    with pytest.raises(SystemExit):  # a value after a bool flag is a usage error, not a silent True
        parse_config(Config, ["--fast", "yes"], "m", "d")


def test_bf16_autocast_is_on_by_default_only_where_the_cpu_does_bf16_in_hardware(monkeypatch):
    import torch

    from trustframe.generator.train_dit import TrainConfig

    for avx512_bf16, amx, expected in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert TrainConfig().bf16 is expected
