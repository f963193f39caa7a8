"""Chinese caption grammar for world clips, Simplified and Traditional: `caption_zh(spec, rng)`.

The same world specs as `captions.caption` (colours, shapes, counts, directions, speeds, sizes,
backgrounds, camera moves, cuts: "…，然后在第9帧切换到…"), written in Simplified Chinese and, with
`script="traditional"`, converted to Traditional by OpenCC (s2t). Every piece the grammar writes is a
word of `LEXICON` (Simplified), each with an English gloss (`GLOSS`) used to initialise its embedding.

Reading Chinese: `to_simplified` normalises a prompt (NFKC, then OpenCC t2s), so both scripts become
the same text; `segment` splits a run of Chinese characters by longest match against a lexicon
(characters it cannot match are merged into one unknown run). `split_shots_zh` and
`shape_alternatives_zh` are the Chinese halves of `captions.split_shots` / `captions.shape_alternatives`,
which call them for any prompt with Chinese characters in it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np

from trustframe.generator.world import ClipSpec, ObjectSpec, ShotSpec, groups

CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{CJK}]")

# Each table: world value -> ((Simplified word, English gloss), ...). The first word is the plainest.
SHAPES_ZH = {
    "circle": (("圆形", "circle"), ("圆", "circle"), ("球", "ball"), ("圆盘", "disc"), ("圆点", "dot")),
    "square": (("正方形", "square"), ("方形", "square"), ("方块", "block"), ("盒子", "box"),
               ("立方体", "cube")),
    "triangle": (("三角形", "triangle"), ("三角", "triangle"), ("楔形", "wedge"), ("金字塔", "pyramid")),
    "star": (("星形", "star"), ("星星", "star"), ("五角星", "five pointed star")),
}
COLOURS_ZH = {
    "red": (("红色", "red"), ("红", "red"), ("鲜红色", "scarlet")),
    "green": (("绿色", "green"), ("绿", "green"), ("黄绿色", "lime")),
    "blue": (("蓝色", "blue"), ("蓝", "blue"), ("天蓝色", "azure")),
    "yellow": (("黄色", "yellow"), ("黄", "yellow"), ("金黄色", "golden")),
    "cyan": (("青色", "cyan"), ("蓝绿色", "turquoise")),
    "magenta": (("品红色", "magenta"), ("洋红色", "magenta"), ("粉红色", "pink")),
    "orange": (("橙色", "orange"), ("橘色", "orange"), ("琥珀色", "amber")),
    "white": (("白色", "white"), ("白", "white"), ("雪白色", "snow white")),
}
COUNTS_ZH = {1: (("一个", "a"), ("一颗", "one"), ("一个", "a single")),
             2: (("两个", "two"), ("两颗", "two"), ("一对", "a pair of")),
             3: (("三个", "three"), ("三颗", "three"))}
SIZES_ZH = {"small": (("小", "small"), ("较小的", "little"), ("小小的", "tiny")),
            "medium": (("", ""),), "large": (("大", "large"), ("较大的", "big"))}
VERBS_ZH = (("移动", "moving"), ("飘动", "floating"), ("滑动", "sliding"), ("行进", "travelling"),
            ("滑行", "gliding"), ("前进", "heading"), ("漂移", "drifting"))
DIRECTIONS_ZH = {
    "left": (("向左", "to the left"), ("往左", "leftwards"), ("朝左", "left"),
             ("朝左边缘", "towards the left edge")),
    "right": (("向右", "to the right"), ("往右", "rightwards"), ("朝右", "right"),
              ("朝右边缘", "towards the right edge")),
    "up": (("向上", "up"), ("往上", "upwards"), ("朝顶部", "towards the top"), ("朝上方", "upward")),
    "down": (("向下", "down"), ("往下", "downwards"), ("朝底部", "towards the bottom"),
             ("朝下方", "downward")),
    "up-left": (("向左上", "up and to the left"), ("往左上方", "up left"),
                ("朝左上角", "towards the top left")),
    "up-right": (("向右上", "up and to the right"), ("往右上方", "up right"),
                 ("朝右上角", "towards the top right")),
    "down-left": (("向左下", "down and to the left"), ("往左下方", "down left"),
                  ("朝左下角", "towards the bottom left")),
    "down-right": (("向右下", "down and to the right"), ("往右下方", "down right"),
                   ("朝右下角", "towards the bottom right")),
}
SPEEDS_ZH = {
    "slowly": (("缓慢地", "slowly"), ("慢慢地", "slowly"), ("悠闲地", "lazily"), ("轻轻地", "gently")),
    "steadily": (("平稳地", "steadily"), ("匀速", "at an even pace"), ("稳稳地", "at a steady pace")),
    "quickly": (("快速", "quickly"), ("迅速地", "quickly"), ("很快地", "fast"), ("轻快地", "briskly")),
    "rapidly": (("飞快地", "rapidly"), ("极快地", "very fast"), ("高速", "at high speed")),
}
TINTS_ZH = {"black": (("黑色", "black"),), "charcoal": (("炭灰色", "charcoal"),), "grey": (("灰色", "grey"),),
            "slate": (("石板灰色", "slate"),), "navy": (("藏青色", "navy"),), "teal": (("深青色", "teal"),),
            "olive": (("橄榄色", "olive"),), "maroon": (("栗色", "maroon"),), "brown": (("棕色", "brown"),),
            "plum": (("深紫色", "plum"),)}
BACKGROUNDS_ZH = {
    "solid": (("纯色", "plain"), ("单色", "solid")),
    "gradient-horizontal": (("水平渐变", "horizontally graded"),),
    "gradient-vertical": (("垂直渐变", "vertically graded"),),
    "stripes-horizontal": (("横条纹", "horizontally striped"),),
    "stripes-vertical": (("竖条纹", "vertically striped"),),
    "checker": (("棋盘格", "checkered"),),
    "noise": (("斑驳", "mottled"), ("噪点", "noisy")),
}
CAMERAS_ZH = {
    "pan-left": (("向左平移", "pans left"), ("向左摇", "panning to the left")),
    "pan-right": (("向右平移", "pans right"), ("向右摇", "panning to the right")),
    "pan-up": (("向上平移", "pans up"), ("向上摇", "panning upwards")),
    "pan-down": (("向下平移", "pans down"), ("向下摇", "panning downwards")),
    "zoom-in": (("推近", "zooms in"), ("拉近", "zoom in"), ("放大", "zooms in")),
    "zoom-out": (("拉远", "zooms out"), ("缩小", "zoom out")),
}
# Function words the templates below use, with their glosses.
FUNCTION_ZH = {"的": "the", "正在": "is", "在": "on", "背景上": "background", "背景是": "background",
               "底色上": "backdrop", "同时": "while", "还有": "and", "和": "and", "镜头": "camera",
               "摄像机": "camera", "随着": "as the", "然后": "then", "第": "at frame", "帧": "frames",
               "帧后": "after frames", "帧时": "at frame", "之后": "after", "切换到": "cut to",
               "切换为": "cuts to", "切到": "cut to", "画面": "the scene", "场景": "the scene"}
CONTENT_TABLES = (SHAPES_ZH, COLOURS_ZH, COUNTS_ZH, SIZES_ZH, DIRECTIONS_ZH, SPEEDS_ZH, TINTS_ZH,
                  BACKGROUNDS_ZH, CAMERAS_ZH)


def _gloss() -> dict[str, str]:
    out: dict[str, str] = {}
    for table in CONTENT_TABLES:
        for options in table.values():
            for word, gloss in options:
                if word:
                    out.setdefault(word, gloss)
    for word, gloss in VERBS_ZH:
        out.setdefault(word, gloss)
    for word, gloss in FUNCTION_ZH.items():
        out.setdefault(word, gloss)
    return out


GLOSS: dict[str, str] = _gloss()  # Simplified word -> English words it stands for
LEXICON: tuple[str, ...] = tuple(sorted(GLOSS))
# Words that carry no content of their own: the unknown-word rule does not count them.
FUNCTION_WORDS: frozenset[str] = frozenset(FUNCTION_ZH) - {"镜头", "摄像机", "切换到", "切换为", "切到", "帧"}


def has_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


@lru_cache(maxsize=2)
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """NFKC, lowercase, Traditional -> Simplified (OpenCC t2s): both scripts give the same text."""
    return _opencc("t2s").convert(unicodedata.normalize("NFKC", text).lower())


def to_traditional(text: str) -> str:
    return _opencc("s2t").convert(text)


def segment(run: str, lexicon: frozenset[str] | set[str], max_len: int = 0) -> list[tuple[str, bool]]:
    """A run of Chinese characters -> [(word, known)]: greedy longest match against `lexicon`;
    consecutive characters that start no lexicon word are joined into one unknown word."""
    max_len = max_len or max((len(w) for w in lexicon), default=1)
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(run):
        for n in range(min(max_len, len(run) - i), 0, -1):
            if run[i:i + n] in lexicon:
                out.append((run[i:i + n], True))
                i += n
                break
        else:
            if out and not out[-1][1]:
                out[-1] = (out[-1][0] + run[i], False)
            else:
                out.append((run[i], False))
            i += 1
    return out


_LEXICON_SET = frozenset(LEXICON)
_MAX_LEN = max(len(w) for w in LEXICON)


def zh_words(text: str) -> list[str]:
    """The grammar's own segmentation of (already Simplified) Chinese text, punctuation dropped."""
    return [w for run in re.findall(f"[{CJK}]+|[a-z0-9]+", text)
            for w, _ in (segment(run, _LEXICON_SET, _MAX_LEN) if has_cjk(run) else [(run, True)])]


