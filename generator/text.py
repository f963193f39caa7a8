"""Small word-level text encoder, trained jointly with the DiT.

The vocabulary is built from captions of the training world (lowercased, punctuation stripped); any
other word maps to `<unk>`, so no prompt can crash it. Output: token features (N, S, D), a mask
(N, S) that is True on real tokens, and a pooled sentence vector (N, D) from a leading `<cls>` token.
The empty prompt (just `<cls>`) is the null condition for classifier-free guidance.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

PAD, UNK, CLS = "<pad>", "<unk>", "<cls>"
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lowercase, strip punctuation, split: 'A Red-Circle, then…' -> ['a', 'red', 'circle', 'then']."""
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], min_count: int = 1) -> list[str]:
    counts = Counter(w for t in texts for w in words(t))
    return [PAD, UNK, CLS] + sorted(w for w, c in counts.items() if c >= min_count)


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
    "tftext-s": TextConfig(dim=128, depth=2, heads=4),
    "tftext-t": TextConfig(dim=32, depth=1, heads=2),
}


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.index = {w: i for i, w in enumerate(cfg.vocab)}
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
        seqs = [[cls_] + [self.index.get(w, unk) for w in words(p)][: self.cfg.max_len - 1] for p in prompts]
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
