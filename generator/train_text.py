"""Teach the text encoder Chinese by distillation: new embedding rows only, one DiT for both languages.

    python -m trustframe.generator.train --recipe tfdit-s --export   # its last stage runs this
    python -m trustframe.generator.train_text --init-from tfdit-s --minutes 16 --batch 16 --clips 256

The text encoder of the DiT given by `--init-from` (a shipped preset or a run's .safetensors; its text
encoder is the one its card names, beside it) gets the Chinese caption lexicon (`captions_zh.LEXICON`,
Simplified; Traditional prompts are converted before tokenising) appended to its vocabulary after its
English words. Only those new rows train: the English rows, positions, transformer and the DiT stay
frozen, so every English prompt encodes bit for bit as before. A new row starts as the mean of its
English gloss's rows (`captions_zh.GLOSS`: 红色 -> "red", 向左 -> "to the left").

Data: parallel captions, one world spec worded by `captions.caption` (English) and `captions_zh.caption_zh`
(Chinese, Simplified or Traditional at random), new wordings every step. Loss:
- velocity: for single-shot specs (their renders VAE-encoded once into a pool), the frozen DiT's velocity
  on the same noisy latent conditioned on the Chinese caption vs on the English one (output-level
  distillation: no token alignment needed); t drawn uniformly, some rows at t = 1 (pure noise);
- pooled: the Chinese caption's pooled sentence vector vs the English one's, one- and two-shot specs.
A run of `training.Run` (runs/<out>/<name>/, resumable); it ends by writing the DiT unchanged as
<name>.{safetensors,json} and the text encoder (fp16 like the shipped one) as <name>-text.*, with a card
that gives the data, the English and Chinese vocabulary and metrics on fixed held-out parallel captions;
`--export` copies both to generator/weights/.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trustframe.training import (
    Run,
    RunConfig,
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
    name: str = "tfdit-s"  # the DiT (copied unchanged); its text encoder with Chinese rows is <name>-text
    out: str = "runs/chinese"
    init_from: str = "tfdit-s"  # the DiT whose text encoder learns Chinese
    minutes: float = 20.0
    ckpt_minutes: float = 3.0
    lr: float = 3e-3
    batch: int = 8  # parallel captions per step through the DiT (velocity loss)
    pool_batch: int = 32  # parallel captions per step for the pooled-vector loss
    pool_weight: float = 1.0
    clips: int = 192  # world clips in the latent pool (16x64x64, split="any")
    noise_p: float = 0.25  # share of velocity rows at t = 1 (pure noise, no clip)
    traditional_p: float = 0.3
    eval_n: int = 48  # held-out parallel captions scored at the end


def extend_vocab(text, words: list[str], gloss: dict[str, str]):
    """A copy of `text` (TextEncoder) with `words` appended to its vocabulary; each new row the mean of
    its gloss's English rows (the mean of all rows when no gloss word is known). Old rows untouched."""
    from trustframe.generator.text import TextConfig, TextEncoder
    from trustframe.generator.text import words as split

    new = [w for w in words if w not in text.index]
    cfg = TextConfig.from_dict({**text.cfg.to_dict(), "vocab": [*text.cfg.vocab, *new]})
    out = TextEncoder(cfg)
    state = text.state_dict()
    old = state["embed.weight"]
    rows = []
    for w in new:
        ids = [text.index[g] for g in split(gloss.get(w, "")) if g in text.index]
        rows.append(old[ids].mean(0) if ids else old[3:].mean(0))
    state["embed.weight"] = torch.cat([old, torch.stack(rows)]) if rows else old
    out.load_state_dict(state)
    return out.eval()


def parallel(spec, rng: np.random.Generator, traditional_p: float) -> tuple[str, str]:
    """(English caption, Chinese caption) of one spec; the split text the generator would encode for a
    two-shot caption is not used here (the pooled loss sees the whole caption)."""
    from trustframe.generator.captions import caption
    from trustframe.generator.captions_zh import caption_zh

    script = "traditional" if rng.random() < traditional_p else "simplified"
    return caption(spec, rng), caption_zh(spec, rng, script)


