"""The procedural world and its caption grammar: determinism, ground truth, held-out pairs."""

from __future__ import annotations

import numpy as np
import pytest

from trustframe.generator import captions, world
from trustframe.generator.world import ClipSpec, ObjectSpec, ShotSpec
from trustframe.generator.world import specs as world_specs


def _specs(n: int, seed: int = 0, **kw) -> list[ClipSpec]:
    rng = np.random.default_rng(seed)
    kw = {"frames": None, "height": None, "width": None, "multi_shot_p": 0.3, "camera_p": 0.3, **kw}
    return [world.sample_spec(rng, **kw) for _ in range(n)]


def test_palette_is_separated_from_itself_and_backgrounds():
    cols = np.array(list(world.COLOURS.values()), dtype=float)
    assert len(world.SHAPES) >= 4 and len(cols) >= 8 and len(world.DIRECTIONS) == 8
    d = np.linalg.norm(cols[:, None] - cols[None], axis=-1)
    assert d[~np.eye(len(cols), dtype=bool)].min() >= 80
    assert cols.max(axis=1).min() >= 200
    assert max(max(t) for t in world.BG_TINTS.values()) * 1.35 < 120


def test_sampling_and_rendering_are_deterministic():
    a, b = _specs(5, seed=3), _specs(5, seed=3)
    assert a == b
    for s in a:
        assert np.array_equal(world.render(s), world.render(s))
        assert np.array_equal(world.render(ClipSpec.from_dict(s.to_dict())), world.render(s))


@pytest.mark.parametrize(("frames", "height", "width"),
                         [(8, 64, 64), (16, 64, 96), (48, 96, 64), (1, 64, 64)])
def test_render_shape_and_dtype(frames, height, width):
    spec = world.sample_spec(np.random.default_rng(frames), frames=frames, height=height, width=width,
                             multi_shot_p=1.0, camera_p=1.0)
    v = world.render(spec)
    assert v.shape == (frames, height, width, 3) and v.dtype == np.uint8
    if frames >= 2 * world.MIN_SHOT:
        assert len(spec.shots) == 2 and world.MIN_SHOT <= spec.cut_at <= frames - world.MIN_SHOT


def test_sampled_specs_respect_the_world_rules():
    for s in _specs(150, seed=1, split="any"):
        assert 1 <= len(s.shots) <= 2 and (s.cut_at is None) == (len(s.shots) == 1)
        for shot, (a, b) in zip(s.shots, s.shot_ranges(), strict=True):
            n = b - a
            assert 1 <= len(shot.objects) <= 3
            for o in shot.objects:
                e = o.extent
                for t in (0, n - 1):  # whole trajectory in frame (motion is linear)
                    x, y = o.position(t)
                    assert e <= x <= s.width - e and e <= y <= s.height - e
                assert world.SPEEDS[o.speed] * (n - 1) >= world.MIN_TRAVEL
            for i, o in enumerate(shot.objects):
                for p in shot.objects[i + 1:]:
                    assert world_specs._apart(o, p, n)
            for objs in world.groups(shot).values():  # a counted group moves together
                assert len({(o.direction, o.speed, o.size) for o in objs}) == 1
        for shot in s.shots:
            if shot.camera:
                assert shot.background in world.CAMERA_BACKGROUNDS[shot.camera]
                assert shot.bg_tint in world.CAMERA_TINTS
        if len(s.shots) == 2:
            assert world_specs._tint_dist(s.shots[0].bg_tint, s.shots[1].bg_tint) >= 30


def test_held_out_pairs_never_appear_in_train_and_always_in_heldout():
    assert 4 <= len(world.HELD_OUT) <= 6
    colours = {c for c, _ in world.HELD_OUT}
    shapes = {s for _, s in world.HELD_OUT}
    assert colours <= set(world.COLOURS) and shapes <= set(world.SHAPES)
    for s in _specs(300, seed=2, split="train"):
        assert not any((o.colour, o.shape) in world.HELD_OUT for sh in s.shots for o in sh.objects)
    for s in _specs(50, seed=2, split="heldout"):
        o = s.shots[0].objects[0]
        assert (o.colour, o.shape) in world.HELD_OUT
    with pytest.raises(ValueError):
        world.sample_spec(np.random.default_rng(0), split="test")


