"""Train one of the autoencoders whose decoders make the detector's fakes (`autoencoders.TRAINED_HERE`).

    python -m trustframe.detector.train_autoencoder --recipe sd2d-f8 [--export]   # a shipped one, its stages
    python -m trustframe.detector.train_autoencoder --name tconv2d-f8 --minutes 25

Two kinds of stage, as latent generators' VAEs are trained (Rombach et al. 2022, Appendix G):
- reconstruction (the default): the whole autoencoder, L1, on 64-px crops of the detector's
  train-split sources (`data.SourceSampler`), AdamW with a cosine schedule;
- adversarial (`--adversarial W`, W > 0): the encoder frozen (so the latents stay what the
  reconstruction stage made them), the decoder trained with L1 + W x a hinge PatchGAN loss
  against a critic learnt beside it (`autoencoders.PatchDiscriminator`), the loss balanced by
  the two gradients' norms at the decoder's last layer (`balance`; SD's VAE uses W = 0.5).
  An L1 decoder returns a blurred average; a decoder with a critic invents plausible fine
  texture instead, as Stable Diffusion's (hence AnimateDiff's) does, and that texture is what a
  detector meets in the field.

Resumable (runs/<name>/state.pt; the critic is kept in it too). The run ends by writing
runs/<name>/<name>.{safetensors,json}, its card with PSNR on held-out sources at the sizes the
data command decodes at; `--export` copies them to detector/weights/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trustframe.detector.autoencoders import (
    TRAINED_HERE,
    PatchDiscriminator,
    create_autoencoder,
    decoder_of,
    psnr,
)
from trustframe.detector.data import FRAMES, SourceSampler, training_clips
from trustframe.training import (
    Run,
    RunConfig,
    cosine_lr,
    init_process,
    load_weights,
    parse_config,
    set_lr,
)

HELDOUT_PX = (64, 128, 192)  # the sizes the data command decodes most of its sources at


@dataclass
class TrainConfig(RunConfig):
    name: str = "sd2d-f8"  # one of autoencoders.TRAINED_HERE (its architecture), the run and the preset
    minutes: float = 25.0
    batch: int = 16
    px: int = 64
    lr: float = 2e-3
    adversarial: float = 0.0  # weight of the PatchGAN loss; > 0 trains the decoder only
    critic_lr: float = 2e-4
    ckpt_minutes: float = 5.0


def training_frames(name: str) -> int:
    """Frames per training clip: a 4x temporal VAE needs its period after the first frame; a 2D one
    sees each frame alone, so two do."""
    return FRAMES if name.startswith("causal3d") else 2


@torch.no_grad()
def heldout_psnr(model: torch.nn.Module, frames: int, clips: int = 6) -> dict[str, float]:
    """PSNR (dB) on test-split sources, the same clips every time, at each of HELDOUT_PX."""
    sampler = SourceSampler("test")
    out = {}
    for px in HELDOUT_PX:
        vals = []
        for k in range(clips):
            c = sampler(np.random.default_rng(k), px, frames)
            x = torch.from_numpy(c).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]
            vals.append(psnr(model(x), x))
        out[str(px)] = round(float(np.mean(vals)), 2)
    return out


def balance(rec: torch.Tensor, gen: torch.Tensor, last: torch.Tensor) -> float:
    """The adaptive weight of taming transformers / Stable Diffusion's VAE: the ratio of the two losses'
    gradient norms at the decoder's last layer, so the critic's pull is as strong as the
    reconstruction's whatever their scales (then times `--adversarial`)."""
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0].norm()
    g_gen = torch.autograd.grad(gen, last, retain_graph=True)[0].norm()
    return float((g_rec / (g_gen + 1e-4)).clamp(0, 1e4))


def main(argv: list[str] | None = None) -> dict | None:
    from trustframe.recipes import cli, wants_recipe

    if wants_recipe(argv):
        return cli("detector", argv)
    cfg, command = parse_config(TrainConfig, argv, "trustframe.detector.train_autoencoder",
                                __doc__.split("\n\n")[0])
    if cfg.name not in TRAINED_HERE:
        raise SystemExit(f"--name must be one of {', '.join(TRAINED_HERE)} (it names the architecture), "
                         f"got {cfg.name!r}")
    if cfg.adversarial < 0:
        raise SystemExit(f"--adversarial must be >= 0, got {cfg.adversarial}")
    _, world, rng = init_process(cfg.seed, cfg.threads)
    if world > 1:
        raise SystemExit("the autoencoders train in one process each (run the three side by side)")
    frames = training_frames(cfg.name)
    draw = training_clips(SourceSampler("train"), px=cfg.px, frames=frames)

    model = create_autoencoder(cfg.name)
    if cfg.init_from:
        model.load_state_dict(load_weights("detector", cfg.init_from).state_dict)
    adversarial = cfg.adversarial > 0
    critic = PatchDiscriminator() if adversarial else None
    if adversarial:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in decoder_of(model).parameters():
            p.requires_grad_(True)
        # as in the GAN literature: Adam with a short memory, so the decoder follows a moving critic
        opt = torch.optim.Adam(decoder_of(model).parameters(), lr=cfg.lr, betas=(0.5, 0.9))
        opt_critic = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr, betas=(0.5, 0.9))
        state = {"model": model, "critic": critic, "opt": opt, "opt_critic": opt_critic}
        last = [p for p in decoder_of(model).parameters() if p.dim() >= 4][-1]  # the output conv's weight
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
        state = {"model": model, "opt": opt}
    run = Run(cfg, world)
    run.resume(state)
    print(f"{cfg.name}: {'adversarial' if adversarial else 'reconstruction'} stage from step {run.step}",
          flush=True)
    model.train()
    totals: dict[str, list[float]] = {}
    while run.running():
        set_lr(opt, cosine_lr(cfg.lr, run.step, run.frac, warmup=0 if adversarial else 100))
        x = draw(cfg.batch, rng)
        y = model(x)
        l1 = (y - x).abs().mean()
        loss = l1
        logs = {"l1": l1.item()}
        if adversarial:
            real, fake = (v.transpose(1, 2).flatten(0, 1) for v in (x, y))  # frames (N*T, 3, H, W)
            critic_loss = F.relu(1 - critic(real)).mean() + F.relu(1 + critic(fake.detach())).mean()
            opt_critic.zero_grad(set_to_none=True)
            critic_loss.backward()
            opt_critic.step()
            gen = -critic(fake).mean()
            weight = cfg.adversarial * balance(l1, gen, last)
            loss = l1 + weight * gen
            logs.update(critic=critic_loss.item(), gen=gen.item(), weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.step += 1
        for k, v in logs.items():
            totals.setdefault(k, []).append(v)
        if run.step % 50 == 0:
            run.log.append({"step": run.step, "minutes": round(run.elapsed / 60, 2),
                            **{k: round(float(np.mean(v)), 4) for k, v in totals.items()}})
            totals = {}
            print(json.dumps(run.log[-1]), flush=True)
        if run.checkpoint_due():
            run.save(state)
    run.save(state)
    model.eval()
    metrics = {"psnr_db_heldout_by_px": heldout_psnr(model, frames)}
    print(f"{cfg.name}: {run.step} steps, held-out PSNR {metrics['psnr_db_heldout_by_px']}", flush=True)
    card = {
        "name": cfg.name,
        "kind": "autoencoder",
        "use": "makes the detector's aligned fakes (python -m trustframe.detector.data)",
        "data": "crops of the detector's train-split sources (detector.data.SourceSampler('train'))",
    }
    return run.finish("detector", model.state_dict(), card, command, metrics)

if __name__ == "__main__":
    main()
