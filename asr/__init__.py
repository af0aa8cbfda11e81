"""Speech recognition: DeepSpeech2 + CTC (model), data, training, greedy / beam / LM decoding.

The Python API (`asr.transcriber`):

    from asr import Transcriber
    result = Transcriber.from_checkpoint("best.pt").transcribe("recording.flac")
    result.text, result.words  # words: Word(word, start, end, confidence), times in seconds

The names are imported on first use, so `python -m asr.train` and the other commands do not load
the decoding stack they do not need.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Transcriber", "Transcript", "Word"]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on demand
    from asr.transcriber import Transcriber, Transcript, Word


def __getattr__(name: str):
    if name in __all__:
        from asr import transcriber

        return getattr(transcriber, name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
