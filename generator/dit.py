"""Diffusion transformer over spacetime patches of the video latent (DiT with adaLN-Zero).

- input: a latent video (N, C, t, h, w) cut into (pt, ph, pw) spacetime patches -> tokens (N, L, D);
- timestep (and pooled text) condition every block through adaLN-Zero: shift/scale/gate per sub-layer,
  gates initialised at zero so each block starts as the identity;
- text tokens enter by cross-attention (key padding mask for short prompts);
- positions by factorised 3D RoPE (head dim split into time / height / width bands), computed for the
  grid at hand, so one model serves any t x h x w;
- plus absolute position features (sin/cos of each token's frame, row and column index and its place
  from edge to edge) through a zero-initialised projection: RoPE is relative only, so without them a
  nearly pure-noise input gives every token the same view, and the model cannot express where and
  when objects should be (an object moving right starts on the left and ends on the right);
- output: the rectified-flow velocity v = noise - data, same shape as the input.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DiTConfig:
    in_channels: int = 8
    patch: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw) in latent cells
    dim: int = 192
    depth: int = 6
    heads: int = 3
    mlp_ratio: float = 4.0
    context_dim: int = 128  # text encoder width
    rope_theta: float = 100.0  # positions are small integers (latent grids of ~5 x 8 x 8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiTConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# Sizes: what a name builds. A size is not a weights preset: the shipped `tfdit-s` weights are the size
# `dit-s` (generator/weights/tfdit-s.recipe.toml trains them). Patches are (1, 4, 4) latent cells: 16 x 16
# pixels of the shipped f4 VAE.
DIT_SIZES = {
    "dit-t": DiTConfig(dim=64, depth=2, heads=2, patch=(1, 4, 4)),
    "dit-s": DiTConfig(dim=192, depth=6, heads=3, patch=(1, 4, 4)),
    "dit-b": DiTConfig(dim=384, depth=12, heads=6, patch=(1, 4, 4)),
    "dit-l": DiTConfig(dim=512, depth=16, heads=8, patch=(1, 4, 4)),
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


# --- 3D rotary position embedding -------------------------------------------------------------------
def rope_bands(head_dim: int) -> tuple[int, int, int]:
    """Split head_dim into even-sized (time, height, width) bands; any remainder is left unrotated."""
    b = (head_dim // 3) // 2 * 2
    return b, b, b


def rope_3d(grid: tuple[int, int, int], head_dim: int, theta: float, device=None) -> torch.Tensor:
    """Angles (L, head_dim // 2) for a t x h x w token grid flattened in (t, h, w) order; zero angle
    (no rotation) for the unrotated remainder."""
    angles = []
    for size, band in zip(grid, rope_bands(head_dim), strict=True):
        freqs = theta ** (-torch.arange(0, band, 2, device=device, dtype=torch.float32) / band)  # (band/2,)
        pos = torch.arange(size, device=device, dtype=torch.float32)
        angles.append(pos[:, None] * freqs)  # (size, band/2)
    t, h, w = grid
    at = angles[0][:, None, None].expand(t, h, w, -1)
    ah = angles[1][None, :, None].expand(t, h, w, -1)
    aw = angles[2][None, None, :].expand(t, h, w, -1)
    ang = torch.cat([at, ah, aw], dim=-1).reshape(t * h * w, -1)  # (L, sum(bands)/2)
    rest = head_dim // 2 - ang.shape[1]
    return F.pad(ang, (0, rest))  # (L, head_dim/2)


ABS_POS_FREQS = 8  # sin/cos pairs per axis, periods 2 .. 64 cells


def abs_pos_features(grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """(L, 3 * (2 * ABS_POS_FREQS + 1)) features of a t x h x w token grid in (t, h, w) order: per axis
    sin/cos of the index at periods 2..64, and the index mapped linearly onto [-1, 1] (edge to edge)."""
    periods = 2.0 * 32.0 ** (torch.arange(ABS_POS_FREQS, device=device, dtype=torch.float32)
                             / (ABS_POS_FREQS - 1))
    axes = []
    for size in grid:
        pos = torch.arange(size, device=device, dtype=torch.float32)
        ang = 2 * math.pi * pos[:, None] / periods  # (size, F)
        span = pos / (size - 1) * 2 - 1 if size > 1 else torch.zeros_like(pos)
        axes.append(torch.cat([ang.sin(), ang.cos(), span[:, None]], dim=1))  # (size, 2F + 1)
    t, h, w = grid
    f = axes[0].shape[1]
    full = torch.cat([axes[0][:, None, None].expand(t, h, w, f), axes[1][None, :, None].expand(t, h, w, f),
                      axes[2][None, None, :].expand(t, h, w, f)], dim=-1)
    return full.reshape(t * h * w, 3 * f)


def apply_rope(x: torch.Tensor, ang: torch.Tensor) -> torch.Tensor:
    """x (N, H, L, Dh), ang (L, Dh/2): rotate consecutive pairs."""
    x2 = x.float().reshape(*x.shape[:-1], -1, 2)  # (N, H, L, Dh/2, 2)
    cos, sin = ang.cos(), ang.sin()
    y0 = x2[..., 0] * cos - x2[..., 1] * sin
    y1 = x2[..., 0] * sin + x2[..., 1] * cos
    return torch.stack([y0, y1], dim=-1).flatten(-2).type_as(x)


# --- layers -------------------------------------------------------------------------------------------
class TimestepEmbedder(nn.Module):
    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # t (N,) in [0, 1]
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32)
                          / half)
        args = (t.float() * 1000.0)[:, None] * freqs[None]  # (N, half)
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1))  # (N, D)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm, self.k_norm = nn.RMSNorm(dim // heads), nn.RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ang: torch.Tensor) -> torch.Tensor:
        n, length, d = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(self.q_norm(q), ang), apply_rope(self.k_norm(k), ang)  # (N, H, L, Dh)
        y = F.scaled_dot_product_attention(q, k, v)  # (N, H, L, Dh)
        return self.proj(y.transpose(1, 2).reshape(n, length, d))  # (N, L, D)


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.kv = nn.Linear(dim, dim), nn.Linear(context_dim, 2 * dim)
        self.q_norm, self.k_norm = nn.RMSNorm(dim // heads), nn.RMSNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor | None) -> torch.Tensor:
        n, length, d = x.shape
        dh = d // self.heads
        q = self.q_norm(self.q(x).reshape(n, length, self.heads, dh).transpose(1, 2))  # (N, H, L, Dh)
        kv = self.kv(ctx).reshape(n, ctx.shape[1], 2, self.heads, dh)
        k, v = kv.permute(2, 0, 3, 1, 4)  # (N, H, S, Dh)
        mask = None if ctx_mask is None else ctx_mask[:, None, None, :]  # (N, 1, 1, S) True = attend
        y = F.scaled_dot_product_attention(q, self.k_norm(k), v, attn_mask=mask)  # (N, H, L, Dh)
        return self.proj(y.transpose(1, 2).reshape(n, length, d))  # (N, L, D)


class DiTBlock(nn.Module):
    """adaLN-Zero block: self-attention (3D RoPE), cross-attention to text, MLP; 9 modulation vectors."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.dim
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d, cfg.heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.cross = CrossAttention(d, cfg.context_dim, cfg.heads)
        self.norm3 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 9 * d))

    def forward(self, x, c, ang, ctx, ctx_mask):  # x (N, L, D), c (N, D)
        m = self.adaLN_modulation(c).chunk(9, dim=1)  # 9 x (N, D)
        x = x + m[2].unsqueeze(1) * self.attn(modulate(self.norm1(x), m[0], m[1]), ang)
        x = x + m[5].unsqueeze(1) * self.cross(modulate(self.norm2(x), m[3], m[4]), ctx, ctx_mask)
        x = x + m[8].unsqueeze(1) * self.mlp(modulate(self.norm3(x), m[6], m[7]))
        return x  # (N, L, D)


