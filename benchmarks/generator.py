"""Generator benchmark: VAE PSNR, prompt adherence (seen / held-out combinations), cut accuracy,
temporal consistency, Fréchet distance, speed and memory.

Length: one benchmark whose sections (VAE, adherence, cuts, languages, counterfactuals, speed)
share the loaded generator, the prompts and the report table.

    python benchmarks/generator.py    # shipped tfdit-s -> benchmarks/results/generator.{json,md}
    python benchmarks/generator.py --prompts 20 --cuts 10 --dit runs/tfdit-s/tfdit-s.json --out /tmp/g

Prompts are captions (`trustframe.generator.captions.caption`) of world specs: "seen" specs come from
split="train" (every (colour, shape) pair was in training, the clips and wordings are new), "held-out"
specs from split="heldout" (the first object is a HELD_OUT pair never trained on). Each prompt is
generated at the spec's size and length with the DiT card's sampler settings (`Generator.sampler`; flags
override them), prompts sampled in batches of `--batch` by `Generator.sample_batch` (which
`Generator.sample` runs for one prompt),
read back by the analytic checker (`trustframe.generator.checker`) and scored with
`adherence(...)["all"]`: every object's colour, shape, count and direction right in every shot, and
the cut within +-1 frame. The same specs' ground-truth renders and their VAE reconstructions are
scored too, as the checker's ceiling.
Word sensitivity: on single-object clips, the denoiser's velocity loss with the true caption against
the same caption (same wording) with one attribute swapped (direction reversed, another colour,
shape or count) or the empty prompt, at t = 0.5 / 0.8 / 0.95 with the same noise. A swap that does
not raise the loss is a word the model ignores; this moves long before sample adherence does.
Counterfactual pairs: the same clip rendered twice, with one shape swapped or one object removed
(`dit_data.counterfactual`), captions worded alike; at one t and one noise for both, the share of the
difference between the two velocity targets that the denoiser predicts (1 - `paired_flow_loss`):
0 = the word changes nothing, 1 = it changes exactly what it should.
Adherence by starting noise: single-shot training-split clips are encoded, noised to t0 (0.3 ... 1.0)
and sampled from there to 0 with their caption (the same Euler + CFG steps per unit of t). Where
adherence drops between two t0 is where the denoiser loses it: high t0 is layout and motion (which
object goes where), low t0 is detail (shape edges); t0 = 1 is plain sampling.
Languages: the same specs prompted in English (`captions.caption`), Simplified Chinese and Traditional
Chinese (`captions_zh.caption_zh`, each its own wording), sampled with the same seeds in the same batches
and scored alike; the target is Chinese adherence within 0.05 of English. `--only languages` runs just
this part (-> `<out>-languages.{json,md}`).
Fréchet distance: on features of the VAE encoder trained here (per-channel mean and std of the
posterior mean over space-time, and of its frame-to-frame differences: 3 x C dims). Generated clips of
the even-numbered prompts against real clips of the odd-numbered ones, next to real (even) against
real (odd): equal set sizes, disjoint prompts, the same seen / held-out mix, so the real-vs-real
figure is the floor that sampling noise alone gives (a generated set scored against the real clips of
its own prompts, or on twice as many clips, would sit below that floor by construction).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from trustframe.generator.models import to_uint8

ROOT = Path(__file__).resolve().parents[1]


def vae_features(vae, clip: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (3C,) pooled VAE-encoder features."""
    x = torch.from_numpy(clip).permute(3, 0, 1, 2).float()[None] / 127.5 - 1
    with torch.no_grad():
        z = vae.encode(x)[0]  # (C, t, h, w)
    dz = (z[:, 1:] - z[:, :-1]).abs() if z.shape[1] > 1 else torch.zeros_like(z)
    return torch.cat([z.mean((1, 2, 3)), z.std((1, 2, 3)), dz.mean((1, 2, 3))]).numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def temporal_ssim(clip: np.ndarray, cut: int | None) -> float:
    """Mean SSIM of consecutive frames, skipping the pair that straddles a cut."""
    from skimage.metrics import structural_similarity

    vals = [structural_similarity(clip[t], clip[t + 1], channel_axis=-1, data_range=255)
            for t in range(len(clip) - 1) if cut is None or t + 1 != cut]
    return float(np.mean(vals)) if vals else 1.0


