"""Caption grammar for world clips: `caption(spec, rng)` words a spec; `parse(prompt)` reads one back.

Wording varies by synonyms (ball / disc / circle, moving / drifting / sliding, to the left /
leftwards), word order, count phrases ("two red squares", "a pair of"), speed adverbs, optional
size, background and camera phrases, and for two shots "..., then cut to ..." with the cut's
frame ("after 9 frames"). `parse` is best-effort and ignores words it does not know, so any
caption `caption` writes parses back to the same colours, shapes, counts, directions, speeds,
camera and cut frame (tests check this).
"""

from __future__ import annotations

import re

import numpy as np

from trustframe.generator.captions_zh import has_cjk, shape_alternatives_zh, split_shots_zh
from trustframe.generator.world import (
    BG_TINTS,
    ClipSpec,
    ObjectSpec,
    ShotSpec,
    groups,
)

SHAPE_WORDS: dict[str, tuple[tuple[str, str], ...]] = {  # shape -> (singular, plural) synonyms
    "circle": (("circle", "circles"), ("ball", "balls"), ("disc", "discs"), ("dot", "dots")),
    "square": (("square", "squares"), ("box", "boxes"), ("block", "blocks"), ("cube", "cubes")),
    "triangle": (("triangle", "triangles"), ("wedge", "wedges"), ("pyramid", "pyramids")),
    "star": (("star", "stars"), ("five-pointed star", "five-pointed stars"), ("starlet", "starlets")),
}
COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "scarlet"), "green": ("green", "lime"), "blue": ("blue", "azure"),
    "yellow": ("yellow", "golden"), "cyan": ("cyan", "turquoise"), "magenta": ("magenta", "pink"),
    "orange": ("orange", "amber"), "white": ("white", "snow-white"),
}  # fmt: skip
VERBS = ("moving", "drifting", "sliding", "travelling", "gliding", "heading", "floating")
DIRECTION_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("to the left", "leftwards", "left", "towards the left edge"),
    "right": ("to the right", "rightwards", "right", "towards the right edge"),
    "up": ("up", "upwards", "towards the top", "upward"),
    "down": ("down", "downwards", "towards the bottom", "downward"),
    "up-left": ("up and to the left", "towards the top left", "diagonally up-left", "up-left"),
    "up-right": ("up and to the right", "towards the top right", "diagonally up-right", "up-right"),
    "down-left": ("down and to the left", "towards the bottom left", "diagonally down-left", "down-left"),
    "down-right": ("down and to the right", "towards the bottom right", "diagonally down-right",
                   "down-right"),
}
SPEED_WORDS: dict[str, tuple[str, ...]] = {
    "slowly": ("slowly", "gently", "lazily"),
    "steadily": ("steadily", "at a steady pace", "at an even pace"),
    "quickly": ("quickly", "fast", "briskly"),
    "rapidly": ("rapidly", "very fast", "at high speed"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "medium": ("",),
                                          "large": ("large", "big")}
COUNT_WORDS = {1: ("a", "one", "a single"), 2: ("two", "a pair of"), 3: ("three", "a trio of")}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "solid": ("plain", "flat", "solid"),
    "gradient-horizontal": ("horizontally graded", "left-to-right gradient"),
    "gradient-vertical": ("vertically graded", "top-to-bottom gradient"),
    "stripes-horizontal": ("horizontally striped", "horizontal-striped"),
    "stripes-vertical": ("vertically striped", "vertical-striped"),
    "checker": ("checkered", "chequered"),
    "noise": ("mottled", "noisy"),
}
BACKDROP = ("background", "backdrop", "backdrop", "background")
CAMERA_WORDS: dict[str, tuple[str, ...]] = {
    "pan-left": ("as the camera pans left", "with the camera panning to the left", "camera pans left"),
    "pan-right": ("as the camera pans right", "with the camera panning to the right", "camera pans right"),
    "pan-up": ("as the camera pans up", "with the camera panning upwards", "camera pans up"),
    "pan-down": ("as the camera pans down", "with the camera panning downwards", "camera pans down"),
    "zoom-in": ("as the camera zooms in", "with a slow zoom in", "camera zooms in"),
    "zoom-out": ("as the camera zooms out", "with a slow zoom out", "camera zooms out"),
}
CUT_WORDS = ("{a}, then after {k} frames cut to {b}", "{a}. At frame {k}, cut to {b}",
             "{a}; {k} frames in, the scene cuts to {b}", "{a}, then cut at frame {k} to {b}")


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _group_phrase(objs: list[ObjectSpec], rng: np.random.Generator) -> str:
    o = objs[0]
    n = len(objs)
    singular, plural = _pick(rng, SHAPE_WORDS[o.shape])
    noun = singular if n == 1 else plural
    size = _pick(rng, SIZE_WORDS[o.size]) if rng.random() < 0.4 else ""
    colour = _pick(rng, COLOUR_WORDS[o.colour]) if rng.random() < 0.85 else o.colour
    count = _pick(rng, COUNT_WORDS[n])
    words = [w for w in (count, size, colour, noun) if w]
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    thing = " ".join(words)
    verb = _pick(rng, VERBS)
    direction = _pick(rng, DIRECTION_WORDS[o.direction])
    speed = _pick(rng, SPEED_WORDS[o.speed]) if rng.random() < 0.8 else ""
    form = int(rng.integers(4))
    if not speed or form == 0:
        parts = [thing, verb, direction, speed]
    elif form == 1:
        parts = [thing, speed, verb, direction] if " " not in speed else [thing, verb, speed, direction]
    elif form == 2:
        parts = [thing, "is", verb, direction, speed] if n == 1 else [thing, "are", verb, direction, speed]
    else:
        parts = [thing, verb, speed, direction] if " " not in speed else [thing, verb, direction, speed]
    return " ".join(p for p in parts if p)


