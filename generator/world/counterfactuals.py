"""Counterfactual pairs: a spec and a copy that differs in one thing its caption names, for the
DiT's paired loss (`train_dit.py`, `--pair-weight`) and the generator benchmark."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from trustframe.generator.world.specs import ClipSpec, ShotSpec, _apart, _fits, groups
from trustframe.generator.world.vocabulary import HELD_OUT, SHAPES

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
    paired loss asks the denoiser for exactly that difference (train_dit.py, `--pair-weight`).
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