def generate_batch(g, prompts: list[str], spec, seed: int) -> list[np.ndarray]:
    """Sample several prompts in one batch (`Generator.sample_batch`, what `generate` runs per prompt),
    with the generator's sampler settings (`g.sampler`)."""
    z = g.sample_batch(prompts, frames=spec.frames, height=spec.height, width=spec.width, seed=seed)
    return list(g.decode_batch(z))


def clean_latents(g, specs) -> torch.Tensor:
    """World specs -> their renders encoded by the generator's VAE, normalised as the DiT sees them."""
    from trustframe.generator import world
    from trustframe.generator.tensors import to_tensor

    x = torch.stack([to_tensor(world.render(s)) for s in specs])  # (B, 3, T, H, W)
    return g.normalise(g.vae.encode(x))


def counterfactual_effect(g, n: int, seed: int = 77) -> dict:
    """{kind: {t: share of the word's effect predicted}} on n counterfactual pairs per kind."""
    from trustframe.generator import captions, world
    from trustframe.generator.dit_data import COUNTERFACTUAL_KINDS, counterfactual
    from trustframe.generator.sampler import paired_flow_loss

    rng = np.random.default_rng(seed)
    out: dict = {}
    for kind in COUNTERFACTUAL_KINDS:
        pairs = []
        while len(pairs) < n:
            s = world.sample_spec(rng, frames=16, height=64, width=64, split="train", multi_shot_p=0.0)
            other = counterfactual(s, rng, kind)
            if other is not None:
                q = int(rng.integers(2**63))
                pairs.append((s, other, captions.caption(s, np.random.default_rng(q)),
                              captions.caption(other, np.random.default_rng(q))))
        with torch.no_grad():
            za, zb = clean_latents(g, [p[0] for p in pairs]), clean_latents(g, [p[1] for p in pairs])
            ctx = g.text.encode([p[2] for p in pairs] + [p[3] for p in pairs])
            out[kind] = {}
            for t in (0.5, 0.8, 0.95):
                loss, _ = paired_flow_loss(lambda zt, tt, ctx=ctx: g.dit(zt, tt, *ctx), za, zb,
                                           torch.Generator().manual_seed(1), t=t)
                out[kind][str(t)] = round(1 - float(loss), 3)
    return {"n": n, "share_predicted": out}


def word_sensitivity(g, n: int, seed: int = 55) -> dict:
    """Velocity loss with the true caption vs one attribute swapped (see the module docstring)."""
    import dataclasses

    from trustframe.generator import captions, world

    rng = np.random.default_rng(seed)
    specs = []
    while len(specs) < n:
        s = world.sample_spec(rng, frames=16, height=64, width=64, split="train", multi_shot_p=0.0,
                              camera_p=0.0)
        if len(s.shots[0].objects) == 1:
            specs.append(s)

    def swap(s, **kw):
        o = dataclasses.replace(s.shots[0].objects[0], **kw)
        return dataclasses.replace(s, shots=[dataclasses.replace(s.shots[0], objects=[o])])

    def obj(s):
        return s.shots[0].objects[0]

    opposite = {d: next(e for e, w in world.DIRECTION_VECTORS.items() if w == (-v[0], -v[1]))
                for d, v in world.DIRECTION_VECTORS.items()}
    variants = {
        "true": lambda s: s,
        "direction": lambda s: swap(s, direction=opposite[obj(s).direction]),
        "colour": lambda s: swap(s, colour="blue" if obj(s).colour != "blue" else "red"),
        "shape": lambda s: swap(s, shape="circle" if obj(s).shape != "circle" else "square"),
    }
    prompts = {k: [captions.caption(f(s), np.random.default_rng(1000 + i)) for i, s in enumerate(specs)]
               for k, f in variants.items()}
    prompts["empty"] = [""] * n
    with torch.no_grad():
        z = clean_latents(g, specs)
        times, loss = (0.5, 0.8, 0.95), {k: [] for k in prompts}
        for t in times:
            noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(1))
            xt, tt = (1 - t) * z + t * noise, torch.full((n,), t)
            for k, ps in prompts.items():
                v = g.dit(xt, tt, *g.text.encode(ps))
                loss[k].append(round(float((v - (noise - z)).pow(2).mean()), 5))
    rise = {k: round(float(np.mean([(a / b - 1) * 100 for a, b in zip(v, loss["true"], strict=True)])), 2)
            for k, v in loss.items() if k != "true"}
    return {"n": n, "t": list(times), "loss": loss, "loss_rise_pct": rise, "example": {
        "true": prompts["true"][0], "direction": prompts["direction"][0]}}


