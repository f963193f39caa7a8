"""Rectified flow: the training target, an Euler sampler with classifier-free and contrastive guidance,
and `SamplerSettings`, the sampler's settings that a DiT card carries whole (`card["sampler"]`).

Convention: x_t = (1 - t) * x_0 + t * noise, t in [0, 1] (t = 1 is pure noise); the network predicts
the velocity v = noise - x_0; sampling integrates dx/dt = v from t = 1 down to t = 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from trustframe.errors import ConfigError

SAMPLER_KIND = "rectified-flow euler + CFG + contrastive shape guidance"


@dataclass(frozen=True)
class SamplerSettings:
    """How a DiT is sampled. The trainer saves it whole in the DiT card (`card["sampler"]`,
    `to_card()`); `models.Generator` reads it back whole (`from_card`) and samples with it unless a
    caller overrides a field. The defaults are what tfdit-s ships with, chosen on it as follows.

    guidance: classifier-free guidance scale. 40 world prompts (`generator.checker`): guidance
      1 / 2 / 4 / 7 got the colours right in 0.35 / 0.42 / 0.20 / 0.15 of clips and the count in
      0.38 / 0.42 / 0.25 / 0.20; above 2 the textured backgrounds over-saturate into blobs that read
      as extra objects.
    shape_guidance: weight of contrastive shape guidance (`Generator.sample_batch`): the sampler also
      pushes away from the prompt with its shape words swapped for the other shapes. The denoiser
      under-uses shape words (a swapped shape raises its loss 6 %, a swapped colour 51 %); 60 + 60
      benchmark prompts, weight 0 / 1 / 2 gave all-attributes adherence 0.42 / 0.52 / 0.50 seen and
      0.15 / 0.30 / 0.33 held-out.
    shift: SD3's time shift (> 1 spends more of the steps at high noise, where layout is decided).
      With shape guidance 2, 100 + 100 benchmark prompts, shift 1 / 2 / 3 / 5 gave adherence
      0.46 / 0.48 / 0.51 / 0.51 seen and 0.37 / 0.36 / 0.38 / 0.38 held-out.
    """

    steps: int = 25
    guidance: float = 2.0
    shape_guidance: float = 2.0
    shift: float = 3.0
    kind: str = SAMPLER_KIND

    def __post_init__(self):
        if self.kind != SAMPLER_KIND:
            raise ConfigError(f"unknown sampler {self.kind!r}; this code samples {SAMPLER_KIND!r}")
        if self.steps < 1 or self.shift <= 0 or self.guidance < 0 or self.shape_guidance < 0:
            raise ConfigError(f"invalid sampler settings {self}")

    @classmethod
    def from_card(cls, card: dict) -> SamplerSettings:
        """The settings a DiT card carries under "sampler" (every field; an unknown one is an error)."""
        saved = card.get("sampler")
        if not isinstance(saved, dict):
            raise ConfigError(f"DiT card {card.get('name', '?')!r} carries no sampler settings")
        names = {f.name for f in dataclasses.fields(cls)}
        if unknown := set(saved) - names:
            raise ConfigError(f"DiT card {card.get('name', '?')!r}: unknown sampler settings "
                              f"{sorted(unknown)}")
        return cls(**saved)

    def to_card(self) -> dict:
        """The JSON the DiT card stores under "sampler"."""
        return dataclasses.asdict(self)

    def override(self, **fields) -> SamplerSettings:
        """These settings with the fields given replaced; a field given as None keeps its value."""
        return dataclasses.replace(self, **{k: v for k, v in fields.items() if v is not None})


def logit_normal_t(n: int, generator: torch.Generator | None = None, mean: float = 0.0, std: float = 1.0,
                   device=None) -> torch.Tensor:
    """Training times t = sigmoid(N(mean, std)) (SD3 / Open-Sora), which favours the middle of the path."""
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))


def rectified_flow_loss(velocity, x0: torch.Tensor, generator: torch.Generator | None = None,
                        weight: torch.Tensor | None = None, t_mean: float = 0.0) -> torch.Tensor:
    """velocity(x_t, t) -> v; x0 (N, C, t, h, w) clean latents -> mean squared velocity error.

    weight: optional, broadcastable to x0 (e.g. (N, 1, t, h, w) more weight on cells that hold
    objects); the mean is then weighted and normalised by the weights' mean.
    t_mean: mean of the logit-normal t; > 0 trains more at high noise, where layout and motion are
    decided (measured on tfdit-s: sampling from the true latent noised to t0 <= 0.6 kept adherence,
    from t0 = 0.9 lost it, and logit-normal(0, 1) draws t > 0.8 only 8% of the time).
    """
    t = logit_normal_t(x0.shape[0], generator, mean=t_mean, device=x0.device)  # (N,)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    tt = t.view(-1, *([1] * (x0.dim() - 1)))
    xt = (1 - tt) * x0 + tt * noise
    err = (velocity(xt, t) - (noise - x0)).pow(2)
    if weight is None:
        return err.mean()
    weight = weight.expand_as(err)
    return (weight * err).mean() / weight.mean()


def paired_flow_loss(velocity, xa: torch.Tensor, xb: torch.Tensor, generator: torch.Generator | None = None,
                     t_mean: float = 0.0, t: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Counterfactual pairs: xa, xb (N, C, t, h, w) clean latents of clips that differ in one thing
    their captions name (a shape, an object's presence), everything else equal. Both members of a
    pair are noised with the same t and the same noise, and `velocity` sees a batch of 2N: the N
    a-members, then the N b-members (the caller binds each member's caption in that order).

    Returns (difference loss, plain rectified-flow loss of the 2N samples). The difference loss asks
    v_a - v_b = x_b - x_a, the difference of the two targets, in which the noise cancels; it is
    normalised by that difference's energy: 1 for a denoiser that ignores the word, 0 for one that
    predicts its whole effect. A small object's shape is a few latent cells, so in the plain loss it
    is a faint signal under the noise; here it is the whole signal.
    t: one time for every pair (to measure); None draws logit-normal times with mean `t_mean` (to train).
    """
    n = xa.shape[0]
    t = (logit_normal_t(n, generator, mean=t_mean, device=xa.device) if t is None
         else torch.full((n,), float(t), device=xa.device))
    noise = torch.randn(xa.shape, generator=generator, device=xa.device)
    tt = t.view(-1, *([1] * (xa.dim() - 1)))
    x0 = torch.cat([xa, xb])
    noise2 = torch.cat([noise, noise])
    tt2 = torch.cat([tt, tt])
    v = velocity((1 - tt2) * x0 + tt2 * noise2, torch.cat([t, t]))
    va, vb = v.chunk(2)
    target = xb - xa
    diff = (va - vb - target).pow(2).sum() / target.pow(2).sum().clamp(min=1e-8)
    return diff, (v - (noise2 - x0)).pow(2).mean()


