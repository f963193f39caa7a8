"""The analytic checker reads renders back to their specs, and notices when they differ."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from trustframe.generator import checker, world
from trustframe.generator.world import ClipSpec, ObjectSpec, ShotSpec
from trustframe.generator.world import specs as world_specs


def _one(shape="circle", colour="red", direction="right", background="noise", camera=None,
         frames=8, size="medium") -> ClipSpec:
    o = ObjectSpec(shape, colour, direction, "quickly", size)
    ok = world_specs._start_for(o, frames, np.random.default_rng(0), 64, 64)
    assert ok
    return ClipSpec([ShotSpec([o], background, camera, "slate", 3)], frames=frames)


def _agrees(spec: ClipSpec, frames: np.ndarray | None = None) -> dict[str, bool]:
    obs = checker.check(world.render(spec) if frames is None else frames)
    return checker.adherence(spec, obs)


@pytest.mark.parametrize("shape", world.SHAPES)
def test_every_shape_and_colour_reads_back(shape):
    for colour in world.COLOURS:
        res = _agrees(_one(shape, colour, size="small"))
        assert res["all"], (shape, colour, res)


@pytest.mark.parametrize("direction", world.DIRECTIONS)
def test_every_direction_reads_back_under_a_camera_move(direction):
    for camera in (None, "pan-left", "zoom-in"):
        assert _agrees(_one("star", "orange", direction, "stripes-vertical", camera))["all"]


def test_counts_and_multi_shot_cut():
    spec = world.sample_spec(np.random.default_rng(0), frames=16, multi_shot_p=1.0)
    a = ObjectSpec("square", "red", "left", "steadily", "medium", (24.0, 16.0))
    b = dataclasses.replace(a, start=(50.0, 46.0))
    spec.shots[0] = ShotSpec([a, b], "gradient-vertical", None, "grey", 1)
    obs = checker.check(world.render(spec))
    assert obs.cut == spec.cut_at
    assert obs.shots[0].objects[0].count == 2 and obs.shots[0].objects[0].direction == "left"
    assert checker.adherence(spec, obs)["all"]
    single = checker.check(world.render(_one(frames=16)))
    assert single.cut is None and len(single.shots) == 1


def test_random_renders_agree():
    rng = np.random.default_rng(11)
    for _ in range(25):
        spec = world.sample_spec(rng, frames=None, height=None, width=None, split="any",
                                 multi_shot_p=0.4, camera_p=0.4)
        assert _agrees(spec)["all"], spec


def test_tolerates_blur_noise_and_colour_drift():
    rng = np.random.default_rng(5)
    for shape in world.SHAPES:
        spec = _one(shape, "green", "down-left", "checker", "pan-up", frames=12, size="small")
        v = ndimage.gaussian_filter(world.render(spec).astype(float), (0, 0.8, 0.8, 0))
        v = v * np.array([1.05, 0.95, 1.04]) + rng.normal(0, 4, v.shape)
        assert _agrees(spec, np.clip(v, 0, 255).astype(np.uint8))["all"], shape


def test_adherence_notices_each_wrong_attribute():
    spec = _one("triangle", "blue", "up", frames=12)
    obs = checker.check(world.render(spec))
    assert checker.adherence(spec, obs)["all"]
    o = spec.shots[0].objects[0]
    for attr, value in (("colour", "yellow"), ("shape", "star"), ("direction", "down")):
        wrong = dataclasses.replace(spec, shots=[ShotSpec([dataclasses.replace(o, **{attr: value})])])
        res = checker.adherence(wrong, obs)
        assert not res[attr] and not res["all"]
    panned = dataclasses.replace(spec, shots=[dataclasses.replace(spec.shots[0], camera="pan-up")])
    res = checker.adherence(panned, obs)
    assert not res["camera"] and res["all"]  # camera is reported, not part of "all"
    two = dataclasses.replace(spec, shots=[ShotSpec([o, o])])
    assert not checker.adherence(two, obs)["count"]
    cut = dataclasses.replace(spec, shots=[spec.shots[0], spec.shots[0]], cut_at=6)
    assert not checker.adherence(cut, obs)["cut"]


def test_empty_and_single_frame_input():
    bg = world.render(ClipSpec([ShotSpec([], "noise", "pan-right", "teal", 2)], frames=6))
    obs = checker.check(bg)
    assert obs.cut is None and obs.shots[0].objects == []
    img = checker.check(world.render(_one(frames=1))[0])
    assert img.cut is None and len(img.shots[0].objects) == 1
    assert img.shots[0].objects[0].direction == "none"
    with pytest.raises(ValueError):
        checker.check(np.zeros((4, 8, 8)))


@pytest.mark.parametrize("camera", [*world.CAMERAS, None])
def test_camera_moves_read_back(camera):
    backgrounds = world.CAMERA_BACKGROUNDS[camera] if camera else ("noise", "solid", "stripes-horizontal")
    for i, background in enumerate(backgrounds):
        spec = _one("circle", "white", "down", background, camera, frames=8 + 8 * (i % 2))
        obs = checker.check(world.render(spec))
        assert obs.shots[0].camera == camera, (background, obs.shots[0].camera)
        res = checker.adherence(spec, obs)
        assert res["camera"] and res["all"]
