"""Recording-condition degradations for synthetic speech: noise, reverberation, band limits, gain.

All functions take and return float32 waves `(samples,)`; everything random takes an explicit
numpy Generator. `recorded_in` chains them at random to make the "other" (harder) conditions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, resample_poly, sosfilt

NOISE_KINDS = ("white", "pink", "brown")
# Power spectrum ~ 1 / f ** exponent: pink falls 3 dB per octave, brown 6 dB per octave.
_SPECTRAL_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _below_full_scale(wave: np.ndarray) -> np.ndarray:
    """`wave` as float32, peak-normalized to 0.99 if it would clip (left alone otherwise)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return (wave * (0.99 / peak) if peak > 1.0 else wave).astype(np.float32)


def colored_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise `(n,)` with unit RMS and a white, pink or brown power spectrum."""
    if kind not in _SPECTRAL_EXPONENT:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    if n <= 0:
        raise ValueError(f"noise length must be positive, got {n}")
    white = rng.standard_normal(n)
    exponent = _SPECTRAL_EXPONENT[kind]
    if exponent == 0.0:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.arange(spectrum.size, dtype=np.float64)
        freqs[0] = 1.0  # no infinite DC gain; DC is then removed below
        spectrum *= freqs ** (-exponent / 2.0)
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n)
    rms = _rms(noise)
    return (noise / rms if rms > 0 else noise).astype(np.float32)


def fit_length(noise: np.ndarray, n: int) -> np.ndarray:
    """`noise` tiled (if shorter) and cropped to exactly `n` samples."""
    if noise.size == 0:
        raise ValueError("cannot fit an empty noise wave to a length")
    reps = -(-n // noise.size)
    return np.tile(noise, reps)[:n]


def mix_at_snr(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`wave` plus `noise` (tiled/cropped to its length) scaled so the SNR is `snr_db`."""
    noise = fit_length(np.asarray(noise, dtype=np.float32), wave.size)
    signal_rms, noise_rms = _rms(wave), _rms(noise)
    if noise_rms == 0.0:
        raise ValueError("cannot mix at an SNR with silent noise")
    scale = signal_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
    return (wave + scale * noise).astype(np.float32)


def room_impulse_response(rng: np.random.Generator, sample_rate: int = 16000,
                          rt60: tuple[float, float] = (0.2, 0.8),
                          direct_to_reverberant_db: tuple[float, float] = (-3.0, 10.0)
                          ) -> np.ndarray:
    """A synthetic room impulse response `(taps,)`: a unit direct path, then a decaying tail.

    The tail is Gaussian noise decaying by 60 dB over RT60 (drawn uniformly from `rt60`
    seconds), starting 1-8 ms after the direct path (the first reflections' delay), scaled so the
    direct-to-reverberant energy ratio is drawn from `direct_to_reverberant_db`.
    """
    t60 = rng.uniform(*rt60)
    delay = int(rng.uniform(0.001, 0.008) * sample_rate)
    taps = int(t60 * sample_rate)
    t = np.arange(taps) / sample_rate
    tail = rng.standard_normal(taps) * np.exp(-6.91 * t / t60)  # ln(1000) = 6.91: -60 dB at t60
    drr_db = rng.uniform(*direct_to_reverberant_db)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail ** 2))
    rir = np.zeros(1 + delay + taps, dtype=np.float64)
    rir[0] = 1.0
    rir[1 + delay:] = tail
    return rir.astype(np.float32)


def reverberate(wave: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """`wave` convolved with `rir`, cut to the input length (the tail past the end is dropped)."""
    return fftconvolve(wave, rir)[: wave.size].astype(np.float32)


def band_limit(wave: np.ndarray, low_hz: float, high_hz: float, sample_rate: int) -> np.ndarray:
    """4th-order Butterworth band-pass between `low_hz` and `high_hz`."""
    if not 0 < low_hz < high_hz < sample_rate / 2:
        raise ValueError(f"band {low_hz}-{high_hz} Hz must satisfy 0 < low < high < "
                         f"{sample_rate / 2} (Nyquist)")
    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, wave).astype(np.float32)


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """`wave` scaled by `gain_db` decibels."""
    return (wave * 10.0 ** (gain_db / 20.0)).astype(np.float32)