@torch.no_grad()
def evaluate(g, text, n: int = 48, seed: int = 123) -> dict:
    """Fixed held-out parallel captions (split="heldout" specs): pooled cosine Chinese vs English; the
    DiT's velocity gap (MSE) Chinese vs English, next to English vs another wording in English, vs the
    empty prompt and vs another spec's English caption (what "not understood" costs)."""
    from trustframe.generator import captions, captions_zh, world

    rng = np.random.default_rng(seed)
    specs = [world.sample_spec(rng, frames=16, height=64, width=64, split="heldout", multi_shot_p=0.0)
             for _ in range(n)]
    en = [captions.caption(s, rng) for s in specs]
    en2 = [captions.caption(s, rng) for s in specs]
    zh = [captions_zh.caption_zh(s, rng, "simplified" if i % 2 else "traditional")
          for i, s in enumerate(specs)]
    other = en[1:] + en[:1]
    noise = torch.randn((n, *g.latent_shape(16, 64, 64)[1:]), generator=torch.Generator().manual_seed(seed))
    t = torch.full((n,), 0.8)
    e_en = g.text.encode(en)
    v_en = g.dit(noise, t, *e_en)
    gaps = {}
    for name, prompts, enc in (("chinese", zh, text), ("english_rewording", en2, g.text),
                               ("empty", [""] * n, g.text), ("other_spec", other, g.text)):
        e = enc.encode(prompts)
        gaps[name] = round(float((g.dit(noise, t, *e) - v_en).pow(2).mean()), 5)
        if name == "chinese":
            cos = torch.nn.functional.cosine_similarity(e[2], e_en[2]).mean()
    return {"n": n, "pooled_cosine_chinese_vs_english": round(float(cos), 4),
            "velocity_mse_vs_english_at_t0.8": gaps}


