"""trustframe.detector: flags AI-generated video and images that carry no mark.

`load("tfdet-s").score(frames)` -> `DetectorResult` (calibrated P(AI-generated), a label,
per-frame scores, optionally a heat map). Trained by `python -m trustframe.detector.train` on
aligned real/fake pairs made by `python -m trustframe.detector.data`. The names below load
lazily, so importing the package (the CLI does) does not import torch.
"""

__all__ = ["DEFAULT_PRESET", "Calibration", "Detector", "DetectorResult", "load"]


def __getattr__(name: str):
    if name in __all__:
        from trustframe.detector import api

        return getattr(api, name)
    raise AttributeError(f"module 'trustframe.detector' has no attribute {name!r}")
