"""The prompt policy gate: refuse prompts for extreme violence, sexual content, hateful imagery or
the likeness of a real public figure, before anything is generated.

Two layers over one normalised text (see `normalise`):

* rules from the operator-editable policy file (`policy/policy.toml`): names of real public
  figures (category "public-figure") and unambiguous keywords per category;
* a scikit-learn classifier (TF-IDF word 1-2-grams + char 2-5-grams + char 3-5-grams of the
  text with its spaces removed -> multinomial logistic regression) trained when the policy is
  loaded (~0.3 s) on the policy file's examples plus the `train` split of `policy/prompts.jsonl`.
  Nothing is pickled or downloaded; editing the policy file retrains it on the next load.

Normalisation makes obfuscation cheap to undo: Unicode NFKC, look-alike letters (Cyrillic,
Greek, ...) to Latin, accents and zero-width/format characters dropped, case folded, letters
spaced or dotted apart ("k i l l", "n.u.d.e") joined, leetspeak (0->o, 1->i/l, 3->e, 4->a, 5->s,
7->t, @->a, $->s, ...) and repeated letters ("kiiiill") undone, choosing among the candidate
spellings one the policy's vocabulary knows.

Input contract: a non-`str` prompt raises TypeError. An empty prompt (no letters or digits) and
one longer than `max_prompt_chars` (2000 by default; checked before any other work, so a 1 MB
prompt costs microseconds) are refused with category "invalid-prompt": the gate fails closed.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import groupby, product
from pathlib import Path

from trustframe.errors import ConfigError, PolicyRefusal

POLICY_DIR = Path(__file__).with_name("policy")
DEFAULT_POLICY_FILE = POLICY_DIR / "policy.toml"
ALLOWED = "allowed"
PUBLIC_FIGURE = "public-figure"
INVALID = "invalid-prompt"
RESERVED = {ALLOWED, PUBLIC_FIGURE, INVALID}

__all__ = ["Policy", "PolicyDecision", "check_prompt", "enforce", "load_policy", "normalise"]


@dataclass(frozen=True)
class PolicyDecision:
    """`allowed`; the refused `category` (None when allowed); a one-line `reason`; `score` in
    [0, 1]: the classifier's probability that the prompt is not allowed, 1.0 for a rule match."""

    allowed: bool
    category: str | None
    reason: str
    score: float


# ---------------------------------------------------------------------------------------------
# Normalisation

# Look-alike letters NFKC leaves alone -> Latin: the Cyrillic, Greek, Armenian, small-capital and
# symbol entries of Unicode's confusables.txt that stand in for Latin letters in practice.
_CONFUSABLES = {
    # Cyrillic lower / upper
    "а": "a", "в": "b", "г": "r", "д": "d", "е": "e", "ё": "e", "з": "3", "и": "u", "й": "u",
    "к": "k", "л": "n", "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ь": "b", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ԛ": "q",
    "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ɡ": "g", "ѡ": "w", "ѵ": "v",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "З": "3", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D",
    "Ү": "Y", "Һ": "H", "Ӏ": "I", "Ԛ": "Q", "Ԝ": "W",
    # Greek lower / upper
    "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "σ": "o", "ς": "s", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "μ": "u",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Armenian, Latin extensions and symbols that read as letters
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "զ": "q", "ı": "i", "ȷ": "j", "ʀ": "r", "ɑ": "a",
    "ɩ": "i", "ʏ": "y", "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h",
    "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ꜱ": "s",
    "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z", "ø": "o", "Ø": "O", "ð": "d", "þ": "p",
    "ł": "l", "Ł": "L", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "€": "e", "£": "l", "¥": "y",
    "©": "c", "®": "r", "×": "x",
}
_CONFUSABLES_TABLE = str.maketrans(_CONFUSABLES)

# Leetspeak: each symbol's readings, most likely first (the first one is used when the
# vocabulary knows none of the candidate spellings).
_LEET = {"0": "o", "1": "il", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "li", "+": "t"}
_PIECE = re.compile(r"(?:[^\W_]|[@$!|+])+")
# Numbers with a unit keep their digits: "4k", "3d", "1080p", "60fps", "1920s", "35mm".
_NUMBER_UNIT = re.compile(r"\d+(?:st|nd|rd|th|s|k|d|p|x|fps|mm|cm|m|km|h|hz|min|sec|am|pm|bit|gb|mb)?")
_MAX_CANDIDATES = 64  # spellings tried per word (2 readings x 6 ambiguous runs)


