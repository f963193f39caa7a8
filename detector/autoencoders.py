"""The autoencoders whose decoders make the detector's aligned fakes.

A real clip passed through encode -> decode (no denoising) differs from the original only by the
decoder's trace, which is what latent generators leave in every frame they output (Rajan et al.,
ICLR 2025; Corvi et al. 2025). We train three small ones on natural images, built the way the
field's generators decode, and add the generator's own shipped `tfvae-f4c8`:

- `sd2d-f8`: an SD-style 2D VAE, 8x spatial compression, three nearest x2 upsamplings + conv
  (Stable Diffusion 1.x/2.x/XL, hence AnimateDiff, VideoCrafter, Text2Video-Zero);
- `tconv2d-f8`: 8x, three 4x4 stride-2 transposed convolutions (GAN- and older-VAE-style);
- `causal3d-f8t4`: a causal 3D VAE, 4x time and 8x8 space (CogVideoX, Wan, Hunyuan style), the
  generator's own `VideoVAE` architecture at another size;
- `tfvae-f4c8`: the generator's shipped VAE (pixel-unshuffle 2x, then 2x nearest + conv).

The three trained here ship as weights (`detector/weights/<name>.*`), made by
`python -m trustframe.detector.train_autoencoder --recipe <name>`: L1 first, then the decoder
against a `PatchDiscriminator`.

Layouts: clips are float tensors (N, 3, T, H, W) in [-1, 1]; H, W multiples of 8.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from trustframe.training import native_bf16

DECODERS = ("sd2d-f8", "tconv2d-f8", "causal3d-f8t4", "tfvae-f4c8")
TRAINED_HERE = ("sd2d-f8", "tconv2d-f8", "causal3d-f8t4")


class _Res2d(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, c), nn.Conv2d(c, c, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(8, c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.silu(self.n2(self.c1(F.silu(self.n1(x))))))


class FrameAutoencoder(nn.Module):
    """A 2D autoencoder applied frame by frame: 8x spatial compression, `latent` channels.

    `upsample` is "nearest" (x2 nearest then 3x3 conv, as Stable Diffusion's decoder) or
    "tconv" (4x4 stride-2 transposed conv).
    """

    def __init__(self, upsample: str, width: int = 32, latent: int = 16):
        super().__init__()
        w = (width, 2 * width, 2 * width, 4 * width)
        enc: list[nn.Module] = [nn.Conv2d(3, w[0], 3, padding=1)]
        for i in range(3):
            enc += [_Res2d(w[i]), nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1)]
        enc += [_Res2d(w[3]), nn.GroupNorm(8, w[3]), nn.SiLU(), nn.Conv2d(w[3], latent, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(latent, w[3], 3, padding=1), _Res2d(w[3])]
        for i in (3, 2, 1):
            if upsample == "nearest":
                dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w[i], w[i - 1], 3, padding=1)]
            elif upsample == "tconv":
                dec += [nn.ConvTranspose2d(w[i], w[i - 1], 4, stride=2, padding=1)]
            else:
                raise ValueError(f"upsample must be 'nearest' or 'tconv', got {upsample!r}")
            dec.append(_Res2d(w[i - 1]))
        dec += [nn.GroupNorm(8, w[0]), nn.SiLU(), nn.Conv2d(w[0], 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, T, H, W) -> same
        n, c, t, h, w = x.shape
        f = x.transpose(1, 2).reshape(n * t, c, h, w)
        y = self.decoder(self.encoder(f))  # (N*T, 3, H, W)
        return y.reshape(n, t, c, h, w).transpose(1, 2)


class CausalVideoAutoencoder(nn.Module):
    """The generator's causal 3D `VideoVAE` at 4x time, 8x8 space, used as a plain autoencoder."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(self.vae.encode(x), *x.shape[2:])


class PatchDiscriminator(nn.Module):
    """A PatchGAN critic on frames (N, 3, H, W) -> a logit map (N, 1, H/8, W/8): three spectrally
    normalised stride-2 convolutions, as the critics that taught latent generators' decoders to
    invent texture (Esser et al., taming transformers; Rombach et al., Stable Diffusion's VAE)."""

    def __init__(self, width: int = 32):
        super().__init__()
        sn = nn.utils.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, 2 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * width, 4 * width, 4, 2, 1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(4 * width, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def decoder_of(model: nn.Module) -> nn.Module:
    """The decoding half of an autoencoder made by `create_autoencoder` (what an adversarial stage trains)."""
    return model.vae.decoder if isinstance(model, CausalVideoAutoencoder) else model.decoder


def create_autoencoder(name: str) -> nn.Module:
    if name == "sd2d-f8":
        return FrameAutoencoder("nearest")
    if name == "tconv2d-f8":
        return FrameAutoencoder("tconv")
    if name == "causal3d-f8t4":
        from trustframe.generator.vae import create_vae

        return CausalVideoAutoencoder(create_vae("vae-f8c8", width=24, latent_channels=16))
    raise ValueError(f"unknown autoencoder {name!r} (trained here: {', '.join(TRAINED_HERE)})")


def load_shipped_vae() -> nn.Module:
    """`tfvae-f4c8`, the generator's shipped VAE, as an autoencoder."""
    from trustframe.generator.models import load_vae

    vae, _ = load_vae("tfvae-f4c8")
    return CausalVideoAutoencoder(vae.eval())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors in [-1, 1]."""
    mse = float(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).pow(2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def reconstruct(model: nn.Module, clip: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> its reconstruction, uint8, same shape (H, W padded to 8 inside).

    Under bfloat16 autocast where the CPU does bf16 in hardware (`training.native_bf16`), as
    deployed generators decode in half precision: 3-10x faster than float32 here, and 52-53 dB from
    the float32 reconstruction (a third of the pixels one level off), far below what a codec changes.
    """
    t, h, w, _ = clip.shape
    x = torch.from_numpy(clip).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
    ph, pw = -h % 8, -w % 8
    if ph or pw:
        x = F.pad(x.reshape(1, 3 * t, h, w), (0, pw, 0, ph), mode="replicate").reshape(
            1, 3, t, h + ph, w + pw
        )
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=native_bf16()):
        y = model(x)[:, :, :t, :h, :w].float()
    return ((y[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