NOISE_LEVELS = (0.3, 0.6, 0.8, 0.9, 1.0)


def adherence_from_noise(g, n: int, seed: int = 66) -> dict:
    """{t0: mean adherence} when sampling starts from the true latent noised to t0 (module docstring),
    with the steps, guidance and shape guidance of `g.sampler` (and no time shift)."""
    from trustframe.generator import captions, checker, world
    from trustframe.generator.sampler import euler_sample

    rng = np.random.default_rng(seed)
    specs = [world.sample_spec(rng, frames=16, height=64, width=64, split="train", multi_shot_p=0.0)
             for _ in range(n)]
    prompts = [captions.caption(s, rng) for s in specs]
    out = {}
    with torch.no_grad():
        z0 = clean_latents(g, specs)
        cond, uncond = g.text.encode(prompts), g.text.encode([""] * n)
        contrast = g.shape_contrast(prompts)
        for t0 in NOISE_LEVELS:
            z = euler_sample(g.dit, tuple(z0.shape), cond, uncond, steps=max(2, round(g.sampler.steps * t0)),
                             guidance=g.sampler.guidance, seed=seed, t_start=t0, start=z0, contrast=contrast,
                             contrast_weight=g.sampler.shape_guidance)
            clips = to_uint8(g.vae.decode(g.denormalise(z), 16, 64, 64))
            rows = [checker.adherence(s, checker.check(c)) for s, c in zip(specs, clips, strict=True)]
            out[str(t0)] = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}
    return {"n": n, "levels": out}


def shape_hits_by_size(spec, obs) -> list[tuple[str, bool]]:
    """(object size, shape read right) for every object of the spec: the observed object of the same
    colour in the same shot must have its shape (no such object counts as wrong)."""
    out = []
    for i, shot in enumerate(spec.shots):
        seen = obs.shots[i].objects if i < len(obs.shots) else []
        for o in shot.objects:
            out.append((o.size, any(b.colour == o.colour and b.shape == o.shape for b in seen)))
    return out


LANGUAGES = ("english", "chinese_simplified", "chinese_traditional")