def _fold(text: str) -> str:
    """NFKC, look-alikes to Latin, accents and format characters (zero-width, BOM, tags) dropped,
    case folded. Whitespace and other separators are kept as they are."""
    text = unicodedata.normalize("NFKC", text).translate(_CONFUSABLES_TABLE)
    out = []
    for ch in unicodedata.normalize("NFD", text):
        cat = unicodedata.category(ch)
        if cat in ("Mn", "Me", "Cf"):  # combining marks (accents), zero-width and format chars
            continue
        out.append(" " if cat in ("Cc", "Zs", "Zl", "Zp") else ch)
    return "".join(out).casefold()


def _pieces(folded: str) -> list[str]:
    """Words of the folded text, with runs of >= 3 single characters split by one separator
    ("k i l l", "n.u.d.e", "s-e-x") joined back into one word."""
    spans = [(m.start(), m.end()) for m in _PIECE.finditer(folded)]
    words, run = [], []

    def flush():
        if len(run) >= 3:
            words.append("\0" + "".join(run))  # marked: the joiner may have swallowed an article
        else:
            words.extend(run)
        run.clear()

    prev_end = None
    for start, end in spans:
        w = folded[start:end].strip("!+")
        if not w:
            continue
        if len(w) == 1:
            if run and start - prev_end != 1:  # not exactly one separator: a new run
                flush()
            run.append(w)
        else:
            flush()
            words.append(w)
        prev_end = end
    flush()
    return words


class _Normaliser:
    """Undoes leetspeak, repeated letters and joined articles, preferring spellings in `vocab`."""

    def __init__(self, vocab: frozenset[str] = frozenset()):
        self.vocab = vocab

    def repair(self, word: str) -> str:
        if word in self.vocab or _NUMBER_UNIT.fullmatch(word):
            return word
        if not any(c.isalpha() for c in word):  # "1990", "$100": numbers, not leetspeak
            return word
        options = []
        for ch, grp in groupby(word):
            n = len(list(grp))
            readings = _LEET.get(ch, ch)
            counts = (2, 1) if n >= 3 else (n,)
            options.append([r * k for r in readings for k in counts])
        total = 1
        for o in options:
            total *= len(o)
        if total > _MAX_CANDIDATES:
            return "".join(o[0] for o in options)
        first = None
        for combo in product(*options):
            cand = "".join(combo)
            if cand in self.vocab:
                return cand
            first = first or cand
        return first

    def tokens(self, text: str) -> list[str]:
        out = []
        for w in _pieces(_fold(text)):
            if w.startswith("\0"):  # letters joined from "k i l l"; "a k i l l" -> "a", "kill"
                w = w[1:]
                if w[0] in "ai" and w not in self.vocab and self.repair(w[1:]) in self.vocab:
                    out.append(w[0])
                    w = w[1:]
            out.append(self.repair(w))
        return out


def normalise(text: str, policy: Policy | None = None) -> str:
    """The text the gate classifies: folded, de-obfuscated words joined by single spaces."""
    policy = policy or load_policy()
    return " ".join(policy._rules().normaliser.tokens(text))