def time_grid(steps: int, shift: float = 1.0) -> torch.Tensor:
    """steps + 1 times from 1 to 0; shift > 1 spends more steps at high noise (SD3's time shift)."""
    t = torch.linspace(1.0, 0.0, steps + 1)
    return shift * t / (1 + (shift - 1) * t)


@torch.no_grad()
def euler_sample(model, shape: tuple[int, ...], cond: tuple, uncond: tuple | None, *, steps: int = 25,
                 guidance: float, seed: int = 0, shift: float = 1.0,
                 progress: Callable[[int, int], None] | None = None, t_start: float = 1.0,
                 start: torch.Tensor | None = None, contrast: tuple | None = None,
                 contrast_weight: float = 0.0) -> torch.Tensor:
    """Integrate the flow from noise (seeded) to a latent of `shape` (N, C, t, h, w).

    cond / uncond: (ctx, ctx_mask, pooled) for the prompts and for the empty prompt; with guidance g
    the velocity is v_u + g * (v_c - v_u).
    contrast: (ctx, ctx_mask, pooled) of K * N rows, K blocks of N: the prompts with one attribute
    changed (e.g. every shape word swapped for another shape). With weight w the velocity gains
    w * (v_c - mean_k v_k): a push along what that attribute changes, away from the alternatives
    (contrastive guidance, as a negative prompt does). A row equal to its prompt adds nothing.
    Every branch runs in one batched forward. progress(i, steps) after each step.
    t_start < 1 with `start` (a clean latent of `shape`): begin at x_t = (1 - t) start + t noise and
    integrate t_start -> 0 in `steps` steps (SDEdit; the benchmark's probe of where adherence is lost).
    """
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(shape, generator=gen)
    if t_start < 1.0:
        if start is None or tuple(start.shape) != tuple(shape):
            raise ValueError("t_start < 1 needs a clean latent `start` of the sampled shape")
        x = (1 - t_start) * start + t_start * x
    n = shape[0]
    branches = [cond]
    use_cfg = uncond is not None and guidance != 1.0
    if use_cfg:
        branches.append(uncond)
    k = 0
    if contrast is not None and contrast_weight != 0.0:
        if contrast[0].shape[0] % n:
            raise ValueError(f"contrast needs K blocks of {n} rows, got {contrast[0].shape[0]}")
        k = contrast[0].shape[0] // n
        branches.append(contrast)
    ctx, mask, pooled = cond
    m = 1
    if len(branches) > 1:
        for b in branches[1:]:
            ctx, mask = _pad_cat(ctx, b[0]), _pad_cat(mask, b[1])
        pooled = torch.cat([b[2] for b in branches])
        m = pooled.shape[0] // n
    ts = time_grid(steps, shift) * t_start
    for i in range(steps):
        t0, t1 = float(ts[i]), float(ts[i + 1])
        xs = x if m == 1 else x.repeat(m, *([1] * (x.dim() - 1)))
        vs = model(xs, torch.full((m * n,), t0), ctx, mask, pooled).split(n)
        v_c = vs[0]
        v = vs[1] + guidance * (v_c - vs[1]) if use_cfg else v_c
        if k:
            v = v + contrast_weight * (v_c - torch.stack(vs[m - k:]).mean(0))
        x = x + (t1 - t0) * v
        if progress is not None:
            progress(i + 1, steps)
    return x


def _pad_cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Concatenate on batch, padding dim 1 (sequence) with zeros / False to the longer one."""
    s = max(a.shape[1], b.shape[1])

    def pad(x):
        if x.shape[1] == s:
            return x
        fill = torch.zeros((x.shape[0], s - x.shape[1], *x.shape[2:]), dtype=x.dtype, device=x.device)
        return torch.cat([x, fill], dim=1)

    return torch.cat([pad(a), pad(b)])