def main(argv: list[str] | None = None) -> dict:
    cfg, _ = parse_config(TrainConfig, argv, "trustframe.generator.train_text", __doc__.splitlines()[0])
    _, world_size, rng = init_process(cfg.seed, cfg.threads)
    if world_size > 1:
        raise SystemExit("train_text runs in one process (it trains a few thousand embedding numbers)")

    from safetensors.torch import load_file, save_file

    from trustframe.generator import captions_zh, world
    from trustframe.generator.captions import caption
    from trustframe.generator.models import load_generator_from
    from trustframe.generator.tensors import to_tensor

    dit = load_weights("generator", cfg.init_from)  # the DiT, copied unchanged into the run's weights
    g = load_generator_from(dit.path.with_suffix(".json"))
    text = extend_vocab(g.text, list(captions_zh.LEXICON), captions_zh.GLOSS)
    # English words come first; Chinese words (already shipped ones too) after them, and only those train
    n_old = sum(not captions_zh.has_cjk(w) for w in text.cfg.vocab)
    assert not any(captions_zh.has_cjk(w) for w in text.cfg.vocab[:n_old])
    old_rows = text.embed.weight.detach()[:n_old].clone()
    text.requires_grad_(False)
    text.embed.weight.requires_grad_(True)
    opt = torch.optim.Adam([text.embed.weight], lr=cfg.lr)
    run = Run(cfg, world_size)
    run.dir.mkdir(parents=True, exist_ok=True)

    # --- the latent pool: single-shot 16x64x64 specs, rendered and encoded once, cached ---
    pool_path = run.dir / "pool.safetensors"
    prng = np.random.default_rng(cfg.seed + 7)
    specs = [world.sample_spec(prng, frames=16, height=64, width=64, split="any", multi_shot_p=0.0)
             for _ in range(cfg.clips)]
    if pool_path.is_file():
        z0 = load_file(str(pool_path))["z"]
    else:
        with torch.no_grad():
            z0 = torch.cat([g.normalise(g.vae.encode(torch.stack([to_tensor(world.render(s))
                                                                  for s in specs[i:i + 16]])))
                            for i in range(0, len(specs), 16)])
        save_file({"z": z0.contiguous()}, str(pool_path))
    assert len(z0) == len(specs), f"{pool_path} holds another pool: delete it"

    run.resume({"text": text, "opt": opt})
    print(f"{len(text.cfg.vocab) - n_old} Chinese words on top of {n_old}; pool {tuple(z0.shape)}",
          flush=True)
    avg = None  # running means of the velocity and pooled losses

    def write() -> tuple[list, dict]:
        """The DiT (unchanged) and the text encoder (fp16) with their cards, in the run's folder; and the
        held-out metrics."""
        text_name = f"{cfg.name}-text"
        probe = [world.sample_spec(np.random.default_rng(i), split="any") for i in range(40)]
        en = [caption(s, np.random.default_rng(i)) for i, s in enumerate(probe)]
        text.requires_grad_(False)  # as shipped: frozen, eval (the transformer's fast path), no autograd
        with torch.no_grad():
            same = all(torch.equal(a, b) for a, b in zip(g.text.encode(en), text.encode(en), strict=True))
        card = {"name": text_name, "kind": "text-encoder", "version": g.card["text"].get("version", "0.1.0"),
                "config": text.cfg.to_dict(), "parameters": sum(p.numel() for p in text.parameters()),
                "weights": "fp16", "commit": git_commit(),
                "data": f"parallel captions (captions.caption / captions_zh.caption_zh, Traditional "
                        f"{cfg.traditional_p:.0%}) of world specs drawn fresh every step; velocity loss on a "
                        f"pool of {len(specs)} single-shot 16x64x64 clips (split='any'), "
                        f"{cfg.noise_p:.0%} of rows at pure noise",
                "english": {"words": n_old,
                            "from": {"dit": cfg.init_from, "commit": dit.card.get("commit", "")},
                            "rows_frozen": True, "english_encodings_identical": same},
                "chinese": {"words": len(text.cfg.vocab) - n_old, "normalise": "NFKC + OpenCC t2s",
                            "segment": "longest match against the Chinese vocabulary"},
                "steps": run.step, "train_minutes": round(run.minutes, 1),
                "metrics": evaluate(g, text, cfg.eval_n)}
        dit_card = {**dit.card, "name": cfg.name, "text_encoder": text_name}
        written = [run.write(dit.state_dict, dit_card),
                   run.write({k: v.half() for k, v in text.state_dict().items()}, card, text_name)]
        print(f"{text_name}: {card['metrics']}", flush=True)
        return written, card["metrics"]

    g.dit.requires_grad_(False)
    while run.running():
        lr = cosine_lr(cfg.lr, run.step, run.frac, warmup=0, floor=0.1)
        set_lr(opt, lr)
        idx = rng.integers(len(specs), size=cfg.batch)
        pairs = [parallel(specs[i], rng, cfg.traditional_p) for i in idx]
        t = torch.from_numpy(rng.uniform(0.05, 1.0, cfg.batch)).float()
        t[torch.from_numpy(rng.random(cfg.batch) < cfg.noise_p)] = 1.0
        noise = torch.randn(z0[idx].shape)
        xt = (1 - t.view(-1, 1, 1, 1, 1)) * z0[idx] + t.view(-1, 1, 1, 1, 1) * noise
        with torch.no_grad():
            v_en = g.dit(xt, t, *g.text.encode([p[0] for p in pairs]))
        loss_v = (g.dit(xt, t, *text.encode([p[1] for p in pairs])) - v_en).pow(2).mean()
        pool_specs = [world.sample_spec(rng, frames=16, height=64, width=64, split="any", multi_shot_p=0.3)
                      for _ in range(cfg.pool_batch)]
        pp = [parallel(s, rng, cfg.traditional_p) for s in pool_specs]
        with torch.no_grad():
            p_en = g.text.encode([p[0] for p in pp])[2]
        loss_p = (text.encode([p[1] for p in pp])[2] - p_en).pow(2).mean()
        loss = loss_v + cfg.pool_weight * loss_p
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            text.embed.weight[:n_old] = old_rows  # English rows stay exactly as shipped
        run.step += 1
        cur = np.array([loss_v.item(), loss_p.item()])
        avg = cur if avg is None else 0.95 * avg + 0.05 * cur
        if run.step % 25 == 0:
            run.log.append({"step": run.step, "minutes": round(run.elapsed / 60, 2),
                            "velocity": round(float(avg[0]), 5), "pooled": round(float(avg[1]), 5)})
            print(run.log[-1], flush=True)
        if run.checkpoint_due():
            run.save({"text": text, "opt": opt})

    # --- the end: the run's weights, export ---
    run.save({"text": text, "opt": opt})
    written, metrics = write()
    if cfg.export:
        export("generator", written)
    finish_process(world_size)
    flat = {"pooled_cosine_chinese_vs_english": metrics["pooled_cosine_chinese_vs_english"],
            **{f"velocity_mse_{k}": v for k, v in metrics["velocity_mse_vs_english_at_t0.8"].items()}}
    return run.result(written, flat)  # flat: the recipe's stage summary


if __name__ == "__main__":
    main()