# ---------------------------------------------------------------------------------------------
# The policy file


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    keywords: tuple[str, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class PublicFigure:
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(eq=False)
class Policy:
    """A parsed policy file. Its classifier and rule index are built on first use and kept."""

    path: Path
    categories: dict[str, Category]
    public_figures: tuple[PublicFigure, ...]
    allow_examples: tuple[str, ...]
    allow_phrases: tuple[str, ...]
    threshold: float = 0.5
    max_prompt_chars: int = 2000
    training_file: Path | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def _rules(self) -> _Rules:
        if "rules" not in self._cache:
            self._cache["rules"] = _Rules(self)
        return self._cache["rules"]

    def _classifier(self) -> _Classifier:
        if "classifier" not in self._cache:
            self._cache["classifier"] = _Classifier(self, self._rules().normaliser)
        return self._cache["classifier"]

    def training_rows(self) -> list[tuple[str, str]]:
        """(text, label) pairs the classifier learns from: the policy's descriptions and examples, then the
        training file's `train` split (rows whose label is not a category here are skipped;
        public figures are left to the name rules)."""
        rows = [(t, c.name) for c in self.categories.values() for t in (c.description, *c.examples) if t]
        rows += [(t, ALLOWED) for t in self.allow_examples]
        if self.training_file is not None:
            for line in self.training_file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    if r.get("split") == "train" and (r["label"] in self.categories or r["label"] == ALLOWED):
                        rows.append((r["text"], r["label"]))
        return rows


def _resolve(path: str | os.PathLike | None) -> Path:
    if path is None:
        from trustframe.settings import load_settings

        path = load_settings().policy_file or DEFAULT_POLICY_FILE
    return Path(path).expanduser().resolve()


def load_policy(path: str | os.PathLike | None = None) -> Policy:
    """Read a policy file: `path`, else the `policy_file` setting, else the packaged one.

    Cached per file and modification time, so an edited file is re-read (and its classifier
    retrained) on the next call. Raises ConfigError for a missing or malformed file.
    """
    p = _resolve(path)
    try:
        st = p.stat()
    except OSError as e:
        raise ConfigError(f"policy file {p}: {e.strerror or e}") from e
    return _load_cached(p, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _load_cached(path: Path, mtime_ns: int, size: int) -> Policy:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"policy file {path}: {e}") from e
    try:
        gate = doc.get("gate", {})
        cats = {}
        for name, c in doc.get("categories", {}).items():
            if name in RESERVED:
                raise ValueError(f"category name {name!r} is reserved")
            cats[name] = Category(name, str(c.get("description", "")), tuple(c.get("keywords", ())),
                                  tuple(c.get("examples", ())))
        figures = tuple(PublicFigure(str(f["name"]), tuple(f.get("aliases", ()))) 
                        for f in doc.get("public_figures", {}).get("people", ()))
        allowed = doc.get("allowed", {})
        training = gate.get("training_file")
        tf = None
        if training:
            tf = next((d / training for d in (path.parent, POLICY_DIR) if (d / training).is_file()), None)
            if tf is None:
                raise ValueError(f"training_file {training!r} not found next to the policy or packaged")
        policy = Policy(path=path, categories=cats, public_figures=figures,
                        allow_examples=tuple(allowed.get("examples", ())),
                        allow_phrases=tuple(allowed.get("phrases", ())),
                        threshold=float(gate.get("threshold", 0.5)),
                        max_prompt_chars=int(gate.get("max_prompt_chars", 2000)), training_file=tf)
        if not 0.0 < policy.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {policy.threshold}")
        if policy.max_prompt_chars < 1:
            raise ValueError("max_prompt_chars must be positive")
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"policy file {path}: {e}") from e
    return policy


# ---------------------------------------------------------------------------------------------
# Rules and classifier


class _PhraseIndex:
    """Phrases (names, keywords) matched on word boundaries of the normalised text, also when
    their words were run together or split ("donaldtrump", "don ald trump")."""

    def __init__(self, normaliser: _Normaliser, entries: list[tuple[str, str]]):
        self.index: dict[str, tuple[str, int]] = {}
        for phrase, label in entries:
            words = normaliser.tokens(phrase)
            if words:
                self.index.setdefault("".join(words), (label, len(words)))
        self.max_len = max((len(k) for k in self.index), default=0)

    def find(self, words: list[str]) -> tuple[str, str] | None:
        for i in range(len(words)):
            s = ""
            for j in range(i, min(i + 12, len(words))):
                s += words[j]
                if len(s) > self.max_len:
                    break
                hit = self.index.get(s)
                # A short entry must match whole words, not a concatenation of fragments.
                if hit and (j - i + 1 == hit[1] or len(s) >= 6):
                    return " ".join(words[i:j + 1]), hit[0]
        return None


class _Rules:
    def __init__(self, policy: Policy):
        plain = _Normaliser()
        vocab = set()
        for text, _ in policy.training_rows():
            vocab.update(w for w in plain.tokens(text) if w.isalpha() or _NUMBER_UNIT.fullmatch(w))
        extra = [n for f in policy.public_figures for n in (f.name, *f.aliases)]
        extra += [k for c in policy.categories.values() for k in c.keywords] + list(policy.allow_phrases)
        for phrase in extra:
            vocab.update(w for w in plain.tokens(phrase) if w.isalpha())
        self.normaliser = _Normaliser(frozenset(vocab))
        self.figures = _PhraseIndex(self.normaliser, [(n, f.name) for f in policy.public_figures
                                                      for n in (f.name, *f.aliases)])
        self.keywords = _PhraseIndex(self.normaliser, [(k, c.name) for c in policy.categories.values()
                                                       for k in c.keywords])
        self.allow = [tuple(self.normaliser.tokens(p)) for p in policy.allow_phrases]
        self.allow = [a for a in self.allow if a]

    def without_allowed_phrases(self, words: list[str]) -> list[str]:
        """`words` with the allow-listed phrases ("trump card", "naked mole rat") cut out, before the
        rules and the classifier run."""
        out, i = [], 0
        while i < len(words):
            for a in self.allow:
                if tuple(words[i:i + len(a)]) == a:
                    out.append("|")  # a barrier, so the words around it do not join up
                    i += len(a)
                    break
            else:
                out.append(words[i])
                i += 1
        return out