def language_adherence(g, n: int, batch: int, seed: int = 44) -> dict:
    """{language: adherence} on n specs (split="train", a fifth two-shot) prompted in each of LANGUAGES;
    a language's prompts are sampled in the same batches with the same seeds as the others'."""
    from trustframe.generator import captions, captions_zh, checker, world

    r = np.random.default_rng(seed)
    specs = [world.sample_spec(r, frames=16, height=64, width=64, split="train", multi_shot_p=0.2)
             for _ in range(n)]
    prompts = {"english": [captions.caption(s, r) for s in specs],
               "chinese_simplified": [captions_zh.caption_zh(s, r, "simplified") for s in specs],
               "chinese_traditional": [captions_zh.caption_zh(s, r, "traditional") for s in specs]}
    rows: dict = {k: [] for k in LANGUAGES}
    t0 = time.time()
    for lang in LANGUAGES:
        for i in range(0, n, batch):
            clips = generate_batch(g, prompts[lang][i:i + batch], specs[i], seed=i)
            chunk = specs[i:i + batch]
            rows[lang] += [checker.adherence(s, checker.check(c)) for s, c in zip(chunk, clips, strict=True)]
        acc = np.mean([x["all"] for x in rows[lang]])
        print(f"languages: {lang} all-attributes {acc:.3f} ({time.time() - t0:.0f}s)", flush=True)
    same = {lang: round(float(np.mean([a["all"] == b["all"] for a, b in zip(rows[lang], rows["english"],
                                                                             strict=True)])), 3)
            for lang in LANGUAGES[1:]}
    out = {lang: {attr: round(float(np.mean([x[attr] for x in rs])), 3) for attr in rs[0]}
           for lang, rs in rows.items()}
    return {"n": n, "adherence": out, "agree_with_english_all": same,
            "gap_to_english_all": {lang: round(out["english"]["all"] - out[lang]["all"], 3)
                                   for lang in LANGUAGES[1:]},
            "examples": {lang: prompts[lang][:3] for lang in LANGUAGES}}


