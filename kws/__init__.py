"""Keyword spotting: the course CRNN (model), Speech Commands data, training, evaluation with
au-fa-fr, model costs (costs), streaming inference with explicit state (stream, its CLI in demo)
and compression (distill, prune, quantize, the report in compress, export).

The Python API (`kws.detector`):

    from kws import Detector
    detector = Detector.from_checkpoint("logs/kws/detector.ts")  # or a kws.train checkpoint
    detections = detector.push(chunk)  # Detection(time, probability) per keyword heard

The names are imported on first use, so the package's commands do not load what they do not need.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Detector", "Detection"]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from kws.detector import Detection, Detector


def __getattr__(name: str):
    if name in __all__:
        from kws import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'kws' has no attribute {name!r}")