def test_objects_are_drawn_in_their_colour_where_the_spec_says():
    spec = ClipSpec([ShotSpec([ObjectSpec("square", "red", "right", "quickly", "large", (20.0, 32.0))],
                              "stripes-vertical", "pan-left", "navy", 7)], frames=8)
    v = world.render(spec)
    for t in (0, 7):
        x, y = spec.shots[0].objects[0].position(t)
        assert tuple(v[t, int(y), int(x)]) == world.COLOURS["red"]
    assert not np.array_equal(v[0, :4], v[7, :4])  # the camera pan moves the background


def test_captions_name_every_attribute_and_parse_back():
    rng = np.random.default_rng(4)
    for s in _specs(200, seed=4, split="any"):
        text = captions.caption(s, rng)
        low = text.lower()
        for shot in s.shots:
            for o in shot.objects:
                assert any(w in low for w in captions.COLOUR_WORDS[o.colour])
                assert any(w in low for pair in captions.SHAPE_WORDS[o.shape] for w in pair)
        p = captions.parse(text, frames=s.frames)
        assert p is not None and p.cut_at == s.cut_at, text
        for got, want in zip(p.shots, s.shots, strict=True):
            assert sorted((o.colour, o.shape, o.direction) for o in got.objects) == sorted(
                (o.colour, o.shape, o.direction) for o in want.objects), text
            assert got.camera == want.camera, text


def test_two_shot_captions_split_into_the_words_of_each_shot():
    """Every two-shot caption splits into two texts that parse back to one shot each (nothing of the
    other shot, no cut phrase) and the cut frame; one-shot captions stay whole."""
    rng = np.random.default_rng(5)
    specs = _specs(300, seed=5, split="any", frames=16, multi_shot_p=0.5)
    assert sum(len(s.shots) == 2 for s in specs) > 100
    for s in specs:
        text = captions.caption(s, rng)
        shots, cut = captions.split_shots(text)
        if len(s.shots) == 1:
            assert (shots, cut) == ([text], None)
            continue
        assert cut == s.cut_at, text
        for shot_text, want in zip(shots, s.shots, strict=True):
            assert "cut" not in shot_text and "frame" not in shot_text, text
            got = captions.parse(shot_text, frames=16)
            assert len(got.shots) == 1 and got.cut_at is None, text
            assert sorted((o.colour, o.shape, o.direction) for o in got.shots[0].objects) == sorted(
                (o.colour, o.shape, o.direction) for o in want.objects), text
            assert got.shots[0].camera == want.camera, text
    assert captions.split_shots("A red ball, then cut to a star.") == (["a red ball", "a star"], None)
    assert captions.split_shots("cut to a blue star") == (["cut to a blue star"], None)


def test_parse_is_tolerant():
    p = captions.parse("Two red boxes drifting leftwards, then after 6 frames cut to a blue ball moving up "
                       "and to the right, cinematic 4k trending zorblax!", frames=16)
    assert [[(o.colour, o.shape, o.direction) for o in s.objects] for s in p.shots] == [
        [("red", "square", "left"), ("red", "square", "left")], [("blue", "circle", "up-right")]]
    assert p.cut_at == 6
    assert captions.parse("a photo of a cat") is None
    assert captions.parse("") is None
    p = captions.parse("a yellow star moving down, 24 frames at 96x64")
    assert (p.frames, p.width, p.height) == (24, 96, 64)


def test_layout_places_a_parsed_prompt_so_the_checker_reads_it():
    from trustframe.generator import checker

    rng = np.random.default_rng(6)
    p = captions.parse("Two red boxes drifting leftwards quickly and a white star moving up, then after 20 "
                       "frames cut to a blue ball moving down-right", frames=32)
    spec = world.layout(p, rng)
    assert [len(s.objects) for s in spec.shots] == [3, 1] and spec.shots[1].bg_tint != spec.shots[0].bg_tint
    assert checker.adherence(p, checker.check(world.render(spec)))["all"]
    with pytest.raises(ValueError):
        world.layout(captions.parse("three large white stars moving right", height=24, width=24), rng)