def languages_markdown(r: dict) -> str:
    lg = r["languages"]
    a = lg["adherence"]
    lines = [f"Same {lg['n']} specs (seen combinations, a fifth two-shot), same seeds; target: Chinese `all` "
             "within 0.05 of English.", "",
             "| prompts | all | colour | shape | count | direction | cut | gap to English (all) | "
             "same all-verdict as English |", "|---|---|---|---|---|---|---|---|---|"]
    for lang, v in a.items():
        gap = lg["gap_to_english_all"].get(lang)
        agree = lg["agree_with_english_all"].get(lang)
        lines.append(f"| {lang.replace('_', ' ')} | {v['all']:.3f} | {v['colour']:.3f} | {v['shape']:.3f} | "
                     f"{v['count']:.3f} | {v['direction']:.3f} | {v['cut']:.3f} | "
                     + ("" if gap is None else f"{gap:+.3f} ({'met' if gap <= 0.05 else 'MISSED'})")
                     + f" | {'' if agree is None else f'{agree:.3f}'} |")
    lines += ["", "Examples: " + " / ".join(f"`{lg['examples'][k][0]}`" for k in LANGUAGES), ""]
    return "\n".join(lines)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="generator benchmark")
    p.add_argument("--preset", default="tfdit-s")
    p.add_argument("--dit", default="", help="a DiT card file to load instead of the shipped preset")
    p.add_argument("--text", default="", help="a text-encoder card file to use instead of the preset's")
    p.add_argument("--prompts", type=int, default=120, help="prompts per split (seen, held-out)")
    p.add_argument("--cuts", type=int, default=60, help="extra two-shot prompts for cut accuracy")
    p.add_argument("--vae-clips", type=int, default=48)
    p.add_argument("--probe-clips", type=int, default=40, help="single-object clips for word sensitivity")
    # sampler settings: those the DiT card gives (`Generator.sampler`) unless given here
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default: the card's)")
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the card's)")
    p.add_argument("--shape-guidance", type=float, default=None,
                   help="contrastive shape guidance weight (0: off; default: the card's)")
    p.add_argument("--shift", type=float, default=None, help="sampler time shift (default: the card's)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--batch", type=int, default=12, help="prompts sampled together (same model and sampler)")
    p.add_argument("--languages", type=int, default=60,
                   help="specs prompted in English, Simplified and Traditional Chinese")
    p.add_argument("--only", choices=["all", "languages"], default="all",
                   help="languages: only the English / Chinese comparison (-> OUT-languages.{json,md})")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "generator"))
    args = p.parse_args(argv)
    command = "python benchmarks/generator.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from trustframe.generator import captions, checker, world
    from trustframe.generator.models import load_generator, load_generator_from
    from trustframe.generator.tensors import to_tensor

    g = load_generator_from(args.dit) if args.dit else load_generator(args.preset)
    if args.text:
        from safetensors.torch import load_file

        from trustframe.generator.text import TextConfig, TextEncoder

        card = json.loads(Path(args.text).read_text())
        g.text = TextEncoder(TextConfig.from_dict(card["config"]))
        g.text.load_state_dict({k: v.float() for k, v in
                                load_file(str(Path(args.text).with_suffix(".safetensors"))).items()})
        g.text.eval().requires_grad_(False)
    g.sampler = g.sampler.override(steps=args.steps, guidance=args.guidance,
                                   shape_guidance=args.shape_guidance, shift=args.shift)
    vae = g.vae
    res: dict = {"command": command, "preset": g.name, "cards": [str(p.name) for p in g.card_paths],
                 "steps": g.sampler.steps, "guidance": g.sampler.guidance,
                 "shape_guidance": g.sampler.shape_guidance, "shift": g.sampler.shift,
                 "torch_threads": torch.get_num_threads(),
                 "machine": platform.processor() or platform.machine(),
                 "parameters": {k: sum(x.numel() for x in m.parameters())
                                for k, m in (("vae", g.vae), ("text", g.text), ("dit", g.dit))}}
    t_all = time.time()
    if args.only == "languages":
        res["languages"] = language_adherence(g, args.languages, args.batch)
        res["bench_seconds"] = round(time.time() - t_all, 1)
        out = Path(args.out + "-languages")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(res, ensure_ascii=False, indent=2) + "\n")
        md = (f"# Generator benchmark: English and Chinese prompts\n\nRerun: `{command}`\n\n"
              f"Preset `{g.name}` (cards: {', '.join(res['cards'])}); {res['steps']} Euler steps, "
              f"guidance {res['guidance']}, shape guidance {res['shape_guidance']}; "
              f"{res['bench_seconds']:.0f} s.\n\n" + languages_markdown(res))
        out.with_suffix(".md").write_text(md)
        print(md)
        return

    # --- VAE reconstruction on held-out clips (several sizes / lengths) ---
    rng = np.random.default_rng(2024)
    by_size: dict[str, list[float]] = {}
    for i in range(args.vae_clips):
        f, h, w = [(16, 64, 64), (16, 64, 64), (16, 64, 96), (16, 96, 64), (24, 64, 64), (1, 64, 64)][i % 6]
        spec = world.sample_spec(rng, frames=max(f, 9), height=h, width=w, split="heldout")
        clip = world.render(spec)[:f]
        x = to_tensor(clip)[None]
        with torch.no_grad():
            rec = to_uint8(vae.decode(vae.encode(x), *x.shape[2:]))[0]
        by_size.setdefault(f"{f}x{h}x{w}", []).append(psnr(rec, clip))
    res["vae_psnr_db"] = {k: round(float(np.mean(v)), 2) for k, v in by_size.items()}
    res["vae_psnr_clips"] = {k: len(v) for k, v in by_size.items()}
    res["vae_psnr_db"]["all"] = round(float(np.mean([x for v in by_size.values() for x in v])), 2)
    print(f"VAE PSNR {res['vae_psnr_db']}", flush=True)

    res["word_sensitivity"] = word_sensitivity(g, args.probe_clips)
    print(f"word sensitivity (loss rise %) {res['word_sensitivity']['loss_rise_pct']}", flush=True)
    res["counterfactual_effect"] = counterfactual_effect(g, args.probe_clips)
    print(f"counterfactual effect predicted {res['counterfactual_effect']['share_predicted']}", flush=True)
    res["adherence_from_noise"] = adherence_from_noise(g, args.probe_clips)
    print(f"adherence from noise {res['adherence_from_noise']['levels']}", flush=True)

    # --- prompts ---
    def prompt_set(split: str, n: int, seed: int, multi_shot_p: float) -> list[tuple]:
        r = np.random.default_rng(seed)
        out = []
        for _ in range(n):
            spec = world.sample_spec(r, frames=16, height=64, width=64, split=split,
                                     multi_shot_p=multi_shot_p)
            out.append((spec, captions.caption(spec, r)))
        return out

    sets = {"seen": prompt_set("train", args.prompts, 11, 0.2),
            "heldout": prompt_set("heldout", args.prompts, 22, 0.2),
            "cut": prompt_set("train", args.cuts, 33, 1.0)}
    scores: dict = {}
    by_size: dict[str, dict[str, list[bool]]] = {"generated": {}, "vae_reconstruction": {}}
    by_objects: dict[int, list[dict]] = {}  # single-shot seen + held-out prompts, by objects asked
    feats_gen, feats_real, ssim_gen, ssim_real = [], [], [], []
    examples = []
    for name, items in sets.items():
        rows = {"generated": [], "vae_reconstruction": [], "ground_truth": []}
        generated: list[np.ndarray] = []
        for i, (spec, prompt) in enumerate(items):
            if i % args.batch == 0:  # every spec here is 16 x 64 x 64, so prompts batch together
                chunk = [q for _, q in items[i:i + args.batch]]
                generated = generate_batch(g, chunk, spec, seed=i)
            gen = generated[i % args.batch]
            real = world.render(spec)
            x = to_tensor(real)[None]
            with torch.no_grad():
                rec = to_uint8(vae.decode(vae.encode(x), *x.shape[2:]))[0]
            obs = {}
            for key, clip in (("generated", gen), ("vae_reconstruction", rec), ("ground_truth", real)):
                obs[key] = checker.check(clip)
                rows[key].append(checker.adherence(spec, obs[key]))
                if key in by_size and name != "cut":
                    for size, hit in shape_hits_by_size(spec, obs[key]):
                        by_size[key].setdefault(size, []).append(hit)
            if name != "cut" and len(spec.shots) == 1:
                by_objects.setdefault(len(spec.shots[0].objects), []).append(rows["generated"][-1])
            if name != "cut":
                feats_gen.append(vae_features(vae, gen))
                feats_real.append(vae_features(vae, real))
                ssim_gen.append(temporal_ssim(gen, spec.cut_at))
                ssim_real.append(temporal_ssim(real, spec.cut_at))
            if len(examples) < 12 and i < 4:
                o = obs["generated"]
                examples.append({"set": name, "prompt": prompt, "adherence": rows["generated"][-1],
                                 "observed": o.summary(), "observed_cut": o.cut, "spec_cut": spec.cut_at})
            if (i + 1) % 20 == 0:
                acc = np.mean([r["all"] for r in rows["generated"]])
                print(f"{name} {i + 1}/{len(items)}: all-attributes {acc:.3f} ({time.time() - t_all:.0f}s)",
                      flush=True)
        scores[name] = {key: {attr: round(float(np.mean([r[attr] for r in rs])), 3) for attr in rs[0]}
                        for key, rs in rows.items()}
        scores[name]["n"] = len(items)
    res["adherence"] = scores
    res["adherence_by_objects"] = {
        str(k): {"n": len(v), **{attr: round(float(np.mean([r[attr] for r in v])), 3)
                                 for attr in ("all", "colour", "shape", "count", "direction")}}
        for k, v in sorted(by_objects.items())}
    res["shape_by_object_size"] = {key: {size: {"accuracy": round(float(np.mean(v)), 3), "n": len(v)}
                                         for size, v in sorted(d.items())} for key, d in by_size.items()}
    res["examples"] = examples
    res["temporal_ssim"] = {"generated": round(float(np.mean(ssim_gen)), 4),
                            "real": round(float(np.mean(ssim_real)), 4)}
    fg, fr = np.stack(feats_gen), np.stack(feats_real)
    res["frechet_vae_features"] = {"generated_vs_real": round(frechet(fg[0::2], fr[1::2]), 3),
                                   "real_vs_real": round(frechet(fr[0::2], fr[1::2]), 3),
                                   "n_per_set": len(fr[1::2]), "dims": int(fr.shape[1])}

    if args.languages:
        res["languages"] = language_adherence(g, args.languages, args.batch)

    # --- speed and memory ---
    times = []
    for s in range(5):
        t0 = time.perf_counter()
        g.decode(g.sample("a red ball moving to the left", frames=16, height=64, width=64, steps=25,
                          seed=s))
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    res["speed"] = {"seconds_per_clip_16x64x64_25_steps": round(sec, 3),
                    "frames_per_second": round(16 / sec, 2), "runs": [round(t, 3) for t in times]}
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["bench_seconds"] = round(time.time() - t_all, 1)
    res["targets"] = {
        "vae_psnr_ge_30": res["vae_psnr_db"]["16x64x64"] >= 30,
        "adherence_seen_ge_0.90": scores["seen"]["generated"]["all"] >= 0.90,
        "adherence_heldout_ge_0.80": scores["heldout"]["generated"]["all"] >= 0.80,
        "cut_ge_0.80": scores["cut"]["generated"]["cut"] >= 0.80,
        "clip_le_10s": sec <= 10,
    }

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


