"""The DiT's training data: rendered, captioned world clips and counterfactual pairs, VAE-encoded once.

- `encode_dataset`: `--clips` world clips (split="train", so the HELD_OUT (colour, shape) pairs never
  appear) over the size `BUCKETS`, several captions each, encoded with the VAE (posterior mean,
  normalised) and stored by bucket with their object masks on the latent grid;
- `counterfactual`: a spec and a copy that differs in one thing its caption names (a shape, an object
  fewer, or an attribute exchanged between two objects; `COUNTERFACTUAL_KINDS`), which isolates what
  one word does to the pixels; `pair_specs` draws such pairs in equal shares of the kinds and
  `encode_pairs` renders, captions (worded alike) and encodes them for the paired loss
  (`sampler.paired_flow_loss`, `train_dit --pair-weight`); the generator benchmark probes the
  trained DiT with them too.

`cfg` is the DiT trainer's `TrainConfig` (`train_dit.py`); its fields used here: clips,
captions_per_clip, multi_shot_p, objects_p, pairs, seed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from trustframe.generator import world
from trustframe.generator.captions import caption
from trustframe.generator.tensors import latent_object_mask, normalised_latents, to_tensor
from trustframe.generator.world import HELD_OUT, SHAPES, ClipSpec, ShotSpec, groups
from trustframe.generator.world.specs import _apart, _fits

REDRAWS = 50  # specs drawn for one counterfactual pair before it takes another kind

# size buckets (frames, height, width) -> share of the training clips / batches
BUCKETS: dict[tuple[int, int, int], float] = {
    (16, 64, 64): 0.70, (16, 64, 96): 0.08, (16, 96, 64): 0.08, (24, 64, 64): 0.07, (8, 64, 64): 0.07,
}  # fmt: skip

COUNTERFACTUAL_KINDS = ("shape", "count", "bind")
BOUND_ATTRIBUTES = ("colour", "shape", "direction")  # what a "bind" counterfactual may swap


def counterfactual(spec: ClipSpec, rng: np.random.Generator, kind: str) -> ClipSpec | None:
    """A copy of `spec` that differs in one thing its caption names, everything else (positions,
    motion, background, camera) kept, or None when this spec admits no such change.

    kind "shape": every object of one (colour, shape) group of one shot takes another shape (one
    whose pair is allowed in training, not already in the shot, and that stays in frame and apart);
    kind "count": one object leaves a shot that has two or more;
    kind "bind": two groups of one shot exchange their colour, shape or direction (the caption names
    the same words, bound to the other objects: "a red circle and a blue square" becomes "a blue
    circle and a red square"), which is where the generator fails most with two or more objects.
    The pair (spec, counterfactual) isolates what one word does to the pixels: the DiT trainer's
    paired loss asks the denoiser for exactly that difference (`encode_pairs`, `--pair-weight`).
    """
    if kind not in COUNTERFACTUAL_KINDS:
        raise ValueError(f"kind must be one of {COUNTERFACTUAL_KINDS}, not {kind!r}")
    out = ClipSpec.from_dict(spec.to_dict())
    eligible = {"shape": lambda s: True, "count": lambda s: len(s.objects) >= 2,
                "bind": lambda s: len(groups(s)) >= 2}[kind]
    shots = [i for i, s in enumerate(out.shots) if eligible(s)]
    if not shots:
        return None
    i = shots[int(rng.integers(len(shots)))]
    shot, (a, b) = out.shots[i], out.shot_ranges()[i]
    if kind == "count":
        del shot.objects[int(rng.integers(len(shot.objects)))]
        return out
    if kind == "bind":
        return out if _swap_between_groups(shot, b - a, out.height, out.width, rng) else None
    keys = list(groups(shot))
    key = keys[int(rng.integers(len(keys)))]
    members = [j for j, o in enumerate(shot.objects) if (o.colour, o.shape) == key]
    others = [o for j, o in enumerate(shot.objects) if j not in members]
    for shape in rng.permutation(SHAPES):
        new = {j: dataclasses.replace(shot.objects[j], shape=str(shape)) for j in members}
        if (shape == key[1] or (key[0], shape) in HELD_OUT
                or any((o.colour, o.shape) == (key[0], shape) for o in others)
                or not all(_fits(o, b - a, out.height, out.width) for o in new.values())
                or not all(_apart(o, p, b - a) for k, o in enumerate(new.values())
                           for p in [*others, *list(new.values())[k + 1:]])):
            continue
        for j, o in new.items():
            shot.objects[j] = o
        return out
    return None


def _swap_between_groups(shot: ShotSpec, n: int, height: int, width: int, rng: np.random.Generator) -> bool:
    """Swap one attribute (colour, shape or direction, tried in random order) between two (colour,
    shape) groups of `shot` in place; False (shot untouched) when no swap keeps the clip valid: the
    two groups must differ in it, no held-out or repeated (colour, shape) may result, and every object
    must stay in frame and apart from the others."""
    members = groups(shot)
    pairs = list(itertools.combinations(members, 2))
    for g1, g2 in (pairs[int(k)] for k in rng.permutation(len(pairs))):
        for attr in rng.permutation(BOUND_ATTRIBUTES):
            v1, v2 = getattr(members[g1][0], attr), getattr(members[g2][0], attr)
            if v1 == v2:
                continue
            new = [dataclasses.replace(o, **{attr: v2 if (o.colour, o.shape) == g1 else v1})
                   if (o.colour, o.shape) in (g1, g2) else o for o in shot.objects]
            keys_after = {(o.colour, o.shape) for o in new}
            if (len(keys_after) < len(members) or keys_after & HELD_OUT
                    or not all(_fits(o, n, height, width) for o in new)
                    or not all(_apart(o, p, n) for k, o in enumerate(new) for p in new[k + 1:])):
                continue
            shot.objects[:] = new
            return True
    return False


def object_shares(text: str) -> tuple[float, float, float] | None:
    """`--objects-p` "p1,p2,p3" -> shares of shots with 1 / 2 / 3 objects ("" -> None, the world's mix)."""
    if not text:
        return None
    try:
        shares = tuple(float(v) for v in text.split(","))
        world.check_objects_p(shares)
    except ValueError as e:
        raise SystemExit(f"--objects-p takes 3 shares of 1 / 2 / 3 objects that sum to 1, e.g. 0.4,0.3,0.3; "
                         f"got {text!r}") from e
    return shares


def encode_dataset(cfg, vae, latent_mean, latent_std, path: Path) -> None:
    """Render + caption + encode `cfg.clips` clips into `path`.{safetensors,json}; the object masks
    on the latent grid go beside the latents (key "<bucket>.fg")."""
    from safetensors.torch import save_file

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


def pair_specs(cfg, rng: np.random.Generator) -> list[tuple]:
    """`cfg.pairs` (spec, counterfactual, kind) triples (16 x 64 x 64, `--objects-p`'s object counts),
    the kinds in equal shares: a drawn spec that does not admit the kind in turn (one object cannot
    lose an object or swap with another) is redrawn, up to `REDRAWS` times, and only then does the
    pair take the next kind that spec admits."""
    objects_p = object_shares(cfg.objects_p)
    kinds_all = COUNTERFACTUAL_KINDS
    specs: list[tuple] = []
    while len(specs) < cfg.pairs:
        first = len(specs) % len(kinds_all)
        for _ in range(REDRAWS):
            spec = world.sample_spec(rng, frames=16, height=64, width=64, split="train",
                                     multi_shot_p=cfg.multi_shot_p, objects_p=objects_p)
            other = counterfactual(spec, rng, kinds_all[first])
            if other is not None:
                specs.append((spec, other, kinds_all[first]))
                break
        else:
            for kind in kinds_all[first + 1:] + kinds_all[:first]:
                other = counterfactual(spec, rng, kind)
                if other is not None:
                    specs.append((spec, other, kind))
                    break
    return specs


def encode_pairs(cfg, vae, latent_mean, latent_std, path: Path) -> None:
    """Render + encode the counterfactual pairs of `pair_specs` into `path`.{safetensors,json}: latents
    "a" (the drawn clip) and "b" (`counterfactual` of it), and per pair `captions_per_clip`
    caption pairs worded alike (same rng seed)."""
    from safetensors.torch import save_file

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