def test_caption_vocabulary_covers_the_world():
    assert set(captions.SHAPE_WORDS) == set(world.SHAPES)
    assert set(captions.COLOUR_WORDS) == set(world.COLOURS)
    assert set(captions.DIRECTION_WORDS) == set(world.DIRECTIONS)
    assert set(captions.SPEED_WORDS) == set(world.SPEEDS)
    assert set(captions.SIZE_WORDS) == set(world.SIZES)
    assert set(captions.BACKGROUND_WORDS) == set(world.BACKGROUNDS)
    assert set(captions.CAMERA_WORDS) == set(world.CAMERAS)


def test_cut_align_puts_cuts_on_latent_step_boundaries():
    rng = np.random.default_rng(8)
    for frames in (9, 13, 17, 25, 33):
        s = world.sample_spec(rng, frames=frames, multi_shot_p=1.0, cut_align=4)
        assert (s.cut_at - 1) % 4 == 0 and world.MIN_SHOT <= s.cut_at <= frames - world.MIN_SHOT


def test_objects_p_sets_the_share_of_crowded_shots():
    """The world's own mix yields few 3-object shots (crowded draws fail placement and are redrawn);
    `objects_p` fixes the count per shot, so the asked shares come out (what balanced DiT data uses)."""
    def shares(**kw):
        counts = np.zeros(3)
        for s in _specs(600, seed=5, frames=16, height=64, width=64, **kw):
            for shot in s.shots:
                counts[len(shot.objects) - 1] += 1
        return counts / counts.sum()

    natural, balanced = shares(), shares(objects_p=(0.4, 0.3, 0.3))
    assert natural[2] < 0.12
    assert np.abs(balanced - [0.4, 0.3, 0.3]).max() < 0.05
    with pytest.raises(ValueError, match="objects_p"):
        world.sample_spec(np.random.default_rng(0), objects_p=(0.5, 0.5))
    with pytest.raises(ValueError, match="objects_p"):
        world.sample_spec(np.random.default_rng(0), objects_p=(0.6, 0.6, -0.2))


def test_dit_objects_p_flag_is_checked_before_any_work():
    from trustframe.generator.dit_data import object_shares
    from trustframe.generator.train_dit import main

    assert object_shares("") is None
    assert object_shares("0.4,0.3,0.3") == (0.4, 0.3, 0.3)
    for bad in ("0.5,0.5", "a,b,c", "0.5,0.6,-0.1"):
        with pytest.raises(SystemExit, match="--objects-p"):
            main(["--objects-p", bad, "--out", "/nonexistent/never-written"])