def markdown(r: dict) -> str:
    a = r["adherence"]

    def row(name, label):
        s = a[name]
        return (f"| {label} (n={s['n']}) | {s['generated']['all']:.3f} | {s['generated']['colour']:.3f} | "
                f"{s['generated']['shape']:.3f} | {s['generated']['count']:.3f} | "
                f"{s['generated']['direction']:.3f} | {s['generated']['cut']:.3f} | "
                f"{s['vae_reconstruction']['all']:.3f} | {s['ground_truth']['all']:.3f} |")

    t = r["targets"]
    ok = {True: "met", False: "MISSED"}
    sizes = r["shape_by_object_size"]["generated"]
    lines = [
        "# Generator benchmark",
        "",
        f"Rerun: `{r['command']}`",
        "",
        f"Preset `{r['preset']}` (cards: {', '.join(r['cards'])}); parameters: "
        + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in r["parameters"].items())
        + f"; {r['steps']} Euler steps, guidance {r['guidance']}, "
        f"shape guidance {r.get('shape_guidance', 0)}, shift {r['shift']}; "
        f"torch threads {r['torch_threads']} on a shared 2-core CPU.",
        "",
        "## Prompt adherence",
        "",
        "The checker reads every attribute from pixels; `all` = every object and the cut right.",
        "",
        "| prompts | all | colour | shape | count | direction | cut | all: VAE recon. | all: ground truth |",
        "|---|---|---|---|---|---|---|---|---|",
        row("seen", "seen combinations"),
        row("heldout", "held-out combinations"),
        row("cut", "two-shot (cut) prompts"),
        "",
        "## By objects asked for (single-shot seen and held-out prompts, generated)",
        "",
        "| objects | n | all | colour | shape | count | direction |",
        "|---|---|---|---|---|---|---|",
        *(f"| {k} | {v['n']} | {v['all']:.3f} | {v['colour']:.3f} | {v['shape']:.3f} | {v['count']:.3f} | "
          f"{v['direction']:.3f} |" for k, v in r["adherence_by_objects"].items()),
        "",
        "## Shape read right, by object size (seen and held-out prompts)",
        "",
        "| clips | " + " | ".join(f"{k} (n={v['n']})" for k, v in sizes.items()) + " |",
        "|---|" + "---|" * len(sizes),
        *(f"| {key.replace('_', ' ')} | " + " | ".join(f"{v['accuracy']:.3f}" for v in d.values()) + " |"
          for key, d in r["shape_by_object_size"].items()),
        "",
        "## Which words the denoiser uses",
        "",
        f"Velocity-loss rise when one attribute of a single-object caption is swapped (n="
        f"{r['word_sensitivity']['n']}, mean over t = 0.5 / 0.8 / 0.95; 0 = the word is ignored):",
        "",
        "| " + " | ".join(f"{k} swapped" if k != "empty" else "empty prompt"
                         for k in r["word_sensitivity"]["loss_rise_pct"]) + " |",
        "|" + "---|" * len(r["word_sensitivity"]["loss_rise_pct"]),
        "| " + " | ".join(f"{v:+.1f}%" for v in r["word_sensitivity"]["loss_rise_pct"].values()) + " |",
        "",
        f"Counterfactual pairs (n={r['counterfactual_effect']['n']} per kind): share of the velocity "
        "difference that one changed word should cause which the denoiser predicts (1 = all of it):",
        "",
        "| changed | t = 0.5 | t = 0.8 | t = 0.95 |",
        "|---|---|---|---|",
        *(f"| {kind} | " + " | ".join(f"{v:.3f}" for v in d.values()) + " |"
          for kind, d in r["counterfactual_effect"]["share_predicted"].items()),
        "",
        "## Where sampling loses adherence",
        "",
        f"Single-shot clips (n={r['adherence_from_noise']['n']}) encoded, noised to t0 and sampled "
        "from there with their caption (t0 = 1 is plain sampling):",
        "",
        "| t0 | all | colour | shape | count | direction |",
        "|---|---|---|---|---|---|",
        *(f"| {t0} | {v['all']:.2f} | {v['colour']:.2f} | {v['shape']:.2f} | {v['count']:.2f} | "
          f"{v['direction']:.2f} |" for t0, v in r["adherence_from_noise"]["levels"].items()),
        "",
        "## Summary",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| VAE PSNR, held-out 16x64x64 clips (n={r['vae_psnr_clips']['16x64x64']}) "
        f"| {r['vae_psnr_db']['16x64x64']:.2f} dB | >= 30 dB "
        f"({ok[t['vae_psnr_ge_30']]}) |",
        f"| VAE PSNR by size | {', '.join(f'{k}: {v}' for k, v in r['vae_psnr_db'].items())} | |",
        f"| adherence, seen | {a['seen']['generated']['all']:.3f} | >= 0.90 "
        f"({ok[t['adherence_seen_ge_0.90']]}) |",
        f"| adherence, held-out | {a['heldout']['generated']['all']:.3f} | >= 0.80 "
        f"({ok[t['adherence_heldout_ge_0.80']]}) |",
        f"| cut placed within +-1 frame (two-shot prompts) | {a['cut']['generated']['cut']:.3f} | >= 0.80 "
        f"({ok[t['cut_ge_0.80']]}) |",
        f"| temporal consistency: mean SSIM of consecutive frames (generated / real) | "
        f"{r['temporal_ssim']['generated']:.4f} / {r['temporal_ssim']['real']:.4f} | |",
        f"| Fréchet distance, VAE-encoder features ({r['frechet_vae_features']['dims']}-d), "
        f"generated vs real (real vs real; {r['frechet_vae_features']['n_per_set']} clips a set, disjoint "
        f"prompts) | {r['frechet_vae_features']['generated_vs_real']:.3f} "
        f"({r['frechet_vae_features']['real_vs_real']:.3f}) | |",
        "| seconds per 16-frame 64x64 clip (25 steps, CFG + shape guidance, decode) | "
        f"{r['speed']['seconds_per_clip_16x64x64_25_steps']:.2f} s | <= 10 s ({ok[t['clip_le_10s']]}) |",
        f"| frames per second | {r['speed']['frames_per_second']:.1f} | |",
        f"| peak RSS | {r['peak_rss_mb']:.0f} MB | |",
        "",
    ]
    if "languages" in r:
        lines += ["## English and Chinese prompts", "", languages_markdown(r)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