# ------------------------------------------------------------------------------------ writing

def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))][0]


def _group_phrase(objs: list[ObjectSpec], rng: np.random.Generator) -> str:
    o = objs[0]
    count = _pick(rng, COUNTS_ZH[len(objs)])
    size = _pick(rng, SIZES_ZH[o.size]) if rng.random() < 0.4 else ""
    colour = _pick(rng, COLOURS_ZH[o.colour]) if rng.random() < 0.85 else COLOURS_ZH[o.colour][0][0]
    de = "的" if rng.random() < 0.5 else ""
    thing = count + size + colour + de + _pick(rng, SHAPES_ZH[o.shape])
    verb = VERBS_ZH[int(rng.integers(len(VERBS_ZH)))][0]
    direction = _pick(rng, DIRECTIONS_ZH[o.direction])
    speed = _pick(rng, SPEEDS_ZH[o.speed]) if rng.random() < 0.8 else ""
    form = int(rng.integers(3))
    if form == 0:
        return thing + speed + direction + verb
    if form == 1:
        return thing + direction + speed + verb
    return thing + "正在" + speed + direction + verb


def _shot_phrase(shot: ShotSpec, rng: np.random.Generator) -> str:
    phrases = [_group_phrase(objs, rng) for objs in groups(shot).values()]
    phrases = [phrases[i] for i in rng.permutation(len(phrases))]
    if len(phrases) == 1:
        body = phrases[0]
    elif len(phrases) == 2:
        body = ("{}，{}", "{}，同时{}", "{}；{}", "{}和{}")[int(rng.integers(4))].format(*phrases)
    else:
        body = ("{}，{}，还有{}", "{}，{}和{}")[int(rng.integers(2))].format(*phrases)
    if rng.random() < 0.6 or shot.camera:
        tint, kind = _pick(rng, TINTS_ZH[shot.bg_tint]), _pick(rng, BACKGROUNDS_ZH[shot.background])
        form = int(rng.integers(3))
        if form == 0:
            body = f"在{tint}{kind}背景上，{body}"
        elif form == 1:
            body = f"{body}，背景是{tint}{kind}"
        else:
            body = f"{body}，在{kind}的{tint}底色上"
    if shot.camera:
        move = _pick(rng, CAMERAS_ZH[shot.camera])
        cam = "镜头" if rng.random() < 0.7 else "摄像机"
        form = int(rng.integers(3))
        if form == 0:
            body = f"{body}，{cam}{move}"
        elif form == 1:
            body = f"随着{cam}{move}，{body}"
        else:
            body = f"{body}，同时{cam}{move}"
    return body