def test_latent_object_mask_covers_the_objects_on_the_latent_grid():
    """The DiT's object weighting: cells over object pixels are 1, the first latent frame is frame 0
    alone (causal VAE), and the mask lies on the latent grid of a 4x-time, 4x-space VAE."""
    import torch

    from trustframe.generator.tensors import latent_object_mask, object_mask, to_tensor

    spec = world.sample_spec(np.random.default_rng(3), frames=16, height=64, width=96, multi_shot_p=0.0)
    x = to_tensor(world.render(spec))[None]  # (1, 3, 16, 64, 96)
    m = latent_object_mask(x, time_factor=4, space_factor=4)
    assert m.shape == (1, 1, 5, 16, 24) and m.dtype == torch.uint8
    px = object_mask(x)[0, 0]  # (16, 64, 96)
    assert 0 < px.mean() < 0.2  # objects are small, bright, found
    for f in range(16):  # every object pixel of frame f lies in a marked cell of its latent frame
        t = 0 if f == 0 else 1 + (f - 1) // 4
        ys, xs = torch.nonzero(px[f], as_tuple=True)
        assert m[0, 0, t, ys // 4, xs // 4].all()
    first = latent_object_mask(x[:, :, :1], time_factor=4, space_factor=4)
    assert torch.equal(first[0, 0, 0], m[0, 0, 0])
    assert m.float().mean() < 0.6  # background cells stay unweighted


def test_caption_attribute_labels_name_what_the_spec_holds():
    """The text encoder's training-only attribute head is taught from parsed captions: every label
    must be the spec's own attribute (this is what makes "left" and "right" differ to the DiT)."""
    from trustframe.generator.train_dit import CaptionAttributes

    head = CaptionAttributes(dim=8)
    rng = np.random.default_rng(4)
    for _ in range(30):
        spec = world.sample_spec(rng, frames=16, multi_shot_p=0.5)
        labels = head.labels(captions.caption(spec, rng))
        assert len(labels) == len(head.sizes)
        assert all(0 <= v < n for v, n in zip(labels, head.sizes, strict=True))
        k = 0
        for i in range(2):
            shot = spec.shots[i] if i < len(spec.shots) else None
            cams = head.cameras
            want = len(cams) + 1 if shot is None else cams.index(shot.camera) if shot.camera else len(cams)
            assert labels[k] == want
            k += 1
            objs = shot.objects if shot else []
            for j in range(head.SLOTS):
                for attr, names in head.tables.items():
                    if j < len(objs):  # objects in caption order; compare as multisets below
                        assert names[labels[k]] in {getattr(o, attr) for o in objs}
                    else:
                        assert labels[k] == len(names)  # absent
                    k += 1
        assert labels[k] == (spec.cut_at or 0)
    assert head.labels("") == [-100] * len(head.sizes) == head.labels("no objects named here")


def _objects(spec: ClipSpec) -> list[tuple]:
    return [(i, o.colour, o.shape, o.direction, o.speed, o.size, o.start)
            for i, shot in enumerate(spec.shots) for o in shot.objects]


def test_counterfactual_changes_one_named_thing_and_keeps_the_rest():
    from trustframe.generator.dit_data import COUNTERFACTUAL_KINDS, counterfactual

    rng = np.random.default_rng(3)
    made = dict.fromkeys(COUNTERFACTUAL_KINDS, 0)
    for spec in _specs(120, seed=7, frames=16, height=64, width=64, split="train"):
        for kind in COUNTERFACTUAL_KINDS:
            other = counterfactual(spec, rng, kind)
            if other is None:  # no object to remove, or no other shape that fits where the group moves
                assert kind != "count" or all(len(s.objects) == 1 for s in spec.shots)
                continue
            made[kind] += 1
            before, after = _objects(spec), _objects(other)
            assert [(s.background, s.camera, s.bg_seed) for s in spec.shots] == \
                   [(s.background, s.camera, s.bg_seed) for s in other.shots]
            if kind == "count":  # exactly one object gone, the others untouched
                assert len(after) == len(before) - 1 and set(after) < set(before)
            elif kind == "bind":  # two groups of one shot exchanged one attribute; all else kept
                changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
                fields = {k for a, b in changed for k in range(1, 7) if a[k] != b[k]}
                assert len(fields) == 1 and fields < {1, 2, 3}  # colour, shape or direction
                k = fields.pop()
                assert len({a[0] for a, _ in changed}) == 1  # one shot
                was = {(a[1], a[2]): a[k] for a, _ in changed}  # two groups, their values exchanged
                assert len(was) == 2 and len(set(was.values())) == 2
                assert all({b[k], a[k]} == set(was.values()) for a, b in changed)
                assert not any((o.colour, o.shape) in world.HELD_OUT for s in other.shots for o in s.objects)
                assert all(len(world.groups(s)) == len(world.groups(t))
                           for s, t in zip(spec.shots, other.shots, strict=True))
            else:  # one (colour, shape) group took one new shape; positions and motion kept
                changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
                assert changed and len({(a[1], a[2], b[2]) for a, b in changed}) == 1
                assert all(a[:2] + a[3:] == b[:2] + b[3:] for a, b in changed)
                assert not any((o.colour, o.shape) in world.HELD_OUT for s in other.shots for o in s.objects)
            # still a valid world clip: objects in frame and apart, so the checker can read it
            for shot, (a, b) in zip(other.shots, other.shot_ranges(), strict=True):
                for j, o in enumerate(shot.objects):
                    assert world_specs._fits(o, b - a, other.height, other.width)
                    assert all(world_specs._apart(o, p, b - a) for p in shot.objects[j + 1:])
            assert not np.array_equal(world.render(spec), world.render(other))
    assert made["shape"] > 100 and made["count"] > 20 and made["bind"] > 10  # of 120 specs
    with pytest.raises(ValueError, match="kind"):
        counterfactual(spec, rng, "colour")
