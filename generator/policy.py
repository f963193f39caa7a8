"""The prompt policy gate: refuse prompts for extreme violence, sexual content, hateful imagery or
the likeness of a real public figure, before anything is generated, in any of the languages
people write prompts in.

Length: the gate's two layers (rules from the policy file, the classifier trained at load) and
the decision that combines them are one concern; text handling lives in `policy_text.py`.

Two layers over one normalised text (see `policy_text.py` and `normalise`):

* rules from the operator-editable policy file (`policy/policy.toml`): names of real public
  figures (category "public-figure") in every form a user would type (native script, common
  transliterations such as 特朗普 / 川普 / Трамп / トランプ, nicknames; pinyin spellings of the
  Chinese names are added at load with pypinyin), and unambiguous keywords per category in each
  language (`keywords_by_language`). A keyword ending in "*" matches any word starting with it;
  Russian words match without their case endings ("Путина" ~ "Путин"); Arabic words also with a
  clitic prefix (و, ب, ل, ال...). Chinese keywords also match with a character written in pinyin
  ("luo体"). Chinese, Japanese and Korean text is matched character by character, so a rule hits
  inside a sentence with no spaces;
* a scikit-learn classifier (TF-IDF word 1-2-grams, which for CJK text are character uni- and
  bigrams, + char 2-5-grams + char 3-5-grams of the text with its spaces removed + the policy's
  cross-language [concepts] found in it, e.g. "#blood" for blood / 血 / кровь / دم -> multinomial
  logistic regression, scored by hand at inference: ~0.5 ms a prompt) trained when the policy is
  loaded (~2-3 s with its rules) on the policy file's examples
  plus the `train` split of its training files (`prompts.jsonl`, English; `prompts_i18n.jsonl`,
  Chinese, Japanese, Korean, Russian, Arabic, Hindi, Spanish, French, German, Portuguese and
  mixed prompts). Nothing is pickled or downloaded; editing the policy file retrains it on the
  next load. With `english_classifier = "separate"` (the packaged policy) a prompt detected as
  English is scored instead by a second classifier trained on the English rows only and without
  concepts (the English-only gate's features), and `threshold_by_language` sets the refusal
  threshold per detected language (see the policy file's [gate] comments for how they were chosen).

Normalisation makes obfuscation cheap to undo: NFKC (full-width/half-width forms), zero-width and
format characters dropped, look-alike letters folded inside words that mix scripts (a word wholly
in Cyrillic or Greek is kept, unless it is a disguise among Latin words or uses letters Russian
does not, "ѕех"), accents dropped from Latin letters, Traditional Chinese to
Simplified (OpenCC), hiragana to katakana, Arabic letter variants and vowel marks unified,
separators between CJK characters removed ("斩 首", "斬-首"), the policy's homophone table applied
("紫砂" -> "自杀"), letters spaced or dotted apart joined, leetspeak and repeated letters undone.

Each decision carries the prompt's `language` (ISO 639-1: "en", "zh", "ja", "ko", "ru", "ar", "hi",
"es", "fr", "de", "pt", ..., or "mixed" / "und"), detected from the scripts of its characters and,
for Latin script, stopwords and the vocabulary of the labelled prompts; refusal reasons name it.

Input contract: a non-`str` prompt raises TypeError. An empty prompt (no letters or digits) and
one longer than `max_prompt_chars` (2000 by default; checked before any other work, so a 1 MB
prompt costs microseconds) are refused with category "invalid-prompt": the gate fails closed.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from trustframe.errors import ConfigError, PolicyRefusal
from trustframe.generator.policy_text import (
    NUMBER_UNIT,
    STOPWORDS,
    LanguageDetector,
    Normaliser,
    PhraseIndex,
    join,
    pinyin_spellings,
    script,
)

POLICY_DIR = Path(__file__).with_name("policy")
DEFAULT_POLICY_FILE = POLICY_DIR / "policy.toml"
ALLOWED = "allowed"
PUBLIC_FIGURE = "public-figure"
INVALID = "invalid-prompt"
RESERVED = {ALLOWED, PUBLIC_FIGURE, INVALID}
CONCEPTS_FOR = ("all", "non-english", "non-english-words")

__all__ = ["Policy", "PolicyDecision", "check_prompt", "enforce", "load_policy", "normalise"]


@dataclass(frozen=True)
class PolicyDecision:
    """`allowed`; the refused `category` (None when allowed); a one-line `reason`; `score` in
    [0, 1]: the classifier's probability that the prompt is not allowed, 1.0 for a rule match;
    `language`: the prompt's detected language (ISO 639-1 code, "mixed" or "und")."""

    allowed: bool
    category: str | None
    reason: str
    score: float
    language: str = "und"


