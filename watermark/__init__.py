"""TrustFrame's invisible watermark: `embed` a keyed 48-bit payload, `detect` it with a p-value.

Importing this package loads nothing; presets load on first use and are cached.
"""

from trustframe.watermark.api import ALG, EmbedResult, WatermarkResult, detect, embed

__all__ = ["ALG", "EmbedResult", "WatermarkResult", "detect", "embed"]
