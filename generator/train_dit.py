"""Train the text encoder + DiT denoiser (rectified flow) on pre-encoded VAE latents.

    python -m trustframe.generator.train --recipe tfdit-s [--export]   # the shipped DiT, stage by stage
    python -m trustframe.generator.train_dit --minutes 70 [--export]  # one run
    torchrun --nproc_per_node 2 -m trustframe.generator.train_dit ...  # same script, DDP over gloo

Stage 1 (once, cached in runs/<name>/latents.*): render world clips (split="train", so the HELD_OUT
(colour, shape) pairs never appear), write several captions per clip, encode each clip with the
shipped VAE (posterior mean) and store the latents by size bucket.
Stage 2: rectified-flow training with logit-normal t (`--t-mean` > 0 trains more at high noise,
where layout and motion are decided), 10% of captions dropped to the empty prompt (classifier-free
guidance), AdamW, EMA of the weights; optional extra loss weight on latent cells that hold objects
(`--fg-weight`), a training-only head that makes the text encoder name every attribute of the
caption (`--attr-weight`, `CaptionAttributes`), and counterfactual pairs (`--pair-weight`): clips
rendered twice, the second time with one shape swapped, one object removed, or one attribute exchanged
between two objects (`world.counterfactual`), whose velocity difference the denoiser must predict
(`sampler.paired_flow_loss`); checkpoints every few minutes in runs/<name>/ (resumable: rerunning
a command continues its run); the run ends by writing the EMA weights (fp16, as shipped) to
runs/<name>/<name>.{safetensors,json} and <name>-text.*, which `--export` copies to generator/weights/.
`--init-from` fine-tunes other weights (a shipped preset or a run's .safetensors; its text encoder is
the one its card names, beside it) instead of starting from scratch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from trustframe.generator.pipeline import DEFAULT_GUIDANCE, DEFAULT_SHAPE_GUIDANCE, DEFAULT_SHIFT
from trustframe.generator.tensors import latent_object_mask, normalised_latents, to_tensor
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

REDRAWS = 50  # specs drawn for one counterfactual pair before it takes another kind

# size buckets (frames, height, width) -> share of the training clips / batches
BUCKETS: dict[tuple[int, int, int], float] = {
    (16, 64, 64): 0.70, (16, 64, 96): 0.08, (16, 96, 64): 0.08, (24, 64, 64): 0.07, (8, 64, 64): 0.07,
}  # fmt: skip


@dataclass
class TrainConfig(RunConfig):
    name: str = "tfdit-s"  # the DiT's name; its text encoder is <name>-text
    size: str = "dit-s"  # a key of dit.DIT_SIZES (from scratch)
    text_size: str = "tftext-s"  # a key of text.TEXT_SIZES (from scratch)
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


def object_shares(text: str) -> tuple[float, float, float] | None:
    """`--objects-p` "p1,p2,p3" -> shares of shots with 1 / 2 / 3 objects ("" -> None, the world's mix)."""
    from trustframe.generator.world import check_objects_p

    if not text:
        return None
    try:
        shares = tuple(float(v) for v in text.split(","))
        check_objects_p(shares)
    except ValueError as e:
        raise SystemExit(f"--objects-p takes 3 shares of 1 / 2 / 3 objects that sum to 1, e.g. 0.4,0.3,0.3; "
                         f"got {text!r}") from e
    return shares


def encode_dataset(cfg: TrainConfig, vae, latent_mean, latent_std, path: Path) -> None:
    """Render + caption + encode `cfg.clips` clips into `path`.{safetensors,json}; the object masks
    on the latent grid go beside the latents (key "<bucket>.fg")."""
    from safetensors.torch import save_file

    from trustframe.generator import world
    from trustframe.generator.captions import caption

    rng = np.random.default_rng(cfg.seed + 777)
    objects_p = object_shares(cfg.objects_p)
    tensors, caps = {}, {}
    t0 = time.time()
    for (f, h, w), share in BUCKETS.items():
        n = int(round(cfg.clips * share))
        zs, fgs, cs = [], [], []
        for i in range(0, n, 8):
            specs = [world.sample_spec(rng, frames=f, height=h, width=w, split="train",
                                       multi_shot_p=cfg.multi_shot_p, objects_p=objects_p)
                     for _ in range(min(8, n - i))]
            x = torch.stack([to_tensor(world.render(s)) for s in specs])  # (B, 3, T, H, W)
            zs.append(normalised_latents(vae, latent_mean, latent_std, x))
            fgs.append(latent_object_mask(x, vae.cfg.time_factor, vae.cfg.space_factor))
            if fgs[-1].shape[2:] != zs[-1].shape[2:]:
                raise AssertionError(f"mask {tuple(fgs[-1].shape)} off the latent grid {tuple(zs[-1].shape)}")
            cs += [[caption(s, rng) for _ in range(cfg.captions_per_clip)] for s in specs]
        key = f"{f}x{h}x{w}"
        tensors[key] = torch.cat(zs)
        tensors[f"{key}.fg"] = torch.cat(fgs)
        caps[key] = cs
        print(f"encoded {key}: {tuple(tensors[key].shape)} ({time.time() - t0:.0f}s)", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps(caps))


def pair_specs(cfg: TrainConfig, rng: np.random.Generator) -> list[tuple]:
    """`cfg.pairs` (spec, counterfactual, kind) triples (16 x 64 x 64, `--objects-p`'s object counts),
    the kinds in equal shares: a drawn spec that does not admit the kind in turn (one object cannot
    lose an object or swap with another) is redrawn, up to `REDRAWS` times, and only then does the
    pair take the next kind that spec admits."""
    from trustframe.generator import world

    objects_p = object_shares(cfg.objects_p)
    kinds_all = world.COUNTERFACTUAL_KINDS
    specs: list[tuple] = []
    while len(specs) < cfg.pairs:
        first = len(specs) % len(kinds_all)
        for _ in range(REDRAWS):
            spec = world.sample_spec(rng, frames=16, height=64, width=64, split="train",
                                     multi_shot_p=cfg.multi_shot_p, objects_p=objects_p)
            other = world.counterfactual(spec, rng, kinds_all[first])
            if other is not None:
                specs.append((spec, other, kinds_all[first]))
                break
        else:
            for kind in kinds_all[first + 1:] + kinds_all[:first]:
                other = world.counterfactual(spec, rng, kind)
                if other is not None:
                    specs.append((spec, other, kind))
                    break
    return specs


def encode_pairs(cfg: TrainConfig, vae, latent_mean, latent_std, path: Path) -> None:
    """Render + encode the counterfactual pairs of `pair_specs` into `path`.{safetensors,json}: latents
    "a" (the drawn clip) and "b" (`world.counterfactual` of it), and per pair `captions_per_clip`
    caption pairs worded alike (same rng seed)."""
    from safetensors.torch import save_file

    from trustframe.generator import world
    from trustframe.generator.captions import caption

    rng = np.random.default_rng(cfg.seed + 999)
    specs = pair_specs(cfg, rng)
    za, zb, caps = [], [], {"a": [], "b": [], "kind": [k for _, _, k in specs]}
    t0 = time.time()
    for i in range(0, len(specs), 8):
        chunk = specs[i:i + 8]
        x = torch.stack([to_tensor(world.render(s)) for pair in chunk for s in pair[:2]])  # a, b, a, b ...
        z = normalised_latents(vae, latent_mean, latent_std, x)
        za.append(z[0::2])
        zb.append(z[1::2])
        for a, b, _ in chunk:
            seeds = [int(rng.integers(2**63)) for _ in range(cfg.captions_per_clip)]
            caps["a"].append([caption(a, np.random.default_rng(q)) for q in seeds])
            caps["b"].append([caption(b, np.random.default_rng(q)) for q in seeds])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"a": torch.cat(za), "b": torch.cat(zb)}, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps(caps))
    print(f"encoded {len(specs)} counterfactual pairs ({time.time() - t0:.0f}s)", flush=True)


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
                    "sampler": {"kind": "rectified-flow euler + CFG + contrastive shape guidance",
                                "steps": 25, "guidance": DEFAULT_GUIDANCE,
                                "shape_guidance": DEFAULT_SHAPE_GUIDANCE, "shift": DEFAULT_SHIFT},
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