def normalise(text: str, policy: Policy | None = None) -> str:
    """The text the gate classifies: folded, de-obfuscated words joined by single spaces (CJK
    characters side by side)."""
    policy = policy or load_policy()
    return join(policy._rules().normaliser.tokens(text))


# ---------------------------------------------------------------------------------------------
# The policy file


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    keywords: tuple[str, ...]  # every language's, English first
    examples: tuple[str, ...]
    keywords_by_language: dict[str, tuple[str, ...]] = field(default_factory=dict)


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
    classifier_c: float = 20.0
    concept_weight: float = 1.0
    concepts_for: str = "all"  # "all" words, or only "non-english" prompts / "non-english-words"
    threshold_by_language: dict[str, float] = field(default_factory=dict)
    english_classifier: str = "shared"  # or "separate": English prompts get their own, concept-free one
    max_prompt_chars: int = 2000
    training_files: tuple[Path, ...] = ()
    homophones: dict[str, str] = field(default_factory=dict)
    concepts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def threshold_for(self, language: str) -> float:
        """The refusal threshold for a prompt detected as `language`."""
        return self.threshold_by_language.get(language, self.threshold)

    def _rules(self) -> _Rules:
        if "rules" not in self._cache:
            self._cache["rules"] = _Rules(self)
        return self._cache["rules"]

    def _classifier(self, language: str = "und") -> _Classifier:
        """The classifier for a prompt detected as `language`: with `english_classifier` =
        "separate", English prompts are scored by one trained on the English rows only, without
        concepts (the English gate as it was before the other languages came in)."""
        if self.english_classifier == "separate" and language == "en":
            if "classifier_en" not in self._cache:
                rows = [(r["text"], r["label"]) for r in self.labelled_rows() if r["lang"] == "en"]
                self._cache["classifier_en"] = _Classifier(self, self._rules(), rows, concepts=False)
            return self._cache["classifier_en"]
        if "classifier" not in self._cache:
            self._cache["classifier"] = _Classifier(self, self._rules())
        return self._cache["classifier"]

    def labelled_rows(self) -> list[dict]:
        """Rows {"text", "label", "lang"} the classifier learns from: the policy's descriptions and
        examples (English), then the training files' `train` split (rows whose label is not a
        category here are skipped; public figures are left to the name rules)."""
        rows = [{"text": t, "label": c.name, "lang": "en"}
                for c in self.categories.values() for t in (c.description, *c.examples) if t]
        rows += [{"text": t, "label": ALLOWED, "lang": "en"} for t in self.allow_examples]
        for path in self.training_files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    if r.get("split") == "train" and (r["label"] in self.categories or r["label"] == ALLOWED):
                        rows.append({"text": r["text"], "label": r["label"], "lang": r.get("lang", "en")})
        return rows

    def training_rows(self) -> list[tuple[str, str]]:
        """(text, label) pairs of `labelled_rows`."""
        return [(r["text"], r["label"]) for r in self.labelled_rows()]


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


