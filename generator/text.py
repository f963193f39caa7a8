"""Small word-level text encoder, trained jointly with the DiT.

The vocabulary is built from captions of the training world (lowercased, punctuation stripped); any
other word maps to `<unk>`, so no prompt can crash it. Chinese: vocabulary words in Chinese characters
(appended after the English ones by `generator.train_text`) form a lexicon; a prompt with Chinese in it
is normalised (NFKC, Traditional -> Simplified) and each run of Chinese characters is split by longest
match against that lexicon (`captions_zh.segment`), so both scripts give the same tokens and a prompt
without Chinese is tokenised exactly as before. `read_prompt` says which words the encoder knows.
Output: token features (N, S, D), a mask (N, S) that is True on real tokens, and a pooled sentence
vector (N, D) from a leading `<cls>` token.
The empty prompt (just `<cls>`) is the null condition for classifier-free guidance.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from trustframe.generator.captions_zh import CJK, has_cjk, segment, to_simplified

PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
_WORD = re.compile(r"[a-z0-9]+")
_MIXED = re.compile(f"[{CJK}]+|[a-z0-9]+")


def words(text: str, lexicon: frozenset[str] = frozenset()) -> list[str]:
    """Lowercase, strip punctuation, split: 'A Red-Circle, then…' -> ['a', 'red', 'circle', 'then'].

    Text with Chinese characters: Simplified first, then each Chinese run split by longest match against
    `lexicon` (unmatched characters joined into one word), Latin words and digits as above, in order."""
    if not has_cjk(text):
        return _WORD.findall(text.lower())
    out = []
    for run in _MIXED.findall(to_simplified(text)):
        out += [w for w, _ in segment(run, lexicon)] if has_cjk(run) else [run]
    return out


def build_vocab(texts: Iterable[str], min_count: int = 1) -> list[str]:
    counts = Counter(w for t in texts for w in words(t))
    return [PAD, UNK, CLS] + sorted(w for w, c in counts.items() if c >= min_count)


# Words that carry no content: the unknown-word rule counts neither for nor against a prompt.
FUNCTION_WORDS_EN = frozenset((
    "a", "an", "the", "and", "or", "is", "are", "was", "be", "of", "to", "on", "in", "at", "as", "with",
    "while", "then", "over", "against", "after", "before", "its", "it", "this", "that", "from", "for", "by",
    "into", "onto", "very", "some", "there", "here"))
_READ = re.compile(f"[{CJK}]+|[^\\W_{CJK}]+")


@dataclass(frozen=True)
class PromptReading:
    """What the text encoder makes of a prompt: the content words it knows and those it does not
    (they would all be `<unk>`), in prompt order, Chinese in Simplified. `refuse` / `warning` apply
    the rule (see `read_prompt`)."""

    understood: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def refuse(self) -> bool:
        """Nothing understood, or more than half of the content words unknown."""
        return not self.understood or len(self.unknown) > len(self.understood)

    @property
    def warning(self) -> str:
        """'' when every content word is known; otherwise one line naming the words not understood."""
        if not self.unknown and self.understood:
            return ""
        if not self.unknown:
            return "the prompt names nothing the generator can draw"
        words_ = ", ".join(repr(w) for w in dict.fromkeys(self.unknown))
        return f"words not understood (ignored by the generator): {words_}"

    def to_dict(self) -> dict:
        return {"understood": list(self.understood), "unknown": list(self.unknown), "refuse": self.refuse,
                "warning": self.warning}


def read_prompt(prompt: str, vocab: Iterable[str]) -> PromptReading:
    """The one place the unknown-word rule lives: split `prompt` into words in any script (NFKC,
    lowercase; Chinese in Simplified, split by longest match against the vocabulary's Chinese words),
    drop numbers and function words ("a", "the", "的", "在", ...), and sort the rest into words of
    `vocab` (understood) and others (unknown). Latin words outside [a-z0-9] (accents) and every other
    script than Chinese are unknown. `PromptReading.refuse` is the rule: refuse when nothing is
    understood or more than half of the content words are unknown; otherwise warn with the list."""
    from trustframe.generator.captions_zh import FUNCTION_WORDS as FUNCTION_WORDS_ZH

    vocab = set(vocab)
    lexicon = frozenset(w for w in vocab if has_cjk(w))
    text = unicodedata.normalize("NFKC", prompt).lower()
    if has_cjk(text):
        text = to_simplified(text)
    understood, unknown = [], []
    for piece in _READ.findall(text):
        found = segment(piece, lexicon) if has_cjk(piece) else [(piece, piece in vocab)]
        for word, known in found:
            if word.isdigit() or word in FUNCTION_WORDS_EN or word in FUNCTION_WORDS_ZH:
                continue
            (understood if known else unknown).append(word)
    return PromptReading(tuple(understood), tuple(unknown))


@dataclass
class TextConfig:
    vocab: list[str] = field(default_factory=lambda: [PAD, UNK, CLS])
    dim: int = 128
    depth: int = 2
    heads: int = 4
    max_len: int = 64

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TextConfig:
        return cls(**d)


TEXT_SIZES = {
    "text-s": TextConfig(dim=128, depth=2, heads=4),
    "text-t": TextConfig(dim=32, depth=1, heads=2),
}


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.index = {w: i for i, w in enumerate(cfg.vocab)}
        self.lexicon = frozenset(w for w in cfg.vocab if has_cjk(w))  # Chinese words, for `words`
        self.embed = nn.Embedding(len(cfg.vocab), cfg.dim)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_len, cfg.dim))
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, 4 * cfg.dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.initialize_weights()

    def initialize_weights(self):
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ids (N, S) and mask (N, S), True on real tokens; `<cls>` first, long prompts truncated."""
        unk, cls_ = self.index[UNK], self.index[CLS]
        seqs = [[cls_] + [self.index.get(w, unk) for w in words(p, self.lexicon)][: self.cfg.max_len - 1]
                for p in prompts]
        s = max(len(q) for q in seqs)
        ids = torch.zeros(len(seqs), s, dtype=torch.long)
        for i, q in enumerate(seqs):
            ids[i, : len(q)] = torch.tensor(q)
        return ids, ids != self.index[PAD]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids, mask (N, S) -> tokens (N, S, D), pooled (N, D)."""
        x = self.embed(ids) + self.pos[:, : ids.shape[1]]  # (N, S, D)
        x = self.norm(self.layers(x, src_key_padding_mask=~mask))  # (N, S, D)
        return x, x[:, 0]

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """prompts -> (tokens (N, S, D), mask (N, S), pooled (N, D))."""
        ids, mask = self.tokenize(prompts)
        ids, mask = ids.to(self.pos.device), mask.to(self.pos.device)
        tokens, pooled = self(ids, mask)
        return tokens, mask, pooled


def create_text_encoder(name: str, vocab: list[str] | None = None, **overrides) -> TextEncoder:
    d = {**TEXT_SIZES[name].to_dict(), **overrides}
    if vocab is not None:
        d["vocab"] = list(vocab)
    return TextEncoder(TextConfig(**d))