CUTS_ZH = ("{a}，然后在第{k}帧切换到{b}", "{a}。第{k}帧时，画面切换到{b}", "{a}，{k}帧后切到{b}",
           "{a}；{k}帧之后，场景切换为{b}", "{a}，然后第{k}帧切换到{b}")


def caption_zh(spec: ClipSpec, rng: np.random.Generator, script: str = "simplified") -> str:
    """One varied Chinese caption of `spec` (as `captions.caption` words it in English), in
    `script` "simplified" or "traditional"."""
    if script not in ("simplified", "traditional"):
        raise ValueError(f"script must be simplified or traditional, not {script!r}")
    shots = [_shot_phrase(s, rng) for s in spec.shots]
    if len(shots) == 1:
        text = shots[0]
    else:
        text = CUTS_ZH[int(rng.integers(len(CUTS_ZH)))].format(a=shots[0], b=shots[1], k=spec.cut_at)
    text += "。"
    return to_traditional(text) if script == "traditional" else text


# ------------------------------------------------------------------------------------ reading

_NUMERALS = {c: i for i, c in enumerate("零一二三四五六七八九")}


def _chinese_number(s: str) -> int | None:
    """'9' / '九' / '十二' / '二十' -> int (0..99); None if it is not one."""
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        t = _NUMERALS.get(tens, -1) if tens else 1
        o = _NUMERALS.get(ones, -1) if ones else 0
        return None if t < 0 or o < 0 else 10 * t + o
    return _NUMERALS.get(s) if len(s) == 1 else None