class FinalLayer(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        pt, ph, pw = cfg.patch
        self.norm = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(cfg.dim, pt * ph * pw * cfg.in_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 2 * cfg.dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (N, L, pt*ph*pw*C)


class DiT(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        pt, ph, pw = cfg.patch
        self.x_embed = nn.Linear(pt * ph * pw * cfg.in_channels, cfg.dim)
        self.pos_embed = nn.Linear(3 * (2 * ABS_POS_FREQS + 1), cfg.dim)
        self.t_embed = TimestepEmbedder(cfg.dim)
        self.ctx_pool = nn.Linear(cfg.context_dim, cfg.dim)  # pooled text joins the adaLN condition
        self.blocks = nn.ModuleList([DiTBlock(cfg) for _ in range(cfg.depth)])
        self.final = FinalLayer(cfg)
        self.initialize_weights()

    def initialize_weights(self):
        def _basic(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(_basic)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        # adaLN-Zero: every modulation (hence every gate) starts at zero -> each block is the identity
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.pos_embed.weight)  # starts as a RoPE-only DiT (and so can fine-tune one)
        nn.init.zeros_(self.final.linear.bias)

    def patchify(self, z: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        n, c, t, h, w = z.shape
        pt, ph, pw = self.cfg.patch
        z = F.pad(z, (0, -w % pw, 0, -h % ph, 0, -t % pt))
        gt, gh, gw = z.shape[2] // pt, z.shape[3] // ph, z.shape[4] // pw
        z = z.reshape(n, c, gt, pt, gh, ph, gw, pw)
        z = z.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (N, gt, gh, gw, pt, ph, pw, C)
        return z.reshape(n, gt * gh * gw, pt * ph * pw * c), (gt, gh, gw)  # (N, L, P)

    def unpatchify(self, x: torch.Tensor, grid, shape) -> torch.Tensor:
        n = x.shape[0]
        pt, ph, pw = self.cfg.patch
        gt, gh, gw = grid
        c = self.cfg.in_channels
        x = x.reshape(n, gt, gh, gw, pt, ph, pw, c)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (N, C, gt, pt, gh, ph, gw, pw)
        x = x.reshape(n, c, gt * pt, gh * ph, gw * pw)
        return x[:, :, : shape[0], : shape[1], : shape[2]]  # (N, C, t, h, w)

    def forward(self, z: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor,
                ctx_mask: torch.Tensor | None = None, pooled: torch.Tensor | None = None) -> torch.Tensor:
        """z (N, C, t, h, w) noisy latent; t (N,) in [0, 1]; ctx (N, S, Dc) text tokens; ctx_mask (N, S)
        True where a token is real; pooled (N, Dc) sentence vector (defaults to the masked mean)."""
        x, grid = self.patchify(z)  # (N, L, P)
        x = self.x_embed(x) + self.pos_embed(abs_pos_features(grid, device=z.device))  # (N, L, D)
        ang = rope_3d(grid, self.cfg.dim // self.cfg.heads, self.cfg.rope_theta, device=z.device)  # (L, Dh/2)
        if pooled is None:
            m = torch.ones(ctx.shape[:2], device=ctx.device) if ctx_mask is None else ctx_mask.float()
            pooled = (ctx * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
        c = self.t_embed(t) + self.ctx_pool(pooled)  # (N, D)
        for block in self.blocks:
            x = block(x, c, ang, ctx, ctx_mask)  # (N, L, D)
        x = self.final(x, c)  # (N, L, P)
        return self.unpatchify(x, grid, z.shape[2:])  # (N, C, t, h, w)


def create_dit(size: str, **overrides) -> DiT:
    """A freshly initialised DiT of `size` (a key of DIT_SIZES), fields overridden by `overrides`."""
    if size not in DIT_SIZES:
        raise ValueError(f"unknown DiT size {size!r} (sizes: {', '.join(DIT_SIZES)}; a weights preset such "
                         "as tfdit-s loads with trustframe.generator.models.load_dit)")
    return DiT(DiTConfig(**{**DIT_SIZES[size].to_dict(), **overrides}))
