"""Causal 3D video VAE: frames (N, 3, T, H, W) in [-1, 1] <-> latents (N, C, 1 + (T-1)/4, H/s, W/s).

The design follows CogVideoX / Open-Sora-Plan at toy size:
- every convolution is causal in time (padded on the past side by repeating the first frame), so an
  output frame never depends on later input frames;
- temporal compression keeps the first frame alone: T = 1 + 4k frames -> 1 + k latent frames, so an
  image is a one-frame video and shares the model with clips;
- spatial compression by a 2x2 pixel-unshuffle then strided convolutions (4x4 in total for the shipped
  size `vae-f4c8`, 8x8 for `vae-f8c8`);
- normalisation is per frame (GroupNorm over C, H, W) so it does not leak the future into the past;
- a small-beta KL regulariser keeps the latent space smooth for the diffusion model.
Clips whose length is not 1 + 4k are padded at the end by repeating the last frame and cropped after
decoding (`encode` / `decode` take care of it; see `latent_frames` / `pixel_frames`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VAEConfig:
    latent_channels: int = 8
    width: int = 48  # channels at the pixel-unshuffled resolution (H/2)
    mults: tuple[int, ...] = (1, 2, 2)  # channel multiplier per level; one down/up-sampler between levels
    temporal_down: tuple[bool, ...] = (True, True)  # per down-sampler: also halve time?
    spatial_down: tuple[bool, ...] = (True, True)  # per down-sampler: also halve space?
    blocks: int = 1  # residual blocks per level
    refine_blocks: int = 0  # extra decoder blocks at its last level (grown by a decoder fine-tune)
    kl_weight: float = 1e-6

    @property
    def time_factor(self) -> int:
        return 2 ** sum(self.temporal_down)

    @property
    def space_factor(self) -> int:
        return 2 * 2 ** sum(self.spatial_down)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# Sizes: what a name builds. A size is not a weights preset: the shipped `tfvae-f4c8` weights are the size
# `vae-f4c8` (generator/weights/tfvae-f4c8.recipe.toml trains them).
VAE_SIZES = {
    # 4x time, 4x4 space, 8 latent channels, 5 refine blocks: the shipped tfvae-f4c8's network
    "vae-f4c8": VAEConfig(latent_channels=8, width=40, mults=(1, 2, 2), spatial_down=(True, False),
                          refine_blocks=5),
    # 4x time, 8x8 space (the detector's causal3d-f8t4 autoencoder is this size, narrower)
    "vae-f8c8": VAEConfig(latent_channels=8, width=48, mults=(1, 2, 2)),
    "vae-tiny": VAEConfig(latent_channels=4, width=8, mults=(1, 2, 2)),  # tests
}


class CausalConv3d(nn.Module):
    """Conv3d with kernel kt in time padded on the past side only (first frame repeated)."""

    def __init__(self, cin: int, cout: int, k: int = 3, kt: int | None = None, stride=(1, 1, 1)):
        super().__init__()
        kt = k if kt is None else kt
        self.kt, self.ks = kt, k
        self.conv = nn.Conv3d(cin, cout, (kt, k, k), stride=stride, padding=(0, k // 2, k // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T, H, W)
        if self.kt > 1:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1), x], dim=2)  # (N, C, kt-1+T, H, W)
        return self.conv(x)


class FrameNorm(nn.Module):
    """GroupNorm applied to each frame on its own (keeps the network causal in time)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(8, c), c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        y = self.norm(x.transpose(1, 2).reshape(n * t, c, h, w))  # (N*T, C, H, W)
        return y.reshape(n, t, c, h, w).transpose(1, 2)  # (N, C, T, H, W)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = FrameNorm(cin), CausalConv3d(cin, cout)
        self.norm2, self.conv2 = FrameNorm(cout), CausalConv3d(cout, cout)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Strided causal conv. In time: kernel 3, stride 2, two frames of past padding, so output 0 sees
    only input frame 0 and output i sees frames 2i-2..2i: T = 1 + 2m -> 1 + m."""

    def __init__(self, cin: int, cout: int, time: bool, space: bool):
        super().__init__()
        self.conv = CausalConv3d(cin, cout, stride=(2 if time else 1, 2 if space else 1, 2 if space else 1))

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    """Inverse of Downsample: frame 0 stays single, later frames are repeated twice (1 + m -> 1 + 2m),
    nearest-neighbour 2x in space, then a causal conv."""

    def __init__(self, cin: int, cout: int, time: bool, space: bool):
        super().__init__()
        self.time, self.space = time, space
        self.conv = CausalConv3d(cin, cout)

    def forward(self, x):  # (N, C, T, H, W)
        if self.time and x.shape[2] > 1:
            x = torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(2, dim=2)], dim=2)  # (N, C, 2T-1, H, W)
        if self.space:
            x = x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)  # (N, C, T, 2H, 2W)
        return self.conv(x)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.width * m for m in cfg.mults]
        self.conv_in = CausalConv3d(12, chans[0])
        layers: list[nn.Module] = []
        for i, c in enumerate(chans):
            layers += [ResBlock(c, c) for _ in range(cfg.blocks)]
            if i < len(chans) - 1:
                layers.append(Downsample(c, chans[i + 1], cfg.temporal_down[i], cfg.spatial_down[i]))
        self.blocks = nn.Sequential(*layers)
        self.norm_out = FrameNorm(chans[-1])
        self.conv_out = CausalConv3d(chans[-1], 2 * cfg.latent_channels)

    def forward(self, x):  # (N, 3, T, H, W)
        n, _, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(n * t, 3, h, w)
        x = F.pixel_unshuffle(x, 2).reshape(n, t, 12, h // 2, w // 2).transpose(1, 2)  # (N, 12, T, H/2, W/2)
        x = self.blocks(self.conv_in(x))  # (N, C', t, h, w)
        return self.conv_out(F.silu(self.norm_out(x)))  # (N, 2C, t, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = [cfg.width * m for m in cfg.mults][::-1]
        self.conv_in = CausalConv3d(cfg.latent_channels, chans[0])
        layers: list[nn.Module] = []
        n_up = len(chans) - 1
        for i, c in enumerate(chans):
            layers += [ResBlock(c, c) for _ in range(cfg.blocks)]
            if i < n_up:
                j = n_up - 1 - i  # the matching down-sampler
                layers.append(Upsample(c, chans[i + 1], cfg.temporal_down[j], cfg.spatial_down[j]))
        layers += [ResBlock(chans[-1], chans[-1]) for _ in range(cfg.refine_blocks)]  # after, so a grown
        self.blocks = nn.Sequential(*layers)  # decoder keeps its base's parameter names
        self.norm_out = FrameNorm(chans[-1])
        self.conv_out = CausalConv3d(chans[-1], 12)

    def forward(self, z):  # (N, C, t, h, w)
        x = self.blocks(self.conv_in(z))
        x = self.conv_out(F.silu(self.norm_out(x)))  # (N, 12, T, H/2, W/2)
        n, _, t, h, w = x.shape
        x = F.pixel_shuffle(x.transpose(1, 2).reshape(n * t, 12, h, w), 2)  # (N*T, 3, H, W)
        return x.reshape(n, t, 3, 2 * h, 2 * w).transpose(1, 2)  # (N, 3, T, H, W)


class VideoVAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)
        self.initialize_weights()

    def initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
                nn.init.zeros_(m.bias)
        for m in self.modules():  # residual branches start small so the stack begins near the identity
            if isinstance(m, ResBlock):
                m.conv2.conv.weight.data.mul_(0.1)

    # --- lengths ---------------------------------------------------------------------------------
    def latent_frames(self, frames: int) -> int:
        f = self.cfg.time_factor
        return 1 + -(-(frames - 1) // f)

    def pixel_frames(self, latent_frames: int) -> int:
        return 1 + (latent_frames - 1) * self.cfg.time_factor

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad T to 1 + f*k (repeat the last frame) and H, W to multiples of the spatial factor."""
        t, h, w = x.shape[2:]
        s = self.cfg.space_factor
        tt = self.pixel_frames(self.latent_frames(t))
        if tt > t:
            x = torch.cat([x, x[:, :, -1:].expand(-1, -1, tt - t, -1, -1)], dim=2)
        ph, pw = -h % s, -w % s
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph, 0, 0), mode="replicate")
        return x

    # --- API ---------------------------------------------------------------------------------------
    def encode_dist(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 3, T, H, W) in [-1, 1] -> (mean, logvar), each (N, C, t, h, w)."""
        mean, logvar = self.encoder(self._pad(x)).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor, sample: bool = False) -> torch.Tensor:
        mean, logvar = self.encode_dist(x)
        return mean + torch.randn_like(mean) * (0.5 * logvar).exp() if sample else mean

    def decode(self, z: torch.Tensor, frames: int | None = None, height: int | None = None,
               width: int | None = None) -> torch.Tensor:
        """z (N, C, t, h, w) -> x (N, 3, T, H, W) in about [-1, 1], cropped to (frames, height, width)."""
        x = self.decoder(z)
        return x[:, :, : frames or x.shape[2], : height or x.shape[3], : width or x.shape[4]]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (reconstruction cropped to x's shape, KL per element)."""
        mean, logvar = self.encode_dist(x)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        rec = self.decode(z, *x.shape[2:])
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return rec, kl


def create_vae(size: str, **overrides) -> VideoVAE:
    """A freshly initialised VAE of `size` (a key of VAE_SIZES), fields overridden by `overrides`."""
    if size not in VAE_SIZES:
        raise ValueError(f"unknown VAE size {size!r} (sizes: {', '.join(VAE_SIZES)}; a weights preset such "
                         "as tfvae-f4c8 loads with trustframe.generator.models.load_vae)")
    cfg = VAEConfig(**{**VAE_SIZES[size].to_dict(), **overrides})
    return VideoVAE(cfg)
