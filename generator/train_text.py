"""Teach the text encoder Chinese by distillation: new embedding rows only, one DiT for both languages.

    python -m trustframe.generator.train_text --minutes 20 --export     # -> runs/tftext-zh/export/

The shipped text encoder's vocabulary gets the Chinese caption lexicon (`captions_zh.LEXICON`, Simplified;
Traditional prompts are converted before tokenising) appended after its English words. Only those new
rows train: the English rows, positions, transformer and the DiT stay frozen, so every English prompt
encodes bit for bit as before. A new row starts as the mean of its English gloss's rows
(`captions_zh.GLOSS`: 红色 -> "red", 向左 -> "to the left").

Data: parallel captions, one world spec worded by `captions.caption` (English) and `captions_zh.caption_zh`
(Chinese, Simplified or Traditional at random), new wordings every step. Loss:
- velocity: for single-shot specs (their renders VAE-encoded once into a pool), the frozen DiT's velocity
  on the same noisy latent conditioned on the Chinese caption vs on the English one (output-level
  distillation: no token alignment needed); t drawn uniformly, some rows at t = 1 (pure noise);
- pooled: the Chinese caption's pooled sentence vector vs the English one's, one- and two-shot specs.
Resumable (runs/<out>/state.pt); `--export` writes `<preset>-text.{safetensors,json}` (fp16 like the
shipped one) with a flat card: command, data, metrics on fixed held-out parallel captions.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from trustframe.training import init_process, parse_config, resume_state, shared_elapsed


@dataclass
class TrainConfig:
    preset: str = "tfdit-s"  # the DiT whose text encoder learns Chinese
    minutes: float = 20.0
    lr: float = 3e-3
    batch: int = 8  # parallel captions per step through the DiT (velocity loss)
    pool_batch: int = 32  # parallel captions per step for the pooled-vector loss
    pool_weight: float = 1.0
    clips: int = 192  # world clips in the latent pool (16x64x64, split="any")
    noise_p: float = 0.25  # share of velocity rows at t = 1 (pure noise, no clip)
    traditional_p: float = 0.3
    seed: int = 0
    threads: int = 1
    ckpt_minutes: float = 3.0
    eval_n: int = 48  # held-out parallel captions scored at export
    out: str = "runs/tftext-zh"
    export: bool = False


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


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


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


def main(argv: list[str] | None = None) -> None:
    cfg, command = parse_config(TrainConfig, argv, "trustframe.generator.train_text", __doc__.splitlines()[0])
    rank, world_size, rng = init_process(cfg.seed, cfg.threads)
    if world_size > 1:
        raise SystemExit("train_text runs in one process (it trains a few thousand embedding numbers)")

    from safetensors.torch import load_file, save_file

    from trustframe.generator import captions_zh, world
    from trustframe.generator.models import load_generator
    from trustframe.generator.tensors import to_tensor
    from trustframe.weights import save_checkpoint

    g = load_generator(cfg.preset)
    text = extend_vocab(g.text, list(captions_zh.LEXICON), captions_zh.GLOSS)
    # English words come first; Chinese words (already shipped ones too) after them, and only those train
    n_old = sum(not captions_zh.has_cjk(w) for w in text.cfg.vocab)
    assert not any(captions_zh.has_cjk(w) for w in text.cfg.vocab[:n_old])
    old_rows = text.embed.weight.detach()[:n_old].clone()
    text.requires_grad_(False)
    text.embed.weight.requires_grad_(True)
    opt = torch.optim.Adam([text.embed.weight], lr=cfg.lr)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)

    # --- the latent pool: single-shot 16x64x64 specs, rendered and encoded once, cached ---
    pool_path = run_dir / "pool.safetensors"
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

    step, elapsed0, log, commands = 0, 0.0, [], [command]
    state_path = run_dir / "state.pt"
    st = resume_state(state_path, {"text": text, "opt": opt})
    if st is not None:
        step, elapsed0 = int(st["step"]), float(st["elapsed"])
        log, commands = json.loads(st["log"]), [*json.loads(st["commands"]), command]
        print(f"resumed at step {step}, {elapsed0 / 60:.1f} min", flush=True)
    print(f"{len(text.cfg.vocab) - n_old} Chinese words on top of {n_old}; pool {tuple(z0.shape)}",
          flush=True)

    def export(dest: Path, final: bool) -> None:
        t_en = text.cfg.vocab[:n_old]
        probe = [p for p in (world.sample_spec(np.random.default_rng(i), split="any") for i in range(40))]
        from trustframe.generator.captions import caption

        en = [caption(s, np.random.default_rng(i)) for i, s in enumerate(probe)]
        text.requires_grad_(False)  # as shipped: frozen, eval (the transformer's fast path), no autograd
        with torch.no_grad():
            same = all(torch.equal(a, b) for a, b in zip(g.text.encode(en), text.encode(en), strict=True))
        base = g.card["text"]
        card = {"name": base["name"], "kind": "text-encoder", "version": base.get("version", "0.1.0"),
                "config": text.cfg.to_dict(), "parameters": sum(p.numel() for p in text.parameters()),
                "command": command, "commands": commands, "train_config": asdict(cfg), "commit": _commit(),
                "data": f"parallel captions (captions.caption / captions_zh.caption_zh, Traditional "
                        f"{cfg.traditional_p:.0%}) of world specs drawn fresh every step; velocity loss on a "
                        f"pool of {len(specs)} single-shot 16x64x64 clips (split='any'), "
                        f"{cfg.noise_p:.0%} of rows "
                        f"at pure noise",
                "english": {"words": len(t_en),
                            "from": {k: base.get(k) for k in ("command", "commit", "steps", "train_minutes")},
                            "rows_frozen": True, "english_encodings_identical": same},
                "chinese": {"words": len(text.cfg.vocab) - len(t_en), "normalise": "NFKC + OpenCC t2s",
                            "segment": "longest match against the Chinese vocabulary"},
                "steps": step, "train_minutes": round((time.time() - t_start) / 60, 1),
                "metrics": evaluate(g, text, cfg.eval_n), "log": log[-6:], "weights": "fp16", "final": final}
        save_checkpoint(dest / base["name"], {k: v.half() for k, v in text.state_dict().items()}, card)
        text.embed.weight.requires_grad_(True)
        print(f"exported {dest / base['name']}.json: {card['metrics']}", flush=True)

    def save_state() -> None:
        torch.save({"text": text.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": time.time() - t_start, "log": json.dumps(log),
                    "commands": json.dumps(commands)},
                   state_path.with_suffix(".tmp"))
        os.replace(state_path.with_suffix(".tmp"), state_path)

    t_start = time.time() - elapsed0
    last_ckpt, budget, avg = time.time(), cfg.minutes * 60, None
    g.dit.requires_grad_(False)
    while (elapsed := shared_elapsed(t_start, world_size)) < budget:
        lr = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        for group in opt.param_groups:
            group["lr"] = lr
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
        step += 1
        cur = np.array([loss_v.item(), loss_p.item()])
        avg = cur if avg is None else 0.95 * avg + 0.05 * cur
        if step % 25 == 0:
            log.append({"step": step, "minutes": round(elapsed / 60, 2), "velocity": round(float(avg[0]), 5),
                        "pooled": round(float(avg[1]), 5)})
            print(log[-1], flush=True)
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            save_state()
            last_ckpt = time.time()
    save_state()
    if cfg.export:
        export(run_dir / "export", final=True)


if __name__ == "__main__":
    main()
