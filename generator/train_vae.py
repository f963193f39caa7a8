"""Train the causal video VAE on rendered world clips.

    python -m trustframe.generator.train --recipe tfvae-f4c8 [--export]   # the shipped VAE, stage by stage
    python -m trustframe.generator.train_vae --minutes 25 [--export]      # one run
    torchrun --nproc_per_node 2 -m trustframe.generator.train_vae ...     # same script, DDP over gloo

Clips are rendered on the fly from `trustframe.generator.world` (split="train": held-out (colour,
shape) pairs never appear). Most batches are random spacetime crops (9 frames x 32 x 32) of clips of
every resolution and duration, which is where the compute goes; some are whole 17-frame 64x64 clips,
some single frames (images are one-frame videos). Loss: L1 + MSE + beta * KL, optionally weighted on
object pixels and outlines. `--init-from` starts from other weights (a shipped preset or a run's
.safetensors), `--decoder-only` freezes the encoder (latents a DiT was trained on stay valid), and
`--grow-decoder N` adds N identity-initialised decoder blocks. The run checkpoints to runs/<name>/
and resumes when rerun; it ends by writing runs/<name>/<name>.{safetensors,json} (fp16, as shipped),
which `--export` copies to generator/weights/.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from trustframe.generator.tensors import evaluate_psnr, heldout_clips, object_mask, to_tensor
from trustframe.generator.vae import VAEConfig, VideoVAE, create_vae
from trustframe.training import (
    Run,
    RunConfig,
    check_in_sync,
    cosine_lr,
    export,
    finish_process,
    git_commit,
    init_process,
    load_weights,
    parse_config,
    set_lr,
)


@dataclass
class TrainConfig(RunConfig):
    name: str = "tfvae-f4c8"
    size: str = "vae-f4c8"  # a key of vae.VAE_SIZES (from scratch)
    refine_blocks: int = -1  # from scratch: decoder blocks after its last level (-1 = the size's)
    minutes: float = 25.0  # wall-clock budget; the lr schedule follows elapsed time
    lr: float = 1.5e-3
    crop_batch: int = 8
    crop_frames: int = 9
    crop_size: int = 32
    full_every: int = 4  # every k-th step: 2 whole clips 17 x 64 x 64
    image_every: int = 10  # every k-th step: 12 single frames
    decoder_only: bool = False  # freeze the encoder (latents already used by a DiT stay valid)
    fg_weight: float = 0.0  # extra loss weight on (dilated) object pixels: sharper shapes for the checker
    edge_weight: float = 0.0  # extra loss weight on object outlines (small stars blur to discs)
    grow_decoder: int = 0  # with --init-from: add this many residual blocks at the decoder's last level
    eval_clips: int = 16  # held-out clips of the final PSNR (checkpoints use half)


def loss_weight(x: torch.Tensor, fg_weight: float, edge_weight: float) -> torch.Tensor:
    """Per-pixel loss weight (B, 1, T, H, W) for clips x: 1, plus `fg_weight` on object pixels (dilated
    by 2 px), plus `edge_weight` on pixels within 1 px of an object's outline.

    A small object's outline is a few dozen pixels of a 64 x 64 frame, so a plain mean lets the decoder
    round a 6-px star into a disc at almost no cost; weighting the outline makes shape worth learning.
    """
    fg = object_mask(x)
    w = 1 + fg_weight * F.max_pool3d(fg, (1, 5, 5), stride=1, padding=(0, 2, 2))
    if edge_weight > 0:
        grown = F.max_pool3d(fg, (1, 3, 3), stride=1, padding=(0, 1, 1))
        shrunk = 1 - F.max_pool3d(1 - fg, (1, 3, 3), stride=1, padding=(0, 1, 1))
        w = w + edge_weight * (grown - shrunk)
    return w


def grown_vae(base: VAEConfig, state_dict: dict, grow: int) -> VideoVAE:
    """The VAE `base` with its trained weights and `grow` more decoder blocks at the last level. New
    blocks start as the identity (zero last convolution), so the grown decoder reconstructs exactly
    as its base did and training only has to add to it."""
    from trustframe.errors import ConfigError

    vae = VideoVAE(replace(base, refine_blocks=base.refine_blocks + grow))
    n = len(vae.decoder.blocks)
    for block in list(vae.decoder.blocks)[n - grow:n]:
        nn.init.zeros_(block.conv2.conv.weight)
        nn.init.zeros_(block.conv2.conv.bias)
    fresh = tuple(f"decoder.blocks.{i}." for i in range(n - grow, n))
    missing, unexpected = vae.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=False)
    if unexpected or any(not k.startswith(fresh) for k in missing):
        raise ConfigError(f"weights do not match the VAE config: missing {missing}, unexpected {unexpected}")
    return vae



def main(argv: list[str] | None = None) -> dict | None:
    from trustframe.recipes import cli, wants_recipe

    if wants_recipe(argv):
        return cli("generator", argv)
    cfg, command = parse_config(TrainConfig, argv, "trustframe.generator.train_vae", __doc__.splitlines()[0])
    rank, world_size, rng = init_process(cfg.seed, cfg.threads)
    master = rank == 0

    from trustframe.generator import world

    # --- model: from scratch (a size) or from other weights (a preset or a run's checkpoint) ---
    base = load_weights("generator", cfg.init_from) if cfg.init_from else None
    if base is not None:
        vae = grown_vae(VAEConfig.from_dict(base.card["config"]), base.state_dict, cfg.grow_decoder)
    else:
        vae = create_vae(cfg.size, **({"refine_blocks": cfg.refine_blocks} if cfg.refine_blocks >= 0 else {}))
    trainable = vae.decoder if cfg.decoder_only else vae
    if cfg.decoder_only:
        vae.encoder.requires_grad_(False)
    model = torch.nn.parallel.DistributedDataParallel(trainable) if world_size > 1 else trainable
    opt = torch.optim.AdamW(trainable.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    run = Run(cfg, world_size)
    run.resume({"model": vae, "opt": opt})
    # checkpoints are scored on the first half of the final check's clips (half the time)
    evalset = heldout_clips(max(1, cfg.eval_clips // 2)) if master else []
    n_params = sum(p.numel() for p in vae.parameters())
    if master:
        print(f"{cfg.name}: {n_params / 1e6:.2f}M params, {world_size} process(es)", flush=True)

    # --- data: rendered on the fly ---
    def crop_batch():
        xs = []
        for _ in range(cfg.crop_batch):
            frames = int(rng.choice([9, 13, 17, 25, 33]))
            spec = world.sample_spec(rng, frames=frames, height=None, width=None, split="train",
                                     multi_shot_p=0.3, camera_p=0.3)
            clip = world.render(spec)
            t0 = int(rng.integers(0, clip.shape[0] - cfg.crop_frames + 1))
            y0 = int(rng.integers(0, clip.shape[1] - cfg.crop_size + 1))
            x0 = int(rng.integers(0, clip.shape[2] - cfg.crop_size + 1))
            xs.append(to_tensor(clip[t0:t0 + cfg.crop_frames, y0:y0 + cfg.crop_size, x0:x0 + cfg.crop_size]))
        return torch.stack(xs)  # (B, 3, 9, 32, 32)

    def full_batch():
        return torch.stack([to_tensor(world.render(world.sample_spec(rng, frames=17, split="train",
                                                                     multi_shot_p=0.3, camera_p=0.3)))
                            for _ in range(2)])  # (2, 3, 17, 64, 64)

    def image_batch():
        h, w = world.RESOLUTIONS[int(rng.integers(len(world.RESOLUTIONS)))]
        xs = []
        for _ in range(12):  # one random frame of a clip (a one-frame spec cannot move)
            clip = world.render(world.sample_spec(rng, frames=9, height=h, width=w, split="train"))
            xs.append(to_tensor(clip[int(rng.integers(9)):][:1]))
        return torch.stack(xs)  # (12, 3, 1, H, W)

    # --- training loop ---
    while run.running():
        lr = cosine_lr(cfg.lr, run.step, run.frac, warmup=100, floor=0.05)
        set_lr(opt, lr)
        if run.step % cfg.full_every == cfg.full_every - 1:
            x = full_batch()
        elif run.step % cfg.image_every == cfg.image_every - 1:
            x = image_batch()
        else:
            x = crop_batch()
        if cfg.decoder_only:  # decode the posterior mean, which is what the DiT learns to produce
            with torch.no_grad():
                z = vae.encode(x)
            rec, kl = model(z)[:, :, : x.shape[2], : x.shape[3], : x.shape[4]], torch.zeros(())
        else:
            rec, kl = model(x)
        w = loss_weight(x, cfg.fg_weight, cfg.edge_weight)  # 1 everywhere without either weight: L1 + MSE
        d = rec - x
        loss = (w * (d.abs() + d.pow(2))).mean() / w.mean() + vae.cfg.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        run.step += 1
        if master and run.step % 50 == 0:
            print(f"step {run.step} {run.elapsed / 60:.1f}min lr {lr:.2e} loss {loss.item():.4f} "
                  f"kl {kl.item():.2f}", flush=True)
        if master and run.checkpoint_due():
            run.save({"model": vae, "opt": opt})
            val = evaluate_psnr(vae, evalset)
            run.log.append({"step": run.step, "minutes": round(run.elapsed / 60, 2),
                            "heldout_psnr": round(val, 2)})
            print(f"checkpoint step {run.step}: held-out PSNR ({len(evalset)} clips) {val:.2f} dB",
                  flush=True)

    # --- the end: measure, write the run's weights (fp16, as shipped), export ---
    check_in_sync(vae, rank, world_size)
    result = None
    if master:
        run.save({"model": vae, "opt": opt})
        clips = heldout_clips(cfg.eval_clips)
        val = evaluate_psnr(vae, clips)
        # latent statistics for the diffusion model (per-channel shift/scale), on training clips; a
        # decoder-only fine-tune keeps its base's, which the DiTs trained on that encoder use
        if cfg.decoder_only and base is not None:
            mean, std = base.card["latent_mean"], base.card["latent_std"]
        else:
            with torch.no_grad():
                vae.eval()
                zs = torch.cat([vae.encode(full_batch()) for _ in range(16)])  # (32, C, 5, 16, 16)
                mean = zs.mean(dim=(0, 2, 3, 4)).tolist()
                std = zs.std(dim=(0, 2, 3, 4)).tolist()
        half = {k: v.half() for k, v in vae.state_dict().items()}
        vae.load_state_dict({k: v.float() for k, v in half.items()})
        metrics = {f"heldout_psnr_db_{len(clips)}clips_16x64x64": round(val, 2),
                   "heldout_psnr_db_fp16": round(evaluate_psnr(vae, clips), 2)}
        print(f"final step {run.step}: held-out PSNR ({len(clips)} clips) {val:.2f} dB, fp16 "
              f"{metrics['heldout_psnr_db_fp16']} dB", flush=True)
        card = {"name": cfg.name, "kind": "video-vae", "version": "0.1.0", "config": vae.cfg.to_dict(),
                "latent_mean": mean, "latent_std": std, "parameters": n_params,
                "data": "trustframe.generator.world clips rendered on the fly, split='train' (HELD_OUT "
                        "pairs excluded)",
                "command": command, "train_config": asdict(cfg), "commit": git_commit(),
                "steps": run.step, "train_minutes": round(run.minutes, 1), "processes": world_size,
                "metrics": metrics, "log": run.log, "weights": "fp16"}
        weights = run.write(half, card)
        if cfg.export:
            export("generator", [weights])
        result = run.result([weights], metrics)
    finish_process(world_size)
    return result


if __name__ == "__main__":
    main()