def _shot_phrase(shot: ShotSpec, rng: np.random.Generator) -> str:
    phrases = [_group_phrase(objs, rng) for objs in groups(shot).values()]
    order = rng.permutation(len(phrases))
    phrases = [phrases[i] for i in order]
    if len(phrases) == 1:
        body = phrases[0]
    elif len(phrases) == 2:
        body = _pick(rng, ("{} and {}", "{}, while {}", "{}; {}")).format(*phrases)
    else:
        body = f"{phrases[0]}, {phrases[1]} and {phrases[2]}"
    if rng.random() < 0.6 or shot.camera:
        tint = shot.bg_tint
        kind = _pick(rng, BACKGROUND_WORDS[shot.background])
        bg = _pick(rng, (f"on a {tint} {kind} {_pick(rng, BACKDROP)}",
                         f"over a {kind} {tint} {_pick(rng, BACKDROP)}",
                         f"against a dark {tint} {kind} {_pick(rng, BACKDROP)}"))
        body = f"{body} {bg}" if rng.random() < 0.7 else f"{bg}, {body}"
    if shot.camera:
        cam = _pick(rng, CAMERA_WORDS[shot.camera])
        body = f"{body}, {cam}" if rng.random() < 0.7 else f"{cam}: {body}"
    return body


def caption(spec: ClipSpec, rng: np.random.Generator) -> str:
    """One varied English caption naming every object's colour, shape, count and direction,
    the camera, and for two shots the cut frame. Speeds and sizes are usually, not always, said."""
    shots = [_shot_phrase(s, rng) for s in spec.shots]
    if len(shots) == 1:
        text = shots[0]
    else:
        text = _pick(rng, CUT_WORDS).format(a=shots[0], b=shots[1], k=spec.cut_at)
    return text[0].upper() + text[1:] + "."


# ------------------------------------------------------------------------------------ parsing

def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True) if w)


_CAMERA_RE = re.compile(r"\b(?:pans?|panning)\s+(?:to\s+the\s+)?(left|right|up|down)(?:wards?)?\b"
                        r"|\bzoom(?:s|ing)?\s+(in|out)\b")
