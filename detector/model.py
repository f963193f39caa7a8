"""The detector network: a timm ResNet made from scratch on a residual input, fully convolutional.

Input: a frame and the frame before it, float (N, 3, H, W) each in [-1, 1]. The network sees
no pixels and no colour, only luma residuals: the frame's luma minus its 3x3 local mean (where a
decoder's upsampling trace lives; the content is mostly removed) and that residual's change since
the previous frame (zero for an image, or when the previous frame is not the one just before).
Colour is left out on purpose: the small autoencoders that make the training fakes shift colour
(a shortcut no real generator shares), and codecs subsample chroma anyway. The residuals are
taken at native resolution (a resize before them would destroy the trace); the stem's first conv
then reads every pixel of them and, at `stem_stride` 2, keeps a quarter of the positions with 8x
the channels (16 numbers for each 2x2 block's 8: nothing need be lost), which makes the shipped size
about 6x cheaper than stride 1. No max-pool. Output: a patch logit map (N, 1, H/s, W/s), s =
`cfg.stride` (8 per stem stride); a crop's logit is its mean.

Sizes are a registry (timm's `create_model` style): `det-s` ships as `tfdet-s`, `det-tiny`
exists for tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DetectorConfig:
    channels: tuple[int, ...] = (16, 32, 64, 128)  # per ResNet stage; stages 2-4 halve the resolution
    stem_width: int = 8  # timm's deep stem: three 3x3 convs, to 2 x stem_width channels
    residual_gain: float = 8.0  # residuals are small; this brings them to about unit scale
    stem_stride: int = 1  # the stem's first conv: 2 sees every pixel but computes on a quarter of them

    @property
    def stride(self) -> int:
        """Input pixels per patch of the logit map (a side)."""
        return 8 * self.stem_stride

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DetectorConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


DETECTOR_SIZES = {
    "det-s": DetectorConfig(stem_width=16, stem_stride=2),
    "det-tiny": DetectorConfig(channels=(8, 8, 16, 16), stem_width=4, stem_stride=2),
}
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B
IN_CHANNELS = 2


def residuals(frame: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) x 2 -> (N, 2, H, W): the luma residual and its temporal difference."""
    w = frame.new_tensor(LUMA).view(1, 3, 1, 1)

    def hp(x):
        y = (x * w).sum(dim=1, keepdim=True)  # (N, 1, H, W)
        return y - F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), 3, stride=1)

    r = hp(frame)
    return torch.cat([r, r - hp(prev)], dim=1)


class DetectorNet(nn.Module):
    def __init__(self, cfg: DetectorConfig):
        super().__init__()
        import timm

        self.cfg = cfg
        self.backbone = timm.create_model(
            "resnet18",
            pretrained=False,
            in_chans=IN_CHANNELS,
            num_classes=0,
            global_pool="",
            layers=(1, 1, 1, 1),
            channels=cfg.channels,
            stem_width=cfg.stem_width,
            stem_type="deep",
        )
        # no max-pool, and the stem's first conv at `stem_stride` (timm's default is 2 and a max-pool:
        # output stride 32); the residual is taken at native resolution before it
        self.backbone.conv1[0].stride = (cfg.stem_stride, cfg.stem_stride)
        self.backbone.maxpool = nn.Identity()
        self.head = nn.Conv2d(cfg.channels[-1], 1, 1)
        self.initialize_weights()

    def initialize_weights(self):
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # starts at P = 0.5 everywhere

    def forward(self, frame: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        x = residuals(frame, prev) * self.cfg.residual_gain  # (N, 2, H, W)
        return self.head(self.backbone.forward_features(x))  # (N, 1, H/8, W/8)


def create_detector(name: str, **overrides) -> DetectorNet:
    if name not in DETECTOR_SIZES:
        raise ValueError(f"unknown detector size {name!r} (sizes: {', '.join(DETECTOR_SIZES)})")
    return DetectorNet(DetectorConfig(**{**DETECTOR_SIZES[name].to_dict(), **overrides}))
