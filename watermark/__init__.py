"""TrustFrame's invisible watermark: `embed` a keyed 48-bit payload, `detect` it with a p-value.

Importing this package loads nothing (not even torch: the names below load on first use);
presets load on first use and are cached.
"""

__all__ = ["ALG", "EmbedResult", "WatermarkResult", "detect", "embed"]


def __getattr__(name: str):
    if name in __all__:
        from trustframe.watermark import api

        return getattr(api, name)
    raise AttributeError(f"module 'trustframe.watermark' has no attribute {name!r}")