_CUT_RE = re.compile(r"\bcut(?:s|ting)?\s+(?:at\s+frame\s+\d+\s+)?to\b|\bthen\s+cut\b")
_FRAME_RE = re.compile(r"(?:after|at\s+frame)\s+(\d+)(?:\s+frames)?|(\d+)\s+frames\s+in\b")
_DIR_PHRASES = {p: d for d, ps in DIRECTION_WORDS.items() for p in ps}
_DIR_RE = re.compile(r"\b(" + _alternation(_DIR_PHRASES) + r")\b")
_SPEED_PHRASES = {p: s for s, ps in SPEED_WORDS.items() for p in ps}
_SPEED_RE = re.compile(r"\b(" + _alternation(_SPEED_PHRASES) + r")\b")
_SHAPE_PHRASES = {w: s for s, pairs in SHAPE_WORDS.items() for pair in pairs for w in pair}
_SHAPE_PHRASES.update({"balls": "circle", "ovals": "circle", "boxes": "square", "squares": "square"})
_SHAPE_RE = re.compile(r"\b(" + _alternation(_SHAPE_PHRASES) + r")\b")
_PLURALS = {pair[1] for pairs in SHAPE_WORDS.values() for pair in pairs}
_COLOUR_PHRASES = {w: c for c, ws in COLOUR_WORDS.items() for w in ws}
_COUNT_PHRASES = {"a": 1, "an": 1, "one": 1, "a single": 1, "single": 1, "two": 2, "a pair of": 2,
                  "pair of": 2, "2": 2, "three": 3, "a trio of": 3, "trio of": 3, "3": 3, "several": 3}
_TOKEN_RE = re.compile(
    r"(?P<dir>\b(?:" + _alternation(_DIR_PHRASES) + r")\b)"
    r"|(?P<speed>\b(?:" + _alternation(_SPEED_PHRASES) + r")\b)"
    r"|(?P<count>\b(?:" + _alternation(_COUNT_PHRASES) + r")\b)"
    r"|(?P<colour>\b(?:" + _alternation([w for w in _COLOUR_PHRASES if w != "grey"]) + r")\b)"
    r"|(?P<size>\b(?:" + _alternation([w for ws in SIZE_WORDS.values() for w in ws]) + r")\b)"
    r"|(?P<shape>\b(?:" + _alternation(_SHAPE_PHRASES) + r")\b)"
)
_SIZE_PHRASES = {w: s for s, ws in SIZE_WORDS.items() for w in ws if w}
_BG_KIND_PHRASES = {w: k for k, ws in BACKGROUND_WORDS.items() for w in ws}
_BG_RE = re.compile(r"\b(" + _alternation(BG_TINTS) + r")\b|\b(" + _alternation(_BG_KIND_PHRASES) + r")\b")


def _shape_swap_table(k: int) -> dict[str, str]:
    """Every shape word -> the word, same synonym slot and number, of the shape k places on."""
    shapes = list(SHAPE_WORDS)
    table = {}
    for i, shape in enumerate(shapes):
        target = SHAPE_WORDS[shapes[(i + k) % len(shapes)]]
        for j, pair in enumerate(SHAPE_WORDS[shape]):
            for number, word in enumerate(pair):
                table[word] = target[j % len(target)][number]
    for word, shape in _SHAPE_PHRASES.items():  # parse-only spellings ("ovals")
        target = SHAPE_WORDS[shapes[(shapes.index(shape) + k) % len(shapes)]]
        table.setdefault(word, target[0][1 if word.endswith("s") else 0])
    return table


_SHAPE_SWAPS = [_shape_swap_table(k) for k in range(1, len(SHAPE_WORDS))]


def shape_alternatives(prompt: str) -> list[str]:
    """The prompt (lowercased) with every shape word swapped for another shape's, once per other
    shape: len(SHAPE_WORDS) - 1 prompts, in each of which every shape goes to a different one. A prompt
    that names no shape comes back unchanged each time. The sampler's contrastive shape guidance
    pushes away from these. A prompt with Chinese in it: `captions_zh.shape_alternatives_zh`."""
    if has_cjk(prompt):
        return shape_alternatives_zh(prompt)
    text = prompt.lower()
    return [_SHAPE_RE.sub(lambda m, t=table: t[m.group(1)], text) for table in _SHAPE_SWAPS]


_CONNECTOR_RE = re.compile(r"(?:[\s,;.:]|\bthen\b|\bthe\s+scene\b)+$|^(?:[\s,;.:]|\bto\b)+")