def babble_from_waves(waves: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Babble `(n,)` with unit RMS: every wave (normalized, tiled, randomly shifted) summed."""
    if not waves:
        raise ValueError("babble needs at least one speech wave")
    total = np.zeros(n, dtype=np.float64)
    for wave in waves:
        rms = _rms(wave)
        if rms == 0.0:
            continue
        shift = int(rng.integers(wave.size))
        total += fit_length(np.roll(wave, -shift) / rms, n)
    rms = _rms(total)
    if rms == 0.0:
        raise ValueError("babble from silent waves")
    return (total / rms).astype(np.float32)


def recorded_in(wave: np.ndarray, rng: np.random.Generator,
                noise_bank: Sequence[np.ndarray] = (), sample_rate: int = 16000) -> np.ndarray:
    """`wave` as if recorded in a poor room/channel: a random chain of degradations.

    Each step applies independently: reverberation (p=0.5), additive white/pink/brown noise or
    babble from `noise_bank` (long unit-RMS babble waves; p=0.8, SNR uniform 0-20 dB),
    telephone-like band-limiting (p=0.3), gain -12..+6 dB (p=0.5). The result is peak-normalized
    to 0.99 if it would clip.
    """
    out = np.asarray(wave, dtype=np.float32)
    if out.size == 0:
        return out
    if rng.random() < 0.5:
        out = reverberate(out, room_impulse_response(rng, sample_rate))
    if rng.random() < 0.8:
        kinds = list(NOISE_KINDS) + (["babble"] if len(noise_bank) else [])
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "babble":
            bank = noise_bank[int(rng.integers(len(noise_bank)))]
            start = int(rng.integers(bank.size))
            noise = fit_length(np.roll(bank, -start), out.size)
        else:
            noise = colored_noise(kind, out.size, rng)
        out = mix_at_snr(out, noise, rng.uniform(0.0, 20.0))
    if rng.random() < 0.3:
        out = band_limit(out, rng.uniform(200.0, 400.0), rng.uniform(3000.0, 3800.0), sample_rate)
    if rng.random() < 0.5:
        out = apply_gain(out, rng.uniform(-12.0, 6.0))
    return _below_full_scale(out)


# ---------------------------------------------------------------------------------------------
# Held-out channels: conditions no training split or training augmentation ever applies, so the
# test-heldout split measures transfer to a recording chain the model has not met in kind.

# Not mains hum: the Speech Commands background noises (augment.background_noise_dir) hold one.
HELDOUT_CHANNELS = ("phone_codec", "sparse_echoes", "agc_compression")
_MU = 255.0


def phone_codec(wave: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """`wave` through a G.711 mu-law telephone codec: 8 kHz sampling, 8-bit mu-law samples.

    The 8 kHz round trip removes everything above 4 kHz; the 8-bit companding adds quantization
    noise that follows the signal's level (no training noise does).
    """
    narrow = resample_poly(wave, 8000, sample_rate)
    narrow = np.clip(narrow, -1.0, 1.0)
    companded = np.sign(narrow) * np.log1p(_MU * np.abs(narrow)) / np.log1p(_MU)
    code = np.round((companded + 1.0) * 127.5)  # 256 levels
    decoded = code / 127.5 - 1.0
    narrow = np.sign(decoded) * ((1.0 + _MU) ** np.abs(decoded) - 1.0) / _MU
    out = resample_poly(narrow, sample_rate, 8000)[: wave.size]
    return np.pad(out, (0, wave.size - out.size)).astype(np.float32)


def sparse_echoes(wave: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000,
                  n_echoes: tuple[int, int] = (2, 5), delay_ms: tuple[float, float] = (3.0, 35.0),
                  gain: tuple[float, float] = (0.3, 0.7)) -> np.ndarray:
    """`wave` in a small hard-walled space: a few discrete reflections, no diffuse tail.

    Training rooms are a direct path plus a dense exponentially decaying tail; a handful of
    strong early echoes instead comb-filter the spectrum (notches every 1/delay Hz).
    """
    n = int(rng.integers(n_echoes[0], n_echoes[1] + 1))
    delays = np.sort(rng.uniform(*delay_ms, size=n)) * sample_rate / 1000.0
    impulse = np.zeros(int(delays[-1]) + 1, dtype=np.float64)
    impulse[0] = 1.0
    for delay in delays:
        impulse[int(delay)] += rng.uniform(*gain) * rng.choice([-1.0, 1.0])
    return reverberate(wave, impulse.astype(np.float32))


def agc_compression(wave: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000,
                    threshold_db: tuple[float, float] = (-12.0, -4.0),
                    ratio: tuple[float, float] = (4.0, 10.0)) -> np.ndarray:
    """`wave` through an automatic gain control, as phones and laptop microphones apply it: an RMS
    compressor (10 ms detector) above a threshold relative to the utterance's RMS, then make-up
    gain back to the input RMS. Loud syllables flatten and the floor between words rises."""
    x = np.asarray(wave, dtype=np.float64)
    rms = _rms(x)
    if rms == 0.0:
        return np.asarray(wave, dtype=np.float32)
    smooth = np.exp(-1.0 / (0.010 * sample_rate))
    envelope = np.sqrt(lfilter([1.0 - smooth], [1.0, -smooth], x * x)) + 1e-12
    threshold = rms * 10.0 ** (rng.uniform(*threshold_db) / 20.0)
    slope = 1.0 / rng.uniform(*ratio) - 1.0
    gain = np.where(envelope > threshold, (envelope / threshold) ** slope, 1.0)
    out = x * gain
    return (out * (rms / max(_rms(out), 1e-12))).astype(np.float32)


def heldout_channel(wave: np.ndarray, rng: np.random.Generator,
                    sample_rate: int = 16000) -> tuple[np.ndarray, list[str]]:
    """`wave` through one or two of the held-out channels (in a random order); returns the
    wave and the channels' names, in the order applied."""
    count = int(rng.integers(1, 3))
    names = [HELDOUT_CHANNELS[i] for i in rng.permutation(len(HELDOUT_CHANNELS))[:count]]
    out = np.asarray(wave, dtype=np.float32)
    for name in names:
        if name == "phone_codec":
            out = phone_codec(out, sample_rate)
        elif name == "sparse_echoes":
            out = sparse_echoes(out, rng, sample_rate)
        else:
            out = agc_compression(out, rng, sample_rate)
    return _below_full_scale(out), names