def _strings(value, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return tuple(value)


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
            by_lang = {lang: _strings(k, f"categories.{name}.keywords_by_language.{lang}")
                       for lang, k in c.get("keywords_by_language", {}).items()}
            keywords = _strings(c.get("keywords", []), f"categories.{name}.keywords")
            cats[name] = Category(name, str(c.get("description", "")),
                                  keywords + tuple(k for ks in by_lang.values() for k in ks),
                                  tuple(c.get("examples", ())), by_lang)
        people = doc.get("public_figures", {}).get("people", ())
        figures = tuple(PublicFigure(str(f["name"]), _strings(f.get("aliases", []), f"{f['name']} aliases"))
                        for f in people)
        allowed = doc.get("allowed", {})
        names = gate.get("training_files", gate.get("training_file", []))
        files = []
        for name in [names] if isinstance(names, str) else names:
            tf = next((d / name for d in (path.parent, POLICY_DIR) if (d / name).is_file()), None)
            if tf is None:
                raise ValueError(f"training file {name!r} not found next to the policy or packaged")
            files.append(tf)
        homophones = doc.get("homophones", {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in homophones.items()):
            raise ValueError("homophones must map strings to strings")
        concepts = {name: _strings(words, f"concepts.{name}")
                    for name, words in doc.get("concepts", {}).items()}
        policy = Policy(path=path, categories=cats, public_figures=figures,
                        allow_examples=tuple(allowed.get("examples", ())),
                        allow_phrases=tuple(allowed.get("phrases", ())),
                        threshold=float(gate.get("threshold", 0.5)),
                        classifier_c=float(gate.get("classifier_c", 20.0)),
                        concept_weight=float(gate.get("concept_weight", 1.0)),
                        concepts_for=str(gate.get("concepts_for", "all")),
                        english_classifier=str(gate.get("english_classifier", "shared")),
                        threshold_by_language={str(k): float(v) for k, v in
                                               gate.get("threshold_by_language", {}).items()},
                        max_prompt_chars=int(gate.get("max_prompt_chars", 2000)),
                        training_files=tuple(files), homophones=dict(homophones), concepts=concepts)
        named = [("threshold", policy.threshold)]
        named += [(f"threshold_by_language.{k}", v) for k, v in policy.threshold_by_language.items()]
        for name, t in named:
            if not 0.0 < t < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {t}")
        if policy.english_classifier not in ("shared", "separate"):
            raise ValueError(f"english_classifier must be shared or separate: {policy.english_classifier!r}")
        if policy.concepts_for not in CONCEPTS_FOR:
            raise ValueError(f"concepts_for not in {CONCEPTS_FOR}: {policy.concepts_for!r}")
        if policy.max_prompt_chars < 1:
            raise ValueError("max_prompt_chars must be positive")
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"policy file {path}: {e}") from e
    return policy


# ---------------------------------------------------------------------------------------------
# Rules and classifier

class _Rules:
    def __init__(self, policy: Policy):
        plain = Normaliser(homophones=policy.homophones)
        vocab, lexicon = set(), {}
        for r in policy.labelled_rows():
            words = [w for w in plain.tokens(r["text"]) if w.isalpha() or NUMBER_UNIT.fullmatch(w)]
            vocab.update(words)
            if r["lang"] != "mixed":
                lexicon.setdefault(r["lang"], Counter()).update(w for w in words if script(w[0]) == "latin")
        names = [(n, f.name) for f in policy.public_figures for n in (f.name, *f.aliases)]
        keywords = [(k, c.name) for c in policy.categories.values() for k in c.keywords]
        concept_words = [w for ws in policy.concepts.values() for w in ws]
        phrases = [n for n, _ in names] + [k for k, _ in keywords] + [*policy.allow_phrases, *concept_words]
        for phrase in phrases:
            vocab.update(w for w in plain.tokens(phrase.rstrip("*")) if w.isalpha())
        self.normaliser = Normaliser(frozenset(vocab), policy.homophones)
        self.language = LanguageDetector(lexicon)
        # Words of the English prompts: a concept found only in them adds nothing the English
        # word features do not already carry ("concepts_for" = "non-english-words").
        self.english = frozenset(lexicon.get("en", ())) | frozenset(STOPWORDS["en"])
        self.concepts_for = policy.concepts_for
        try:
            self.figures = PhraseIndex(self.normaliser, names, strict=True)
        except ValueError as e:
            raise ConfigError(f"policy file {policy.path}: {e}") from e
        self.keywords = PhraseIndex(self.normaliser, keywords)
        self._add_pinyin(names, keywords)
        self.figures.finish()
        self.keywords.finish()
        self.concepts = PhraseIndex(self.normaliser,
                                     [(w, c) for c, ws in policy.concepts.items() for w in ws]).finish()
        self.allow: dict[str, list[tuple[str, ...]]] = {}  # first word -> phrases, longest first
        for phrase in sorted({tuple(self.normaliser.tokens(p)) for p in policy.allow_phrases} - {()},
                             key=len, reverse=True):
            self.allow.setdefault(phrase[0], []).append(phrase)

    def _add_pinyin(self, names: list[tuple[str, str]], keywords: list[tuple[str, str]]) -> None:
        """Pinyin spellings of the Chinese names ("telangpu") and keywords ("luozhao"), and keywords
        with one character in pinyin ("luo体"). Short spellings that could be other words are left
        out; a spelling shared by two people is dropped."""
        seen: dict[str, set[str]] = {}
        for phrase, person in names:
            han = "".join(self.normaliser.tokens(phrase))
            if len(han) >= 2 and all(script(c) == "han" for c in han):
                for p in pinyin_spellings(han):
                    if len(han) >= 3 or len(p) >= 7:
                        seen.setdefault(p, set()).add(person)
        for p, people in seen.items():
            if len(people) == 1 and p not in self.figures.exact:
                self.figures.add(self.normaliser, p, next(iter(people)))
        for phrase, cat in keywords:
            han = "".join(self.normaliser.tokens(phrase.rstrip("*")))
            if not 2 <= len(han) <= 4 or not all(script(c) == "han" for c in han):
                continue
            for p in pinyin_spellings(han):
                if len(p) >= 7:
                    self.keywords.add(self.normaliser, p, cat)
            for i, c in enumerate(han):
                for p in pinyin_spellings(c, limit=3):
                    self.keywords.add(self.normaliser, han[:i] + " " + p + " " + han[i + 1:], cat)

    def without_allowed_phrases(self, words: list[str]) -> list[str]:
        """`words` with the allow-listed phrases ("trump card", "naked mole rat") cut out, before the
        rules and the classifier run."""
        out, i = [], 0
        while i < len(words):
            for a in self.allow.get(words[i], ()):
                if tuple(words[i:i + len(a)]) == a:
                    out.append("|")  # a barrier, so the words around it do not join up
                    i += len(a)
                    break
            else:
                out.append(words[i])
                i += 1
        return out


class _Classifier:
    """TF-IDF features of the normalised words (word 1-2-grams, chars within words, chars of the
    text without spaces) and of the concepts found in them -> logistic regression."""

    def __init__(self, policy: Policy, rules: _Rules, rows: list[tuple[str, str]] | None = None,
                 concepts: bool = True):
        import scipy.sparse as sp
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        rows = policy.training_rows() if rows is None else rows
        labels = [label for _, label in rows]
        if len(set(labels)) < 2:
            raise ConfigError(f"policy file {policy.path}: the classifier needs examples of >= 2 labels")
        self.rules = rules
        self.use_concepts = concepts
        docs = []
        for t, _ in rows:
            words = rules.normaliser.tokens(t)
            docs.append(self.views(words, rules.language.detect(words)))
        # Words (CJK: characters) 1-2-grams, chars within words, chars of the text with its spaces
        # removed (catches words split apart: "ki ll"), and the concept tokens ("#blood").
        self.vectorizers = [
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"\S+", sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            TfidfVectorizer(analyzer="char", ngram_range=(3, 5), sublinear_tf=True),
            TfidfVectorizer(analyzer="word", token_pattern=r"\S+", sublinear_tf=True),
        ]
        self.weights = [1.0, 1.0, 1.0, policy.concept_weight]
        x = sp.hstack([w * v.fit_transform([d[k] for d in docs])
                       for k, (v, w) in enumerate(zip(self.vectorizers, self.weights, strict=True))]).tocsr()
        self.model = LogisticRegression(C=policy.classifier_c, max_iter=5000, class_weight="balanced")
        # One BLAS thread: on a busy 2-core machine a multi-threaded fit is ~20x slower, not faster.
        with threadpool_limits(1):
            self.model.fit(x, labels)
        self.classes = [str(c) for c in self.model.classes_]

        # Inference without sklearn's per-call overhead (~1 ms a vectorizer): the same TF-IDF
        # (sublinear tf, idf, l2 per vectorizer) and softmax of the linear scores, from the fit.
        self.analyzers = [v.build_analyzer() for v in self.vectorizers]
        self.vocab = [v.vocabulary_ for v in self.vectorizers]
        self.idf = [v.idf_.tolist() for v in self.vectorizers]
        self.offsets = [0]
        for v in self.vectorizers[:-1]:
            self.offsets.append(self.offsets[-1] + len(v.vocabulary_))
        self.coef = self.model.coef_
        self.intercept = self.model.intercept_

    def concepts(self, words: list[str], language: str) -> list[str]:
        """The [concepts] found in `words`: all of them, or (policy `concepts_for`) none in an
        English prompt, or only those matched on a word outside the English prompts' vocabulary."""
        rules = self.rules
        if not self.use_concepts or (rules.concepts_for == "non-english" and language == "en"):
            return []
        if rules.concepts_for == "non-english-words":
            return sorted({c for i, j, c in rules.concepts.matches(words)
                           if any(w not in rules.english for w in words[i:j])})
        return rules.concepts.labels(words)

    def views(self, words: list[str], language: str = "und") -> tuple[str, str, str, str]:
        concepts = " ".join("#" + c for c in self.concepts(words, language))
        return " ".join(words), join(words), "".join(words), concepts or "#none"

    def probabilities(self, words: list[str], language: str = "und") -> dict[str, float]:
        import numpy as np

        cols, vals = [], []
        for k, doc in enumerate(self.views(words, language)):
            counts = Counter(self.analyzers[k](doc))
            vocab, idf, off = self.vocab[k], self.idf[k], self.offsets[k]
            part = [(vocab[t], (1.0 + math.log(c)) * idf[vocab[t]]) for t, c in counts.items() if t in vocab]
            norm = math.sqrt(sum(v * v for _, v in part)) or 1.0
            cols += [off + j for j, _ in part]
            vals += [self.weights[k] * v / norm for _, v in part]
        z = self.intercept + (self.coef[:, cols] @ np.asarray(vals) if cols else 0.0)
        if len(self.classes) == 2:  # binary: one score, for classes[1]
            p1 = 1.0 / (1.0 + math.exp(-float(z[0])))
            return {self.classes[0]: 1.0 - p1, self.classes[1]: p1}
        e = np.exp(z - z.max())
        return dict(zip(self.classes, (e / e.sum()).tolist(), strict=True))


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
    lang = rules.language.detect(words)
    ruled = rules.without_allowed_phrases(words)
    hit = rules.figures.find(ruled)
    if hit:
        return PolicyDecision(False, PUBLIC_FIGURE, f"matches public figure '{hit[1]}' (language {lang})",
                              1.0, lang)
    hit = rules.keywords.find(ruled)
    if hit:
        return PolicyDecision(False, hit[1], f"{hit[1]}: keyword '{hit[0]}' (language {lang})", 1.0, lang)
    rest = [w for w in ruled if w != "|"]
    if not rest:  # nothing but allow-listed phrases ("a naked mole rat")
        return PolicyDecision(True, None, f"allowed (only allow-listed phrases; language {lang})", 0.0, lang)
    probs = policy._classifier(lang).probabilities(rest, lang)
    # Refuse on P(not allowed), so a prompt split between two forbidden categories is not let
    # through; report the most likely forbidden category.
    score = 1.0 - probs.get(ALLOWED, 0.0)
    category = max((c for c in probs if c != ALLOWED), key=probs.__getitem__)
    if score >= policy.threshold_for(lang):
        return PolicyDecision(False, category, f"{category} content (score {score:.2f}; language {lang})",
                              score, lang)
    return PolicyDecision(True, None, f"allowed (forbidden score {score:.2f}, most like {category}; "
                                      f"language {lang})", score, lang)


def enforce(prompt: str, policy: Policy | None = None) -> PolicyDecision:
    """`check_prompt`, raising PolicyRefusal (exit code 5) when the prompt is refused."""
    d = check_prompt(prompt, policy)
    if not d.allowed:
        raise PolicyRefusal(f"prompt refused by the usage policy: {d.reason}", category=d.category or "",
                            reason=d.reason)
    return d