def split_shots(prompt: str) -> tuple[list[str], int | None]:
    """A two-shot prompt -> (each shot's own words, the cut frame it names or None); any other
    prompt -> ([prompt], None).

    "A red ball moving left, then after 9 frames cut to two blue stars drifting up." gives
    (["a red ball moving left", "two blue stars drifting up"], 9): lowercased, without the cut phrase
    and its frame, as `parse` reads them. The generator samples each shot from its own words and
    joins the shots at the cut (`Generator.sample_batch`). A prompt with Chinese in it is read by
    `captions_zh.split_shots_zh` ("…，然后在第9帧切换到…").
    """
    if has_cjk(prompt):
        return split_shots_zh(prompt)
    text = prompt.lower().replace("—", ",")
    parts = _CUT_RE.split(text, maxsplit=1)
    if len(parts) != 2:
        return [prompt], None
    fm = _FRAME_RE.search(text)
    cut = int(fm.group(1) or fm.group(2)) if fm else None
    shots = [" ".join(_CONNECTOR_RE.sub("", _FRAME_RE.sub(" ", part)).strip(" ,;.:").split())
             for part in parts]
    if not all(shots):  # "cut to" with nothing on one side: not two shots
        return [prompt], None
    return shots, cut


def _parse_shot(text: str) -> ShotSpec | None:
    camera = None
    m = _CAMERA_RE.search(text)
    if m:
        camera = f"pan-{m.group(1)}" if m.group(1) else f"zoom-{m.group(2)}"
        text = text[:m.start()] + " " + text[m.end():]
    tint, background = "charcoal", "solid"
    for bm in _BG_RE.finditer(text):
        if bm.group(1):
            tint = bm.group(1)
        else:
            background = _BG_KIND_PHRASES[bm.group(2)]
    text = _BG_RE.sub(" ", text)
    objs: list[ObjectSpec] = []
    pending: dict = {}
    waiting: list[ObjectSpec] = []  # objects still without a direction / speed of their own
    speed_waiting: list[ObjectSpec] = []
    for m in _TOKEN_RE.finditer(text):
        kind, word = m.lastgroup, m.group(0)
        if kind == "count":
            pending["count"] = _COUNT_PHRASES[word]
        elif kind == "colour":
            pending["colour"] = _COLOUR_PHRASES[word]
        elif kind == "size":
            pending["size"] = _SIZE_PHRASES.get(word, "medium")
        elif kind == "shape":
            colour = pending.get("colour")
            if colour is None:
                pending = {}
                continue
            n = pending.get("count", 2 if word in _PLURALS else 1)
            group = [ObjectSpec(_SHAPE_PHRASES[word], colour, "right", "steadily",
                                pending.get("size", "medium")) for _ in range(n)]
            objs += group
            waiting += group
            speed_waiting += group
            pending = {}
        elif kind == "dir":
            for o in waiting:
                o.direction = _DIR_PHRASES[word]
            waiting = []
        elif kind == "speed":
            targets = speed_waiting or objs[-1:]
            for o in targets:
                o.speed = _SPEED_PHRASES[word]
            speed_waiting = []
    if not objs:
        return None
    return ShotSpec(objs, background, camera, tint)


def parse(prompt: str, *, frames: int | None = None, height: int = 64, width: int = 64) -> ClipSpec | None:
    """Best-effort prompt -> ClipSpec (colours, shapes, counts, directions, speeds, camera, cut).

    Object start positions are not in a prompt and are left at the frame centre. Returns None
    when no "colour shape" object is named. `frames` defaults to 16, or to what the prompt
    says ("24 frames", "for 24 frames") when it says it outside a cut phrase. The shots and the cut
    frame are those `split_shots` reads, as the generator samples them.
    """
    text = " " + prompt.lower().replace("—", ",") + " "
    parts, cut_at = split_shots(prompt)
    parts = [f" {p.lower().replace('—', ',')} " for p in parts]  # a one-shot prompt comes back as given
    if frames is None:
        m = re.search(r"\b(\d{1,3})[-\s]frames?\b", _FRAME_RE.sub(" ", text))
        frames = int(m.group(1)) if m else 16
    size = re.search(r"\b(\d{2,4})\s*[x×]\s*(\d{2,4})\b", text)
    if size:
        width, height = int(size.group(1)), int(size.group(2))
    shots = [s for s in (_parse_shot(p) for p in parts) if s is not None]
    if not shots:
        return None
    for s in shots:
        for o in s.objects:
            o.start = (width / 2, height / 2)
    if len(shots) == 2:
        if cut_at is None or not 0 < cut_at < frames:
            cut_at = frames // 2
    else:
        cut_at = None
    return ClipSpec(shots, cut_at, frames, height, width)


__all__ = ["caption", "parse", "shape_alternatives", "split_shots"]
