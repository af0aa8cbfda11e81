"""Channel randomization: what a recording chain does to speech, drawn per utterance.

A synthesizer's exact spectrum is a cue a model can lean on; random equalization, filters,
distortion and gain ramps (audiomentations transforms) take it away. None of these is a held-out
channel (docs/heldout.md): test-heldout's telephone codec, sparse echoes and gain control stay
unseen. ASR and KWS training build the same chain from their augment configs.
"""
from __future__ import annotations


def channel_transforms(*, eq_p: float, eq_gain_db: list[float], filter_p: float, distortion_p: float,
                       gain_transition_p: float) -> list:
    """audiomentations transforms for the enabled channel effects (each probability > 0), in
    recording-chain order: 7-band parametric EQ (each band's gain in `eq_gain_db`), one of a
    low-, high- or band-pass filter, tanh or clipping distortion, a gain ramp. They draw from
    the global `random` and `numpy.random` generators: seed those per utterance."""
    import audiomentations as A  # imported lazily: it pulls in librosa/numba (slow to import)

    transforms = []
    if eq_p > 0:
        transforms.append(A.SevenBandParametricEQ(min_gain_db=eq_gain_db[0], max_gain_db=eq_gain_db[1], p=eq_p))
    if filter_p > 0:  # cutoffs that thin speech out without removing a band it needs
        transforms.append(A.OneOf([A.LowPassFilter(min_cutoff_freq=2500.0, max_cutoff_freq=7500.0, p=1.0),
                                   A.HighPassFilter(min_cutoff_freq=50.0, max_cutoff_freq=500.0, p=1.0),
                                   A.BandPassFilter(min_center_freq=800.0, max_center_freq=2500.0,
                                                    min_bandwidth_fraction=1.2, max_bandwidth_fraction=1.99,
                                                    p=1.0)], p=filter_p))
    if distortion_p > 0:
        transforms.append(A.OneOf([A.TanhDistortion(min_distortion=0.05, max_distortion=0.6, p=1.0),
                                   A.ClippingDistortion(min_percentile_threshold=0, max_percentile_threshold=20,
                                                        p=1.0)], p=distortion_p))
    if gain_transition_p > 0:
        transforms.append(A.GainTransition(min_gain_db=-18.0, max_gain_db=6.0, min_duration=0.2, max_duration=2.0,
                                           p=gain_transition_p))
    return transforms