_NUM = r"([0-9]+|[零一二三四五六七八九十]+)"
_CUT_ZH_RE = re.compile(r"切换(?:到|为|至)|切到")
_FRAME_ZH_RE = re.compile(rf"(?:在)?第{_NUM}帧(?:时)?|{_NUM}帧(?:之)?后")
_EDGE = r"(?:[\s,;.:!，。；：、]|然后|画面|场景|接着)+"
_EDGE_ZH = re.compile(f"^{_EDGE}|{_EDGE}$")


def split_shots_zh(prompt: str) -> tuple[list[str], int | None]:
    """`captions.split_shots` for Chinese: "…，然后在第9帧切换到…" -> ([shot a, shot b], 9), each shot
    in Simplified without the cut phrase; any other prompt -> ([prompt], None)."""
    text = to_simplified(prompt)
    parts = _CUT_ZH_RE.split(text, maxsplit=1)
    if len(parts) != 2:
        return [prompt], None
    cut = None
    fm = _FRAME_ZH_RE.search(text)
    if fm:
        cut = _chinese_number(fm.group(1) or fm.group(2))
    shots = []
    for part in parts:
        part = _FRAME_ZH_RE.sub("，", part)
        for _ in range(3):
            part = _EDGE_ZH.sub("", part.strip())
        shots.append(part)
    if not all(shots):
        return [prompt], None
    return shots, cut


def _shape_swaps_zh(k: int) -> dict[str, str]:
    shapes = list(SHAPES_ZH)
    table = {}
    for i, shape in enumerate(shapes):
        target = SHAPES_ZH[shapes[(i + k) % len(shapes)]]
        for j, (word, _) in enumerate(SHAPES_ZH[shape]):
            table[word] = target[j % len(target)][0]
    return table


_SHAPE_SWAPS_ZH = [_shape_swaps_zh(k) for k in range(1, len(SHAPES_ZH))]


def shape_alternatives_zh(prompt: str) -> list[str]:
    """`captions.shape_alternatives` for Chinese: the prompt (Simplified) with every shape word
    swapped for another shape's, once per other shape. Words are found as the tokenizer finds them
    (longest match), so "三角形" is a triangle, not a "三" count."""
    text = to_simplified(prompt)
    out = []
    for table in _SHAPE_SWAPS_ZH:
        pieces = []
        for run in re.split(f"([{CJK}]+)", text):
            if has_cjk(run):
                pieces += [table.get(w, w) for w, _ in segment(run, _LEXICON_SET, _MAX_LEN)]
            else:
                pieces.append(run)
        out.append("".join(pieces))
    return out


__all__ = ["GLOSS", "LEXICON", "caption_zh", "has_cjk", "segment", "shape_alternatives_zh", "split_shots_zh",
           "to_simplified", "to_traditional", "zh_words"]
