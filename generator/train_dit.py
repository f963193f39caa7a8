"""Train the text encoder + DiT denoiser (rectified flow) on pre-encoded VAE latents.

    python -m trustframe.generator.train --recipe tfdit-s [--export]   # the shipped DiT, stage by stage
    python -m trustframe.generator.train_dit --minutes 70 [--export]  # one run
    torchrun --nproc_per_node 2 -m trustframe.generator.train_dit ...  # same script, DDP over gloo

Stage 1 (once, cached in runs/<name>/latents.* and pairs.*): the training data of `dit_data`: world
clips (split="train", so the HELD_OUT (colour, shape) pairs never appear) with several captions each,
and counterfactual pairs, encoded with the VAE (posterior mean) and stored by size bucket.
Stage 2: rectified-flow training with logit-normal t (`--t-mean` > 0 trains more at high noise,
where layout and motion are decided), 10% of captions dropped to the empty prompt (classifier-free
guidance), AdamW, EMA of the weights; optional extra loss weight on latent cells that hold objects
(`--fg-weight`), a training-only head that makes the text encoder name every attribute of the
caption (`--attr-weight`, `CaptionAttributes`), and counterfactual pairs (`--pair-weight`): clips
rendered twice, the second time with one shape swapped, one object removed, or one attribute exchanged
between two objects (`dit_data.counterfactual`), whose velocity difference the denoiser must predict
(`sampler.paired_flow_loss`); checkpoints every few minutes in runs/<name>/ (resumable: rerunning
a command continues its run); the run ends by writing the EMA weights (fp16, as shipped) to
runs/<name>/<name>.{safetensors,json} and <name>-text.*, which `--export` copies to generator/weights/.
`--init-from` fine-tunes other weights (a shipped preset or a run's .safetensors; its text encoder is
the one its card names, beside it) instead of starting from scratch. (The text encoder's Chinese rows
are a later stage of the tfdit-s recipe: `train_text`.)
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from trustframe.generator.dit_data import BUCKETS, encode_dataset, encode_pairs, object_shares
from trustframe.generator.sampler import SamplerSettings
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
    native_bf16,
    parse_config,
    set_lr,
    sibling,
)


@dataclass
class TrainConfig(RunConfig):
    name: str = "tfdit-s"  # the DiT's name; its text encoder is <name>-text
    size: str = "dit-s"  # a key of dit.DIT_SIZES (from scratch)
    text_size: str = "text-s"  # a key of text.TEXT_SIZES (from scratch)
    vae: str = "tfvae-f4c8"  # the VAE whose latents the DiT learns (a preset or a run's .safetensors)
    clips: int = 4000
    captions_per_clip: int = 6
    multi_shot_p: float = 0.3
    objects_p: str = ""  # "p1,p2,p3": share of shots with 1 / 2 / 3 objects ("" = the world's own mix)
    minutes: float = 70.0  # wall-clock budget; the lr schedule follows elapsed time
    batch: int = 24
    lr: float = 5e-4
    # bfloat16 autocast, by default only on a CPU that does bf16 in hardware (`training.native_bf16`):
    # there ~4x faster matmuls; emulated elsewhere, where it is far slower than float32
    bf16: bool = field(default_factory=native_bf16)
    warmup: int = 200
    drop_p: float = 0.1  # captions replaced by "" for classifier-free guidance
    ema: float = 0.999
    dim: int = 0  # overrides of the size preset (0 = keep)
    depth: int = 0
    fg_weight: float = 0.0  # extra loss weight on latent cells that hold an object (shape, colour, motion)
    attr_weight: float = 0.0  # weight of the caption-attribute loss on the text encoder (CaptionAttributes)
    t_mean: float = 0.0  # mean of the logit-normal training t (> 0: more steps at high noise)
    pair_weight: float = 0.0  # weight of the counterfactual-pair loss (0 = no pairs)
    pairs: int = 3000  # counterfactual pairs (16 x 64 x 64) rendered and encoded once, in runs/<name>/pairs.*
    pair_batch: int = 8  # pairs per step, on top of `batch`


class CaptionAttributes(nn.Module):
    """Training-only head: from the text encoder's pooled vector, name what the caption says, slot by
    slot (each shot's camera and up to 3 objects' colour / shape / direction, and the cut frame).

    Why: trained only through the denoiser, the text encoder kept the words that change the loss most
    (colours) and let the rest fade: "moving left" and "moving right" came out 1% apart, so the DiT
    could not learn direction from them. Labels come from `captions.parse` of the cached captions.
    """

    SLOTS = 3  # objects per shot
    MAX_CUT = 48  # frames

    def __init__(self, dim: int):
        super().__init__()
        from trustframe.generator import world

        # (not speed: captions leave it out a fifth of the time, and parse() cannot tell)
        self.tables = {"colour": list(world.COLOURS), "shape": list(world.SHAPES),
                       "direction": list(world.DIRECTIONS)}
        self.cameras = list(world.CAMERAS)
        sizes = []
        for _shot in range(2):
            sizes.append(len(self.cameras) + 2)  # camera, none, no such shot
            for _slot in range(self.SLOTS):
                sizes += [len(v) + 1 for v in self.tables.values()]  # + absent
        sizes.append(self.MAX_CUT + 1)  # cut frame, 0 = no cut
        self.sizes = sizes
        self.head = nn.Linear(dim, sum(sizes))

    def labels(self, prompt: str) -> list[int]:
        """Class index per slot (-100 everywhere when the caption does not parse)."""
        from trustframe.generator.captions import parse

        spec = parse(prompt) if prompt else None
        if spec is None:
            return [-100] * len(self.sizes)
        out = []
        for i in range(2):
            shot = spec.shots[i] if i < len(spec.shots) else None
            out.append(len(self.cameras) + 1 if shot is None else
                       self.cameras.index(shot.camera) if shot.camera else len(self.cameras))
            objs = shot.objects if shot is not None else []
            for j in range(self.SLOTS):
                for attr, names in self.tables.items():
                    out.append(names.index(getattr(objs[j], attr)) if j < len(objs) else len(names))
        out.append(min(spec.cut_at or 0, self.MAX_CUT))
        return out

    def loss(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """pooled (N, D), labels (N, slots) -> mean cross-entropy over the labelled slots."""
        logits = self.head(pooled.float()).split(self.sizes, dim=1)
        parts = [F.cross_entropy(lg, labels[:, k], ignore_index=-100, reduction="sum")
                 for k, lg in enumerate(logits)]
        return torch.stack(parts).sum() / (labels != -100).sum().clamp(min=1)


class TextToVelocity(nn.Module):
    """The jointly trained pair: prompt tokens -> text encoder -> DiT velocity (and the pooled text)."""

    def __init__(self, text: nn.Module, dit: nn.Module, attributes: nn.Module | None = None):
        super().__init__()
        self.text, self.dit, self.attributes = text, dit, attributes

    def forward(self, z, t, ids, mask):
        tokens, pooled = self.text(ids, mask)
        return self.dit(z, t, tokens, mask, pooled), pooled


def main(argv: list[str] | None = None) -> dict | None:
    from trustframe.recipes import cli, wants_recipe

    if wants_recipe(argv):
        return cli("generator", argv)
    cfg, command = parse_config(TrainConfig, argv, "trustframe.generator.train_dit", __doc__.splitlines()[0])
    object_shares(cfg.objects_p)  # a bad value stops here, before any work
    rank, world_size, rng = init_process(cfg.seed, cfg.threads)
    master = rank == 0

    from safetensors.torch import load_file

    from trustframe.generator.dit import DiT, DiTConfig, create_dit
    from trustframe.generator.sampler import paired_flow_loss, rectified_flow_loss
    from trustframe.generator.text import TextConfig, TextEncoder, build_vocab, create_text_encoder
    from trustframe.generator.vae import VAEConfig, VideoVAE

    # --- data: latents of rendered, captioned clips (rank 0 encodes once; the others wait) ---
    run = Run(cfg, world_size)
    vck = load_weights("generator", cfg.vae)
    cache, pair_cache = run.dir / "latents", run.dir / "pairs"
    todo = [(fn, path) for fn, path, wanted in ((encode_dataset, cache, True),
                                                (encode_pairs, pair_cache, cfg.pair_weight > 0))
            if wanted and not path.with_suffix(".json").is_file()]
    if master and todo:
        vae = VideoVAE(VAEConfig.from_dict(vck.card["config"]))
        vae.load_state_dict({k: v.float() for k, v in vck.state_dict.items()})
        vae.eval()
        for fn, path in todo:
            fn(cfg, vae, vck.card["latent_mean"], vck.card["latent_std"], path)
        del vae
    if world_size > 1:
        dist.barrier()
    cached = load_file(str(cache.with_suffix(".safetensors")))
    latents = {k: v.float() for k, v in cached.items() if not k.endswith(".fg")}
    masks = {k: cached[f"{k}.fg"].float() for k in latents if f"{k}.fg" in cached}
    caps = json.loads(cache.with_suffix(".json").read_text())
    keys = list(latents)
    if cfg.fg_weight > 0 and len(masks) < len(keys):
        raise SystemExit(f"--fg-weight needs object masks; {cache}.safetensors has none (written by an older "
                         f"version): delete {cache}.* to re-encode")
    weights = np.array([BUCKETS[tuple(int(v) for v in k.split("x"))] for k in keys])
    weights = weights / weights.sum()
    if cfg.pair_weight > 0:
        stored = load_file(str(pair_cache.with_suffix(".safetensors")))
        pair_latents = {k: v.float() for k, v in stored.items()}  # "a", "b": (pairs, C, t, h, w)
        pair_caps = json.loads(pair_cache.with_suffix(".json").read_text())

    # --- models: from scratch (sizes) or from other weights (EMA, which starts model and EMA alike) ---
    if cfg.init_from:
        dck = load_weights("generator", cfg.init_from)
        tck = load_weights("generator", sibling(cfg.init_from, dck.card["text_encoder"]))
        if dck.card["vae"] != vck.name:
            raise SystemExit(f"{cfg.init_from} was trained on {dck.card['vae']} latents, not {vck.name}")
        text = TextEncoder(TextConfig.from_dict(tck.card["config"]))
        text.load_state_dict({k: v.float() for k, v in tck.state_dict.items()})
        dit = DiT(DiTConfig.from_dict(dck.card["config"]))
        dit.load_state_dict({k: v.float() for k, v in dck.state_dict.items()})
        vocab = text.cfg.vocab
    else:
        vocab = build_vocab(c for k in keys for cs in caps[k] for c in cs)
        text = create_text_encoder(cfg.text_size, vocab=vocab, max_len=96)
        overrides = {k: v for k, v in (("dim", cfg.dim), ("depth", cfg.depth)) if v}
        dit = create_dit(cfg.size, in_channels=latents[keys[0]].shape[1], context_dim=text.cfg.dim,
                         **overrides)
    model = TextToVelocity(text, dit, CaptionAttributes(text.cfg.dim) if cfg.attr_weight > 0 else None)
    # attribute labels of every cached caption (and of the dropped one, ""), parsed once
    attr_labels = ({q: model.attributes.labels(q) for k in keys for cs in caps[k] for q in [*cs, ""]}
                   if model.attributes is not None else {})
    ema = copy.deepcopy(model).requires_grad_(False)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    run.resume({"model": model, "ema": ema, "opt": opt})
    n_params = {"dit": sum(p.numel() for p in dit.parameters()),
                "text": sum(p.numel() for p in text.parameters())}
    if master:
        print(f"{cfg.name}: DiT {n_params['dit'] / 1e6:.2f}M + text {n_params['text'] / 1e6:.2f}M params, "
              f"vocab {len(vocab)}, {sum(len(latents[k]) for k in keys)} clips, {world_size} process(es)",
              flush=True)
    avg: dict[str, float] = {}  # running means of the losses

    def write(final: bool) -> list:
        """The EMA weights (fp16) and cards of the DiT and its text encoder, in the run's folder."""
        text_name = f"{cfg.name}-text"
        data = (f"{sum(len(latents[k]) for k in keys)} world clips (split='train', HELD_OUT pairs "
                f"excluded) x {cfg.captions_per_clip} captions, buckets {list(BUCKETS)}, shots with "
                f"1 / 2 / 3 objects {cfg.objects_p or 'in the world mix'}"
                + (f"; {len(pair_latents['a'])} counterfactual pairs (16x64x64, kinds "
                   f"{dict(Counter(pair_caps['kind']))}: shape = one group's shape changed, count = an "
                   f"object removed, bind = two groups' colour, shape or direction exchanged)"
                   if cfg.pair_weight > 0 else ""))
        vc = vck.card
        dit_card = {"name": cfg.name, "kind": "dit", "version": "0.1.0", "config": ema.dit.cfg.to_dict(),
                    "parameters": n_params["dit"], "vae": vck.name, "text_encoder": text_name,
                    "vae_card_sha256": vck.card_sha256,
                    "latent_mean": vc["latent_mean"], "latent_std": vc["latent_std"],
                    "sampler": SamplerSettings().to_card(),
                    "weights": "EMA, fp16", "final": final, "data": data, "command": command,
                    "train_config": asdict(cfg), "commit": git_commit(), "steps": run.step,
                    "train_minutes": round(run.minutes, 1), "processes": world_size,
                    "metrics": {k: round(v, 4) for k, v in avg.items()}, "log": run.log}
        text_card = {"name": text_name, "kind": "text-encoder", "version": "0.1.0",
                     "config": ema.text.cfg.to_dict(), "parameters": n_params["text"], "weights": "EMA, fp16",
                     "trained_with": f"{cfg.name} (jointly; its card holds the training)",
                     "commit": git_commit()}
        half = {k: v.half() for k, v in ema.state_dict().items()}
        return [run.write({k[4:]: v for k, v in half.items() if k.startswith("dit.")}, dit_card),
                run.write({k[5:]: v for k, v in half.items() if k.startswith("text.")}, text_card, text_name)]

    # --- training loop ---
    while run.running():
        lr = cosine_lr(cfg.lr, run.step, run.frac, warmup=cfg.warmup, floor=0.1)
        set_lr(opt, lr)
        key = keys[int(rng.choice(len(keys), p=weights))]
        idx = rng.integers(0, len(latents[key]), cfg.batch)
        z = latents[key][torch.from_numpy(idx)]  # (B, C, t, h, w)
        prompts = [caps[key][i][int(rng.integers(cfg.captions_per_clip))] for i in idx]
        prompts = ["" if rng.random() < cfg.drop_p else q for q in prompts]  # null condition for CFG
        ids, mask = text.tokenize(prompts)

        pooled = []

        def velocity(zt, t, ids=ids, mask=mask, pooled=pooled):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                v, p = ddp(zt, t, ids, mask)
            pooled.append(p)
            return v.float()

        opt.zero_grad(set_to_none=True)
        losses = {}
        if cfg.pair_weight > 0:  # backward now, without the all-reduce: the main loss's backward does it
            pi = torch.from_numpy(rng.integers(0, len(pair_latents["a"]), cfg.pair_batch))
            ci = rng.integers(cfg.captions_per_clip, size=cfg.pair_batch)
            pair_ids, pair_mask = text.tokenize(
                [pair_caps[m][i][c] for m in ("a", "b") for i, c in zip(pi.tolist(), ci, strict=True)])
            with ddp.no_sync() if world_size > 1 else contextlib.nullcontext():
                pair_loss, plain = paired_flow_loss(
                    lambda zt, t, ids=pair_ids, mask=pair_mask: velocity(zt, t, ids, mask, []),
                    pair_latents["a"][pi], pair_latents["b"][pi], t_mean=cfg.t_mean)
                # the pairs' plain loss counts per clip as much as the main batch's
                (cfg.pair_weight * pair_loss + plain * (2 * cfg.pair_batch / cfg.batch)).backward()
            losses["pair_loss"] = pair_loss.item()
        weight = 1 + cfg.fg_weight * masks[key][torch.from_numpy(idx)] if cfg.fg_weight > 0 else None
        loss = rectified_flow_loss(velocity, z, weight=weight, t_mean=cfg.t_mean)
        total = loss
        if model.attributes is not None:
            labels = torch.tensor([attr_labels[q] for q in prompts])
            attr_loss = model.attributes.loss(pooled[0], labels)
            total = loss + cfg.attr_weight * attr_loss
            losses["attr_loss"] = attr_loss.item()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run.step += 1
        decay = min(cfg.ema, (1 + run.step) / (10 + run.step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                pe.lerp_(pm, 1 - decay)
        losses["loss"] = loss.item()
        for k, v in losses.items():
            avg[k] = v if k not in avg else 0.98 * avg[k] + 0.02 * v
        if master and run.step % 100 == 0:
            row = {"step": run.step, "minutes": round(run.elapsed / 60, 2),
                   **{k: round(v, 4) for k, v in avg.items()}}
            print(f"lr {lr:.2e} {json.dumps(row)}", flush=True)
            run.log.append(row)
        if master and run.checkpoint_due():
            run.save({"model": model, "ema": ema, "opt": opt})
            write(final=False)
            print(f"checkpoint step {run.step}", flush=True)

    # --- the end: the run's weights (EMA, fp16), export ---
    check_in_sync(model, rank, world_size)
    result = None
    if master:
        run.save({"model": model, "ema": ema, "opt": opt})
        written = write(final=True)
        if cfg.export:
            export("generator", written)
        result = run.result(written, {k: round(v, 4) for k, v in avg.items()})
    finish_process(world_size)
    return result


if __name__ == "__main__":
    main()
