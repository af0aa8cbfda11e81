"""The voices of a held-out test split, the same kinds for every corpus (docs/heldout.md).

Half of a held-out split's speakers take the packaged variants that switch eSpeak to its Klatt
formant engine (`KLATT_VARIANTS`, never used for training); the other half take generated
variants whose formant scales lie outside the training range, half of them on the Klatt engine.
Every speaker's base is drawn from the training bases plus accents no training split uses
(`HELDOUT_LANGUAGES`). The held-out channels are `corpora.synth.degrade.heldout_channel`.

Each function draws only from the generator it is given, so a corpus that feeds them generators
of their own gets held-out speech that stays the same whatever its training settings.
"""
from __future__ import annotations

import numpy as np

from corpora.synth import voices
from corpora.synth.speakers import KLATT_VARIANTS, Speaker, make_speakers, one_speaker_per_voice

HELDOUT_LANGUAGES = ("en-029",)  # Caribbean English: no training split uses it
# Formant scales outside the training voices' 0.88-1.15 (`voices.VoiceRanges.formant_scale`).
HELDOUT_FORMANT_SCALES = ((0.76, 0.84), (1.2, 1.3))


def heldout_voices(n_speakers: int, formant_scales: tuple[tuple[float, float], ...],
                   rng: np.random.Generator) -> list[voices.RandomVoice]:
    """The generated variants of `n_speakers` held-out speakers: one for half of them (named
    hv0000, ...), with formant scales cycling through `formant_scales`, half on the Klatt engine."""
    scales = [tuple(r) for r in formant_scales]
    return [voices.random_voice(f"hv{i:04d}", voices.VoiceRanges(
                formant_scale=scales[i % len(scales)], klatt_p=0.5), rng)
            for i in range(n_speakers // 2)]


def heldout_speakers(n: int, generated: list[str], rng: np.random.Generator, *,
                     languages: list[str], ranges: dict, first_id: int,
                     data_path: str) -> list[Speaker]:
    """`n` held-out speakers with ids first_id, ...: packaged Klatt-engine variants first, then one
    speaker per `generated` variant (names in `data_path`'s variant folder), up to `n` in all.

    `languages`: the bases to draw from (training bases plus `HELDOUT_LANGUAGES`); `ranges`:
    rate / pitch / pitch_range bounds for `make_speakers`.
    """
    generated = generated[:n]
    packaged = make_speakers(n - len(generated), rng, languages=languages,
                             variants=KLATT_VARIANTS, first_id=first_id, **ranges)
    return packaged + one_speaker_per_voice(generated, rng, languages, ranges,
                                            first_id + len(packaged), data_path)
