"""Text normalisation, phrase matching and language detection for the prompt policy gate (`policy.py`).

Length: the script-by-script rules of 11 languages (folding, segmentation, obfuscation repair) are
one concern; each function below is one rule, in the order `fold` applies them.

What it holds:

* `fold`: one canonical form per prompt, whatever its script or disguise. NFKC (full-width and
  half-width forms, ligatures, compatibility characters), format characters (zero-width spaces
  and joiners, BOM, tags) and Arabic tatweel dropped, look-alike letters folded inside words that
  mix scripts only (a Latin word with a Cyrillic "а" slipped in becomes Latin, a Russian word
  with a Latin "a" becomes Cyrillic, a word wholly in Cyrillic stays Cyrillic unless the whole
  prompt is a Latin-looking disguise like "ѕех"), accents dropped from Latin and Greek letters
  (not from Cyrillic, Devanagari or kana, where they are part of the letter), Arabic vowel marks
  and letter variants (أ إ آ -> ا, ى -> ي, ة -> ه) and the Devanagari nukta unified, hiragana to
  katakana, Traditional Chinese to Simplified (OpenCC "t2s", dictionaries shipped in its wheel),
  case folded; separators and stray single characters between CJK characters ("斩 首", "斬-首",
  "섹1스") removed; then the policy's homophone table ("紫砂" -> "自杀") applied.
* `Normaliser.tokens`: the words of the folded text. Han, kana and Hangul characters are one token
  each (those scripts do not put spaces between words, or attach particles to them), so phrase
  rules match inside a sentence; other words are split on separators, letters spaced or dotted
  apart ("k i l l", "п о р н о") joined, and leetspeak and repeated letters undone ("k1ll",
  "kiiiill"), choosing among candidate spellings one the policy's vocabulary knows.
* `stem`: a crude Russian ending stripper, so "Путина" / "Путину" match "Путин".
* `PhraseIndex`: names, keywords and concepts matched in the tokens on word boundaries (also run
  together or split apart; CJK inside words; "*" = prefix of the last word; Russian by `stem`;
  Arabic with a clitic prefix), and `pinyin_spellings` of Chinese names and keywords (pypinyin).
* `detect_language`: an ISO 639-1 code from the scripts of the tokens and, for Latin script,
  stopwords and words learnt from the policy's labelled prompts ("mixed" for a prompt split
  between languages, "und" when there is no evidence).
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from functools import lru_cache
from itertools import groupby, product

# ---------------------------------------------------------------------------------------------
# Scripts


def _ranges(*spans: tuple[int, int]) -> str:
    return "".join(f"{chr(a)}-{chr(b)}" for a, b in spans)


_HAN = _ranges((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2FFFF)) + "\u3005\u3007"
_KANA = _ranges((0x3041, 0x3096), (0x3099, 0x309F), (0x30A1, 0x30FA), (0x30FC, 0x30FF), (0x31F0, 0x31FF))
_HANGUL = _ranges((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3131, 0x318E), (0xA960, 0xA97F), (0xD7B0, 0xD7FF))
_CJK = f"[{_HAN}{_KANA}{_HANGUL}]"
# Combining marks that are part of a word in scripts the gate reads (`\w` leaves them out).
_MARKS = ("\u0300-\u036f\u0483-\u0487\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
          "\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963\u3099\u309a")

_SCRIPT_SPANS = [
    (0x0041, 0x024F, "latin"), (0x0250, 0x02AF, "latin"), (0x1D00, 0x1DBF, "latin"),
    (0x1E00, 0x1EFF, "latin"),
    (0x0370, 0x03FF, "greek"), (0x1F00, 0x1FFF, "greek"),
    (0x0400, 0x052F, "cyrillic"), (0x1C80, 0x1C8F, "cyrillic"), (0xA640, 0xA69F, "cyrillic"),
    (0x0530, 0x058F, "armenian"),
    (0x0600, 0x06FF, "arabic"), (0x0750, 0x077F, "arabic"), (0x08A0, 0x08FF, "arabic"),
    (0xFB50, 0xFDFF, "arabic"), (0xFE70, 0xFEFF, "arabic"),
    (0x0900, 0x097F, "devanagari"), (0xA8E0, 0xA8FF, "devanagari"),
    (0x1100, 0x11FF, "hangul"), (0x3131, 0x318E, "hangul"), (0xAC00, 0xD7A3, "hangul"),
    (0x3041, 0x309F, "kana"), (0x30A1, 0x30FF, "kana"), (0x31F0, 0x31FF, "kana"),
    (0x3400, 0x4DBF, "han"), (0x4E00, 0x9FFF, "han"), (0xF900, 0xFAFF, "han"), (0x20000, 0x2FFFF, "han"),
]


@lru_cache(maxsize=8192)
def script(ch: str) -> str:
    """The script of one letter: latin, cyrillic, greek, armenian, arabic, devanagari, han, kana,
    hangul, or "other" (digits, symbols, other scripts)."""
    if not ch.isalpha():
        return "other"
    o = ord(ch)
    for a, b, name in _SCRIPT_SPANS:
        if a <= o <= b:
            return name
    return "other"


# ---------------------------------------------------------------------------------------------
# Look-alike letters

# Cyrillic, Greek and Armenian letters that stand in for Latin ones (from Unicode's confusables).
_TO_LATIN = {
    "а": "a", "в": "b", "г": "r", "д": "d", "е": "e", "ё": "e", "з": "3", "и": "u", "й": "u",
    "к": "k", "л": "n", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ь": "b", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ѡ": "w", "ѵ": "v",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "З": "3", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D",
    "Ү": "Y", "Һ": "H", "Ӏ": "I", "Ԛ": "Q", "Ԝ": "W",
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "ς": "s", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "μ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "զ": "q",
}
# Latin-script oddities and symbols that read as letters: folded everywhere.
_ALWAYS = str.maketrans({
    "ı": "i", "ȷ": "j", "ʀ": "r", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ʏ": "y", "ᴀ": "a", "ʙ": "b", "ᴄ": "c",
    "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n",
    "ᴏ": "o", "ᴘ": "p", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ø": "o", "Ø": "O",
    "ð": "d", "þ": "p", "ł": "l", "Ł": "L", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "€": "e",
    "£": "l", "¥": "y", "©": "c", "®": "r", "×": "x",
})
# Latin letters that stand in for Cyrillic ones (a Russian word with a Latin "a" slipped in).
_TO_CYRILLIC = {
    "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "k": "к", "m": "м", "t": "т",
    "i": "і", "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р",
    "T": "Т", "X": "Х", "Y": "У",
}
# Cyrillic and Greek letters that look exactly like a Latin letter: a word made only of these is
# a disguise ("а" in "а nаkеd wоmаn", "ѕех") when the prompt has no genuine Cyrillic or Greek word
# and either has Latin words or uses letters that Russian does not (ѕ, һ, ԁ, ...).
_STRONG = set("асеорхуѕіјһԁԛԝӏүѵѡкАВЕКМНОРСТХУЅІЈΑΒΕΖΗΙΚΜΝΟΡΤΥΧοικνρυχ")
_SPOOF = set("ѕјһԁԛԝӏүѵѡЅЈԀԚԜҮҺӀ")
_LETTERS = re.compile(r"[^\W\d_]+")
_FOREIGN = ("cyrillic", "greek", "armenian")


def _fold_lookalikes(text: str) -> str:
    """Fold look-alike letters in words that mix Latin with Cyrillic/Greek/Armenian, towards the
    script the word can be written in wholly (majority on a tie). Words in one script are kept,
    except words made only of exact look-alikes in a prompt with no genuine Cyrillic/Greek word."""
    runs = _LETTERS.findall(text)
    if not any(script(c) in _FOREIGN for r in runs for c in r):
        return text
    genuine = any(any(script(c) in _FOREIGN for c in r) and not all(c in _STRONG for c in r)
                  and not any(script(c) == "latin" for c in r) for r in runs)
    latin_context = any(script(c) == "latin" for r in runs for c in r)
    out = {}
    for r in runs:
        scripts = [script(c) for c in r]
        n_latin = scripts.count("latin")
        n_foreign = sum(s in _FOREIGN for s in scripts)
        if not n_foreign:
            continue
        if not n_latin:
            spoof = latin_context or any(c in _SPOOF for c in r)
            if not genuine and spoof and all(c in _STRONG for c in r):
                out[r] = "".join(_TO_LATIN.get(c, c) for c in r)
            continue
        can_latin = all(c in _TO_LATIN for c, s in zip(r, scripts, strict=True) if s in _FOREIGN)
        can_cyr = all(c in _TO_CYRILLIC for c, s in zip(r, scripts, strict=True) if s == "latin")
        cyr_word = "cyrillic" in scripts and (can_cyr and (not can_latin or n_foreign > n_latin))
        pairs = zip(r, scripts, strict=True)
        if cyr_word:
            out[r] = "".join(_TO_CYRILLIC.get(c, c) if s == "latin" else c for c, s in pairs)
        else:
            out[r] = "".join(_TO_LATIN.get(c, c) if s in _FOREIGN else c for c, s in pairs)
    if not out:
        return text
    return _LETTERS.sub(lambda m: out.get(m.group(), m.group()), text)


# ---------------------------------------------------------------------------------------------
# Folding

_ARABIC = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي",
                         "ـ": None})
_DROP_MARKS = re.compile(r"[\u064b-\u065f\u0670\u093c]")  # Arabic vowel marks, Devanagari nukta
_KANA_SHIFT = {c: c + 0x60 for c in range(0x3041, 0x3097)}  # hiragana -> katakana
_CJK_GAP = re.compile(rf"(?<={_CJK})(?:[\W_]*(?!{_CJK})[^\W_][\W_]*|[\W_]+)(?={_CJK})")
_STRAY = re.compile(r"[0-9a-z]")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _drop_cjk_gaps(text: str) -> str:
    """Separators between two CJK characters, and one stray Latin letter or digit with them."""
    def gap(m: re.Match) -> str:
        g = m.group()
        letters = [c for c in g if c.isalnum()]
        if not letters or (len(letters) == 1 and _STRAY.fullmatch(letters[0])):
            return ""
        return g
    return _CJK_GAP.sub(gap, text)


def fold(text: str) -> str:
    """The canonical form of `text` (see the module docstring); separators are kept."""
    text = unicodedata.normalize("NFKC", text).translate(_ALWAYS)
    chars = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf":  # zero-width spaces and joiners, BOM, bidi controls, tags
            continue
        chars.append(" " if cat in ("Cc", "Zs", "Zl", "Zp") else ch)
    text = _fold_lookalikes("".join(chars))
    # Accents off Latin and Greek letters only: NFD, drop a combining mark whose base is Latin/Greek.
    out, base = [], "other"
    for ch in unicodedata.normalize("NFD", text):
        if "\u0300" <= ch <= "\u036f" and base in ("latin", "greek"):
            continue
        if ch.isalpha():
            base = script(ch)
        out.append(ch)
    text = _DROP_MARKS.sub("", unicodedata.normalize("NFC", "".join(out)))
    text = text.translate(_ARABIC).translate(_KANA_SHIFT).replace("ё", "е").replace("Ё", "Е")
    if re.search(f"[{_HAN}]", text):
        text = _t2s().convert(text)
    return _drop_cjk_gaps(text.casefold())


# ---------------------------------------------------------------------------------------------
# Tokens

_LEET = {"0": "o", "1": "il", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "li", "+": "t"}
_TOKEN = re.compile(rf"{_CJK}|(?:(?!{_CJK})(?:[^\W_]|[{_MARKS}]|[@$!|+]))+")
_CJK_CHAR = re.compile(_CJK)
# Numbers with a unit keep their digits: "4k", "3d", "1080p", "60fps", "1920s", "35mm".
NUMBER_UNIT = re.compile(r"\d+(?:st|nd|rd|th|s|k|d|p|x|fps|mm|cm|m|km|h|hz|min|sec|am|pm|bit|gb|mb)?")
_MAX_CANDIDATES = 64  # spellings tried per word (2 readings x 6 ambiguous runs)


def is_cjk(token: str) -> bool:
    return len(token) == 1 and bool(_CJK_CHAR.match(token))


def _pieces(folded: str) -> list[str]:
    """Tokens of the folded text: one per CJK character; other words as written, with runs of
    >= 3 single letters split by exactly one separator ("k i l l", "n.u.d.e") joined."""
    words, run = [], []

    def flush():
        if len(run) >= 3:
            words.append("\0" + "".join(run))  # marked: the joiner may have swallowed an article
        else:
            words.extend(run)
        run.clear()

    prev_end = None
    for m in _TOKEN.finditer(folded):
        w = m.group().strip("!+")
        if not w:
            continue
        if is_cjk(w):
            flush()
            words.append(w)
        elif len(w) == 1:
            if run and m.start() - prev_end != 1:  # not exactly one separator: a new run
                flush()
            run.append(w)
        else:
            flush()
            words.append(w)
        prev_end = m.end()
    flush()
    return words


def join(words: list[str]) -> str:
    """Tokens back to text: CJK characters side by side, other words spaced."""
    out = []
    for i, w in enumerate(words):
        if i and not (is_cjk(w) and is_cjk(words[i - 1])):
            out.append(" ")
        out.append(w)
    return "".join(out)


class Normaliser:
    """Folds text (with a homophone table) and undoes leetspeak, repeated letters and joined
    articles, preferring spellings in `vocab`."""

    def __init__(self, vocab: frozenset[str] = frozenset(), homophones: dict[str, str] | None = None):
        self.vocab = vocab
        self.homophones = {}
        for k, v in (homophones or {}).items():
            fk, fv = _drop_cjk_gaps(fold(k)), fold(v)
            if fk and fk != fv:
                self.homophones[fk] = fv
        keys = sorted(self.homophones, key=len, reverse=True)
        # A key that starts with a Latin letter ("luo体") must start a word.
        self._homophone_re = re.compile("|".join(
            (r"(?<![a-z])" if k[0].isascii() else "") + re.escape(k) for k in keys)) if keys else None

    def fold(self, text: str) -> str:
        text = fold(text)
        if self._homophone_re is not None:
            text = self._homophone_re.sub(lambda m: self.homophones[m.group()], text)
        return text

    def repair(self, word: str) -> str:
        if word in self.vocab or NUMBER_UNIT.fullmatch(word):
            return word
        if not any(c.isalpha() for c in word):  # "1990", "$100": numbers, not leetspeak
            return word
        latin = all(script(c) in ("latin", "other") for c in word)
        options = []
        for ch, grp in groupby(word):
            n = len(list(grp))
            readings = _LEET.get(ch, ch) if latin else ch
            counts = (2, 1) if n >= 3 else (n,)
            options.append([r * k for r in readings for k in counts])
        total = 1
        for o in options:
            total *= len(o)
        if total == 1:  # one reading: "p0rn0" -> "porno"
            return "".join(o[0] for o in options)
        if total > _MAX_CANDIDATES:
            return "".join(o[0] for o in options)
        first = None
        for combo in product(*options):
            cand = "".join(combo)
            if cand in self.vocab:
                return cand
            first = first or cand
        return first

    def split_known(self, word: str, most: int = 4) -> list[str] | None:
        """`word` cut into the fewest (<= `most`) words of the vocabulary, each of 2-24 letters or the
        article "a", or None: letters spaced across two words were joined as one
        ("v i d e o p o r n o" -> "videoporno" -> "video", "porno")."""
        best: dict[int, list[str]] = {0: []}
        for i in range(len(word)):
            if i not in best or len(best[i]) >= most:
                continue
            for j in range(i + 1, min(len(word), i + 24) + 1):
                part = word[i:j]
                if (part in self.vocab and (len(part) >= 2 or part == "a")
                        and (j not in best or len(best[j]) > len(best[i]) + 1)):
                    best[j] = best[i] + [part]
        found = best.get(len(word))
        return found if found and len(found) >= 2 else None

    def tokens(self, text: str) -> list[str]:
        out = []
        for w in _pieces(self.fold(text)):
            if w.startswith("\0"):  # letters joined from "k i l l"; "a k i l l" -> "a", "kill"
                w = w[1:]
                if w[0] in "ai" and w not in self.vocab and self.repair(w[1:]) in self.vocab:
                    out.append(w[0])
                    w = w[1:]
                elif self.vocab and self.repair(w) not in self.vocab:
                    parts = self.split_known(w)
                    if parts:
                        out += parts
                        continue
            out.append(w if is_cjk(w) else self.repair(w))
        return out


# ---------------------------------------------------------------------------------------------
# Russian endings

def _words(text: str) -> list[str]:
    return text.split()


_RU_ENDINGS = sorted(_words("""а я о е ы и у ю ь й ом ем ой ей ою ею ам ям ах ях ов ев ых их ым им ую юю ая яя
ое ее ий ый ие ые ого его ому ему ыми ими ами ями ться тся ет ют ит ят"""), key=len, reverse=True)


def stem(word: str) -> str:
    """A Cyrillic word of >= 5 letters without its longest common Russian ending (leaving >= 4
    letters): "путина" -> "путин", "голая" -> "гол" is not done (too short); others unchanged."""
    if len(word) < 5 or script(word[0]) != "cyrillic":
        return word
    for e in _RU_ENDINGS:
        if word.endswith(e) and len(word) - len(e) >= 4:
            return word[: -len(e)]
    return word


# ---------------------------------------------------------------------------------------------
# Phrase matching

_ARABIC_CLITICS = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ب", "ل", "ف", "ك")


def _first_word_variants(word: str) -> list[str]:
    """`word`, and for an Arabic word the word without a leading conjunction/preposition/article."""
    out = [word]
    if word and script(word[0]) == "arabic":
        out += [word[len(p):] for p in _ARABIC_CLITICS if word.startswith(p) and len(word) - len(p) >= 3]
    return out


def pinyin_spellings(han: str, limit: int = 8) -> list[str]:
    """Toneless pinyin spellings of a string of Han characters (readings of heteronyms combined,
    at most `limit`; "ü" both as "v" and "u")."""
    from pypinyin import Style, pinyin

    readings = [r[:3] for r in pinyin(han, style=Style.NORMAL, heteronym=True)]
    out = []
    for combo in product(*readings):
        s = "".join(combo)
        out += [s, s.replace("v", "u")] if "v" in s else [s]
        if len(out) >= limit:
            break
    return list(dict.fromkeys(out))


class PhraseIndex:
    """Phrases (names, keywords) matched on word boundaries of the normalised text, also when
    their words were run together or split ("donaldtrump", "don ald trump"); a phrase ending in
    "*" matches as a prefix of its last word. Russian words are compared by `stem`."""

    def __init__(self, normaliser: Normaliser, entries: list[tuple[str, str]], strict: bool = False):
        self.exact: dict[str, tuple[str, int]] = {}
        self.prefix: dict[str, tuple[str, int]] = {}
        for phrase, label in entries:
            self.add(normaliser, phrase, label, strict)

    def add(self, normaliser: Normaliser, phrase: str, label: str, strict: bool = False) -> None:
        star = phrase.rstrip().endswith("*")
        words = normaliser.tokens(phrase.rstrip().rstrip("*"))
        if not words:
            return
        words = [stem(w) for w in words[:-1]] + [words[-1] if star else stem(words[-1])]
        key, table = "".join(words), (self.prefix if star else self.exact)
        if strict and table.get(key, (label,))[0] != label:
            raise ValueError(f"name {phrase!r} is listed for both {table[key][0]!r} and {label!r}")
        table.setdefault(key, (label, len(words)))

    def finish(self) -> PhraseIndex:
        keys = (*self.exact, *self.prefix)
        self.max_len = max((len(k) for k in keys), default=0)
        self.prefix_lens = sorted({len(k) for k in self.prefix})
        self.first_chars = frozenset(k[0] for k in keys)
        return self

    def matches(self, words: list[str]):
        """(start, end, label) of every entry found in `words`, leftmost first."""
        stems = None
        for i in range(len(words)):
            for first in _first_word_variants(words[i]):
                if first[:1] not in self.first_chars:
                    continue
                if stems is None:
                    stems = [stem(w) for w in words]
                s = ""
                for j in range(i, min(i + 12, len(words))):
                    raw = first if j == i else words[j]
                    prev, s = s, s + (stem(raw) if j == i else stems[j])
                    n = j - i + 1
                    hit = self.exact.get(s)
                    # A short entry must match whole words, not a concatenation of fragments.
                    if hit and (n == hit[1] or len(s) >= 6):
                        yield i, j + 1, hit[0]
                    if self.prefix_lens:
                        r = prev + raw  # a prefix entry is compared with the last word as written
                        lo = bisect_right(self.prefix_lens, len(prev))
                        for k in self.prefix_lens[lo:bisect_right(self.prefix_lens, len(r))]:
                            hit = self.prefix.get(r[:k])
                            if hit and (n == hit[1] or k >= 6):
                                yield i, j + 1, hit[0]
                    if len(s) >= self.max_len:
                        break

    def find(self, words: list[str]) -> tuple[str, str] | None:
        """(matched words, label) of the leftmost entry found, or None."""
        for i, j, label in self.matches(words):
            return " ".join(words[i:j]), label
        return None

    def labels(self, words: list[str]) -> list[str]:
        """Every label found, once each."""
        return sorted({label for _, _, label in self.matches(words)})


# ---------------------------------------------------------------------------------------------
# Language

# Frequent function words, enough to tell the Latin-script languages apart on short prompts.
STOPWORDS = {
    "en": _words("a an the of in on at with and is are to from by for his her their its this that into while "
          "over under as being who he she they it"),
    "es": _words("el la los las un una unos unas y del al con en por para que se su sus es esta este como "
          "mientras sobre sin hacia muy"),
    "fr": _words("le la les un une des et du au aux avec dans sur pour qui que se sa son ses est cette ce "
          "en par sous vers tres d l qu"),
    "de": _words("der die das ein eine einer einem einen und mit im in auf dem den des von zu ist sich "
          "bei fur uber aus nach wird zwei"),
    "pt": _words("o a os as um uma uns umas e do da dos das no na nos nas com em por para que se sua seu "
          "ao num numa sendo"),
}
_SCRIPT_LANG = {"han": "zh", "kana": "ja", "hangul": "ko", "cyrillic": "ru", "arabic": "ar",
                "devanagari": "hi", "greek": "el"}


def _trigrams(word: str) -> list[str]:
    w = f"<{word}>"
    return [w[i:i + 3] for i in range(len(w) - 2)]


class LanguageDetector:
    """Scripts of the tokens; for the Latin words, naive Bayes over stopwords and the words of the
    policy's labelled prompts per language (`lexicon`: language -> word counts). The Latin part
    counts as one language; a prompt whose largest language has < 70% of the letters is "mixed"."""

    def __init__(self, lexicon: dict[str, Counter] | None = None):
        counts: dict[str, Counter] = {lang: Counter() for lang in STOPWORDS}  # the Latin-script languages
        for lang, words in (lexicon or {}).items():
            if lang in counts:
                counts[lang].update(words)
        for lang, words in STOPWORDS.items():
            counts[lang].update({w: 5 for w in words})
        vocab = {w for c in counts.values() for w in c}
        self.known = frozenset(vocab)
        # Character trigrams of each language's words, for words in no lexicon ("cantando").
        grams = {lang: Counter(g for w, n in c.items() for g in _trigrams(w) for _ in range(min(n, 3)))
                 for lang, c in counts.items()}
        n_grams = len({g for c in grams.values() for g in c})
        self.tri: dict[str, dict[str, float]] = {}
        for lang, c in grams.items():
            total = sum(c.values()) + 0.5 * n_grams
            self.tri[lang] = {g: math.log((n + 0.5) / total) for g, n in c.items()}
            self.tri[lang][""] = math.log(0.5 / total)
        self.logp = {}
        self.unseen = {}
        for lang, c in counts.items():
            total = sum(c.values()) + 0.1 * len(vocab)
            self.logp[lang] = {w: math.log((n + 0.1) / total) for w, n in c.items()}
            self.unseen[lang] = math.log(0.1 / total)

    def latin_language(self, words: list[str]) -> str:
        known = [w for w in words if w in self.known]
        if known:
            return max(self.logp, key=lambda lang: sum(self.logp[lang].get(w, self.unseen[lang])
                                                       for w in known))
        grams = [g for w in words if w.isalpha() for g in _trigrams(w)]
        if len(grams) < 8:  # a name or two: no evidence
            return "und"
        return max(self.tri, key=lambda lang: sum(self.tri[lang].get(g, self.tri[lang][""]) for g in grams))

    def detect(self, words: list[str]) -> str:
        weight: Counter = Counter()
        latin = []
        for w in words:
            s = script(w[0]) if w else "other"
            if s == "latin":
                latin.append(w)
            elif s in _SCRIPT_LANG:
                weight[_SCRIPT_LANG[s]] += 3.0 if s in ("han", "kana") else 2.0 if s == "hangul" else len(w)
        if weight.get("ja") and weight.get("zh"):  # kanji in a sentence with kana: Japanese
            weight["ja"] += weight.pop("zh")
        if latin:
            weight[self.latin_language(latin)] += sum(len(w) for w in latin)
        if not weight:
            return "und"
        ranked = weight.most_common()
        if ranked[0][0] == "und" and len(ranked) > 1:  # unknown Latin words (names) beside another script
            ranked = ranked[1:]
            return ranked[0][0] if len(ranked) == 1 else "mixed"
        return ranked[0][0] if ranked[0][1] >= 0.7 * sum(weight.values()) else "mixed"