class _Classifier:
    """TF-IDF features of (normalised text, text without spaces) -> logistic regression."""

    def __init__(self, policy: Policy, normaliser: _Normaliser):
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        rows = policy.training_rows()
        labels = [label for _, label in rows]
        if len(set(labels)) < 2:
            raise ConfigError(f"policy file {policy.path}: the classifier needs examples of >= 2 labels")
        words = [normaliser.tokens(t) for t, _ in rows]
        # (vectorizer, separator the words are joined with): words, chars within words, and chars
        # of the text with its spaces removed (catches words split apart: "ki ll", "nu de").
        self.vectorizers = [
            (TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"\S+", sublinear_tf=True),
             " "),
            (TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True), " "),
            (TfidfVectorizer(analyzer="char", ngram_range=(3, 5), sublinear_tf=True), ""),
        ]
        x = sp.hstack([v.fit_transform([sep.join(w) for w in words]) for v, sep in self.vectorizers]).tocsr()
        self.model = LogisticRegression(C=20.0, max_iter=5000, class_weight="balanced")
        # One BLAS thread: on a busy 2-core machine a multi-threaded fit is ~20x slower, not faster.
        with threadpool_limits(1):
            self.model.fit(x, labels)
        self.classes = list(self.model.classes_)

    def probabilities(self, words: list[str]) -> dict[str, float]:
        import scipy.sparse as sp

        x = sp.hstack([v.transform([sep.join(words)]) for v, sep in self.vectorizers]).tocsr()
        return dict(zip(self.classes, self.model.predict_proba(x)[0].tolist(), strict=True))


# ---------------------------------------------------------------------------------------------
# The gate


def check_prompt(prompt: str, policy: Policy | None = None) -> PolicyDecision:
    """Decide whether `prompt` may be generated under `policy` (default: `load_policy()`)."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, not {type(prompt).__name__}")
    policy = policy or load_policy()
    if len(prompt) > policy.max_prompt_chars:
        return PolicyDecision(False, INVALID, f"prompt is {len(prompt)} characters; the limit is "
                                              f"{policy.max_prompt_chars}", 1.0)
    rules = policy._rules()
    words = rules.normaliser.tokens(prompt)
    if not words:
        return PolicyDecision(False, INVALID, "prompt is empty (no letters or digits)", 1.0)
    ruled = rules.without_allowed_phrases(words)
    hit = rules.figures.find(ruled)
    if hit:
        return PolicyDecision(False, PUBLIC_FIGURE, f"matches public figure '{hit[1]}'", 1.0)
    hit = rules.keywords.find(ruled)
    if hit:
        return PolicyDecision(False, hit[1], f"{hit[1]}: keyword '{hit[0]}'", 1.0)
    rest = [w for w in ruled if w != "|"]
    if not rest:  # nothing but allow-listed phrases ("a naked mole rat")
        return PolicyDecision(True, None, "allowed (only allow-listed phrases)", 0.0)
    probs = policy._classifier().probabilities(rest)
    # Refuse on P(not allowed), so a prompt split between two forbidden categories is not let
    # through; report the most likely forbidden category.
    score = 1.0 - probs.get(ALLOWED, 0.0)
    category = max((c for c in probs if c != ALLOWED), key=probs.__getitem__)
    if score >= policy.threshold:
        return PolicyDecision(False, category, f"{category} content (score {score:.2f})", score)
    return PolicyDecision(True, None, f"allowed (forbidden score {score:.2f}, most like {category})", score)


def enforce(prompt: str, policy: Policy | None = None) -> PolicyDecision:
    """`check_prompt`, raising PolicyRefusal (exit code 5) when the prompt is refused."""
    d = check_prompt(prompt, policy)
    if not d.allowed:
        raise PolicyRefusal(f"prompt refused by the usage policy: {d.reason}", category=d.category or "",
                            reason=d.reason)
    return d
