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
    "vae": ("trustframe.generator.train_vae", ["--minutes", "0.15", "--crop-batch", "2", "--size", "vae-tiny",
                                               "--eval-clips", "2"], "tfvae-f4c8"),
    "dit": ("trustframe.generator.train_dit", ["--clips", "16", "--captions-per-clip", "1", "--batch", "2",
                                               "--minutes", "0.1"], "tfdit-s"),
    "dit-finetune": ("trustframe.generator.train_dit",
                     ["--clips", "16", "--captions-per-clip", "1", "--batch", "2", "--minutes", "0.1",
                      "--init-from", "tfdit-s", "--fg-weight", "4", "--attr-weight", "0.2", "--t-mean", "1",
                      "--pair-weight", "0.5", "--pairs", "4", "--pair-batch", "2"],
                     "tfdit-s"),
    "vae-decoder-finetune": ("trustframe.generator.train_vae",
                             ["--minutes", "0.15", "--crop-batch", "2", "--init-from", "tfvae-f4c8",
                              "--decoder-only", "--fg-weight", "4", "--edge-weight", "8",
                              "--grow-decoder", "1", "--name", "ft", "--eval-clips", "2"],
                             "ft"),
}


@pytest.mark.slow
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
    assert (tmp_path / name / f"{name}.safetensors").is_file()  # the run's weights, as they would ship
    if which == "dit-finetune":  # a fine-tune's run card is flat: this run only, its text encoder beside it
        import json

        card = json.loads((tmp_path / name / f"{name}.json").read_text())
        assert card["train_config"]["init_from"] == "tfdit-s" and "init_from" not in card
        assert card["text_encoder"] == f"{name}-text"
        assert (tmp_path / name / f"{name}-text.safetensors").is_file()
        assert card["config"]["patch"] == [1, 4, 4]


@pytest.mark.slow
def test_a_vae_decoder_fine_tune_grows_the_decoder_and_keeps_the_latent_statistics(tmp_path):
    """A decoder-only fine-tune of the shipped VAE: one more refine block, the encoder (hence the latent
    statistics the DiT was trained with) exactly as shipped; its run card is flat."""
    import json

    from trustframe.weights import load_checkpoint

    base_card = load_checkpoint("generator", "tfvae-f4c8").card
    cmd = [sys.executable, "-m", "trustframe.generator.train_vae", *RUNS["vae-decoder-finetune"][1],
           "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    card = json.loads((tmp_path / "ft" / "ft.json").read_text())
    assert card["config"]["refine_blocks"] == base_card["config"]["refine_blocks"] + 1
    assert (card["latent_mean"], card["latent_std"]) == (base_card["latent_mean"], base_card["latent_std"])
    assert card["train_config"]["decoder_only"] and "stages" not in card and "commands" not in card
    assert card["metrics"]["heldout_psnr_db_fp16"] > 10


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
    from trustframe.generator.tensors import heldout_clips
    from trustframe.generator.train_vae import grown_vae
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


@pytest.mark.slow
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


def test_the_schedule_warms_up_then_follows_the_budget_down_to_its_floor():
    from trustframe.training import cosine_lr

    assert cosine_lr(1.0, 0, 0.0, warmup=10) == 0.1
    assert cosine_lr(1.0, 99, 0.0, warmup=10) == 1.0
    assert cosine_lr(1.0, 99, 0.5, warmup=10, floor=0.1) == pytest.approx(0.55)
    assert cosine_lr(1.0, 99, 1.0, warmup=10, floor=0.05) == pytest.approx(0.05)
    assert cosine_lr(1.0, 99, 2.0, warmup=10) == pytest.approx(0.0)  # past the budget: the floor


def test_a_run_stops_at_its_stop_minute_resumes_and_writes_weights(tmp_path):
    """--stop-at ends a run early while its schedule still follows --minutes; a second Run of the same
    folder resumes the step count and clock; `write` + `load_weights` + `export` round-trip a checkpoint."""
    import json
    import time

    import torch

    from trustframe.training import Run, RunConfig, export, load_weights

    cfg = RunConfig(name="toy", out=str(tmp_path), minutes=1.0, stop_at=0.002)
    net = torch.nn.Linear(2, 2)
    run = Run(cfg)
    assert run.resume({"model": net}) is None
    while run.running():
        run.step += 1
        time.sleep(0.01)
    assert 0.12 <= run.elapsed < 1.0 and run.frac < 0.05  # stopped at 0.12 s of a 60 s budget
    run.log.append({"step": run.step})
    run.save({"model": net})
    again = Run(cfg)
    assert again.resume({"model": torch.nn.Linear(2, 2)}) is not None
    assert again.step == run.step and again.log == run.log and again.elapsed == 0.0 and not again.running()
    path = run.write(net.state_dict(), {"name": "toy", "config": {}})
    ck = load_weights("generator", str(path))
    assert ck.name == "toy" and torch.equal(ck.state_dict["weight"], net.weight.detach())
    out = export("generator", [path], tmp_path / "shipped", [{"name": "toy", "flat": True}])
    assert json.loads(out[0].with_suffix(".json").read_text()) == {"name": "toy", "flat": True}


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

    from trustframe.generator.dit_data import pair_specs
    from trustframe.generator.train_dit import TrainConfig

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
