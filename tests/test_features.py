import math

import pytest
import scipy.fft
import torch
import torchaudio
from torchaudio.compliance import kaldi

from common.features import KINDS, NORMALIZATIONS, FeatureConfig, make_features, mel_filters, vtlp_warp

LENGTHS = [16000, 9001, 4321, 400, 161]


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(LENGTHS), 16000) noise with a different amplitude per row, zero-padded past each length."""
    g = torch.Generator().manual_seed(seed)
    waves = torch.randn(len(LENGTHS), max(LENGTHS), generator=g) * torch.linspace(0.05, 0.5, len(LENGTHS))[:, None]
    lengths = torch.tensor(LENGTHS)
    waves[torch.arange(waves.shape[1]) >= lengths[:, None]] = 0
    return waves, lengths


@pytest.mark.parametrize("kind, num_features", [("logmel", 80), ("mfcc", 40), ("spectrogram", 201),
                                                ("fbank", 80)])
def test_shapes(kind, num_features):
    extractor = make_features(FeatureConfig(kind=kind))
    assert extractor.num_features == num_features
    waves, lengths = batch()
    feats, frames = extractor(waves, lengths)
    assert feats.shape == (len(LENGTHS), num_features, int(frames.max()))
    assert frames.dtype == torch.long and frames.shape == (len(LENGTHS),)
    single, n = extractor(waves[0])
    assert single.shape == (num_features, int(n))


def test_frame_lengths_match_reference_transforms():
    waves, lengths = batch()
    stft_frames = make_features(FeatureConfig(kind="logmel"))(waves, lengths)[1]
    fbank_frames = make_features(FeatureConfig(kind="fbank"))(waves, lengths)[1]
    # Constant padding: torch's reflect padding refuses utterances shorter than n_fft // 2.
    spectrogram = torchaudio.transforms.Spectrogram(n_fft=400, hop_length=160, pad_mode="constant")
    for i, n in enumerate(LENGTHS):
        assert stft_frames[i] == spectrogram(waves[i, :n]).shape[-1]
        if n >= 400:
            assert fbank_frames[i] == kaldi.fbank(waves[i:i + 1, :n], num_mel_bins=80).shape[0]
        else:  # kaldi.fbank refuses input shorter than one window; snip_edges gives no frame
            assert fbank_frames[i] == 0


def test_values_match_torchaudio_and_kaldi():
    wave = batch()[0][1, :9001]
    floor = 1e-9
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=80)(wave)
    logmel = mel.clamp(min=floor).log()
    torch.testing.assert_close(make_features(FeatureConfig())(wave)[0], logmel)
    power = torchaudio.transforms.Spectrogram(n_fft=400, hop_length=160)(wave)
    torch.testing.assert_close(make_features(FeatureConfig(kind="spectrogram"))(wave)[0],
                               power.clamp(min=floor).log())
    mfcc = scipy.fft.dct(logmel.numpy(), type=2, norm="ortho", axis=0)[:40]
    torch.testing.assert_close(make_features(FeatureConfig(kind="mfcc"))(wave)[0],
                               torch.from_numpy(mfcc), atol=1e-4, rtol=1e-5)
    # Kaldi floors at float32 epsilon rather than log_floor; noise never gets near either.
    torch.testing.assert_close(make_features(FeatureConfig(kind="fbank"))(wave)[0],
                               kaldi.fbank(wave[None], num_mel_bins=80, low_freq=0.0).T)


@pytest.mark.parametrize("normalize", NORMALIZATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_batch_equals_each_utterance_alone(kind, normalize):
    extractor = make_features(FeatureConfig(kind=kind, normalize=normalize))
    waves, lengths = batch()
    feats, frames = extractor(waves, lengths)
    for i, n in enumerate(LENGTHS):
        alone, n_frames = extractor(waves[i, :n])
        assert n_frames == frames[i]
        torch.testing.assert_close(feats[i, :, :n_frames], alone, atol=1e-4, rtol=1e-5)
        assert (feats[i, :, n_frames:] == 0).all()


def test_utterance_normalization_over_valid_frames_only():
    extractor = make_features(FeatureConfig(normalize="utterance"))
    feats, frames = extractor(*batch())
    for i, n in enumerate(frames.tolist()):
        valid = feats[i, :, :n].double()
        torch.testing.assert_close(valid.mean(-1), torch.zeros(80, dtype=torch.double), atol=1e-5, rtol=0)
        torch.testing.assert_close(valid.std(-1, unbiased=False), torch.ones(80, dtype=torch.double),
                                   atol=1e-3, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_silence_hits_log_floor(kind):
    floor = 1e-6
    feats, frames = make_features(FeatureConfig(kind=kind, log_floor=floor))(torch.zeros(4000))
    assert frames > 0 and torch.isfinite(feats).all()
    if kind == "mfcc":  # DCT of a constant: only c0 = log(floor) * sqrt(n_mels)
        torch.testing.assert_close(feats[0], torch.full_like(feats[0], math.log(floor) * math.sqrt(80)))
        assert feats[1:].abs().max() < 1e-4
    else:
        torch.testing.assert_close(feats, torch.full_like(feats, math.log(floor)))


def test_fbank_utterance_shorter_than_a_window_has_no_frames():
    feats, frames = make_features(FeatureConfig(kind="fbank"))(torch.ones(2, 500), torch.tensor([500, 300]))
    assert frames.tolist() == [1, 0]
    assert (feats[1] == 0).all()


def test_bad_config_and_inputs():
    with pytest.raises(ValueError, match="kind"):
        make_features(FeatureConfig(kind="mel"))
    with pytest.raises(ValueError, match="normalize"):
        make_features(FeatureConfig(normalize="global"))
    with pytest.raises(ValueError, match="n_mfcc"):
        make_features(FeatureConfig(kind="mfcc", n_mfcc=100))
    extractor = make_features(FeatureConfig())
    with pytest.raises(ValueError, match="lengths"):
        extractor(torch.zeros(2, 100), torch.tensor([100, 101]))
    with pytest.raises(ValueError, match="lengths"):
        extractor(torch.zeros(2, 100), torch.tensor([100, 0]))


def test_mel_filters_at_the_fft_bins_are_torchaudios():
    bins = torch.linspace(0, 8000, 201, dtype=torch.float64)
    expected = torchaudio.functional.melscale_fbanks(201, 20.0, 7600.0, 64, 16000).double()
    assert torch.allclose(mel_filters(bins, 20.0, 7600.0, 64), expected, atol=1e-5)


def test_vtlp_warp_scales_below_the_knee_and_keeps_nyquist():
    freqs = torch.tensor([0.0, 1000.0, 4000.0, 8000.0], dtype=torch.float64)
    warped = vtlp_warp(freqs, torch.tensor([0.9, 1.0, 1.1], dtype=torch.float64), 16000)
    assert torch.allclose(warped[:, :3], torch.tensor([[0.0, 900, 3600], [0, 1000, 4000], [0, 1100, 4400]],
                                                      dtype=torch.float64))
    assert torch.allclose(warped[:, 3], torch.full((3,), 8000.0, dtype=torch.float64))
    assert bool((warped.diff(dim=1) > 0).all())  # monotonic: no band folds over


@pytest.mark.parametrize("kind", ["logmel", "mfcc", "fbank"])
def test_vtlp_warp_one_is_no_warp_and_a_factor_moves_a_tone_up(kind):
    features = make_features(FeatureConfig(kind=kind, n_mels=40))
    t = torch.arange(16000) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 1000 * t)[None].repeat(2, 1)
    plain, _ = features(tone)
    same, _ = features(tone, warp=torch.ones(2))
    assert torch.allclose(plain, same, atol=1e-4)
    if kind == "mfcc":
        return
    warped, _ = features(tone, warp=torch.tensor([0.85, 1.15]))
    peak = warped[:, :, 10:-10].mean(-1).argmax(-1)
    assert peak[0] < plain[0, :, 10:-10].mean(-1).argmax() < peak[1]  # the formant moves with alpha


def test_vtlp_needs_a_mel_kind():
    features = make_features(FeatureConfig(kind="spectrogram"))
    with pytest.raises(ValueError, match="warp must be"):
        features(torch.zeros(1, 4000), warp=torch.ones(1))
