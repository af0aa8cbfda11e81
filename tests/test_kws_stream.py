import math

import numpy as np
import pytest
import torch

from common.features import FeatureConfig, make_features
from kws.demo import detect
from kws.model import CRNN, ModelConfig
from kws.stream import (IncrementalLogMel, SlidingAttention, StreamingDetector, feature_frame_ready_at,
                        offline_reference, stream_wave)

FEATURES = make_features(FeatureConfig(kind="logmel", n_mels=40))


def track(seconds: float = 2.0, seed: int = 0) -> torch.Tensor:
    """Noise with a few loud tone bursts: log-mel values far from the floor and varying."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    wave = 0.02 * rng.standard_normal(n)
    for start in rng.integers(0, n - 3000, size=4):
        t = np.arange(3000) / 16000
        wave[start:start + 3000] += 0.3 * np.sin(2 * np.pi * rng.uniform(300, 3000) * t)
    return torch.from_numpy(wave.astype(np.float32))


def random_model(seed: int = 0, **overrides) -> CRNN:
    torch.manual_seed(seed)
    return CRNN(40, ModelConfig(**overrides)).eval()


@pytest.mark.parametrize("chunk", [1, 7, 160, 333, 16000])
def test_incremental_logmel_gives_the_offline_frames(chunk):
    wave = track(1.0)
    logmel = IncrementalLogMel(FEATURES)
    streamed = torch.cat([logmel.push(wave[i:i + chunk]) for i in range(0, wave.shape[0], chunk)], dim=1)
    offline, _ = FEATURES(wave)
    # Every frame whose samples all arrived, i.e. all but the two the end reflection builds.
    ready = [feature_frame_ready_at(j, FEATURES) <= wave.shape[0] for j in range(offline.shape[1])]
    assert streamed.shape[1] == sum(ready) == 99
    torch.testing.assert_close(streamed, offline[:, :99], rtol=0, atol=1e-5)


def test_the_first_frame_waits_for_the_reflected_samples():
    logmel = IncrementalLogMel(FEATURES)
    wave = track(0.5)
    assert logmel.push(wave[:200]).shape == (40, 0)  # frame 0 also needs sample 200 (reflection)
    first = logmel.push(wave[200:201])
    assert first.shape == (40, 1)
    torch.testing.assert_close(first[:, 0], FEATURES(wave)[0][:, 0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 7, 160, 333, 16000])
def test_streaming_equals_the_offline_reference_for_any_chunk_size(chunk):
    model, wave, window = random_model(), track(2.0), 5
    reference = offline_reference(model, FEATURES, wave, window)
    times, probs = stream_wave(StreamingDetector(model, FEATURES, window), wave, chunk)
    assert probs.shape == (23,) and reference.shape == (23,)  # (199 - 20) // 8 + 1 conv frames
    torch.testing.assert_close(probs, reference, rtol=0, atol=1e-5)
    # Frame t's probability is ready once feature frame 8t + 19 is, i.e. at (8t + 19) * 160 + 200 samples.
    assert times[0].item() == pytest.approx((19 * 160 + 200) / 16000)
    assert times[1].item() - times[0].item() == pytest.approx(8 * 160 / 16000)


def test_streaming_stays_exact_with_huge_attention_energies():
    model = random_model(seed=1)
    with torch.no_grad():
        model.attention.energy[2].weight.mul_(400.0)  # energies spread over thousands
    wave, window = track(3.0, seed=2), 6
    reference = offline_reference(model, FEATURES, wave, window)
    detector = StreamingDetector(model, FEATURES, window)
    _, probs = stream_wave(detector, wave, 333)
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs, reference[:len(probs)], rtol=0, atol=1e-5)


@pytest.mark.parametrize("overrides", [
    {"rnn_type": "lstm", "hidden_size": 16},
    {"rnn_type": "rnn", "num_layers": 1},
    {"kernel_size": [5, 4], "stride": [2, 6]},  # stride > kernel: some feature frames are never read
])
def test_streaming_equals_offline_for_student_variants(overrides):
    model, wave = random_model(seed=3, **overrides), track(2.0, seed=4)
    reference = offline_reference(model, FEATURES, wave, 4)
    _, probs = stream_wave(StreamingDetector(model, FEATURES, 4), wave, 333)
    torch.testing.assert_close(probs, reference[:len(probs)], rtol=0, atol=1e-5)


def test_step_size_runs_the_model_once_per_group_and_caches_in_between():
    model, wave, window, step = random_model(), track(2.0), 5, 3
    reference = offline_reference(model, FEATURES, wave, window)
    calls = []
    model.rnn.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[1]))
    _, probs = stream_wave(StreamingDetector(model, FEATURES, window, step_size=step), wave, 160)
    n = probs.shape[0]
    assert calls == [step] * (n // step)  # one RNN call per group of 3 conv frames, none in between
    expected = torch.tensor([reference[(t + 1) // step * step - 1].item() if t + 1 >= step else 0.0
                             for t in range(n)])
    torch.testing.assert_close(probs, expected, rtol=0, atol=1e-5)
    # The same numbers whatever the chunking (groups are aligned to absolute conv frames).
    _, whole = stream_wave(StreamingDetector(model, FEATURES, window, step_size=step), wave, 16000)
    torch.testing.assert_close(whole, probs, rtol=0, atol=1e-6)


def test_reset_starts_a_new_stream():
    model, wave = random_model(), track(1.5)
    detector = StreamingDetector(model, FEATURES, 5)
    first = detector.push(wave)
    detector.push(track(1.0, seed=9))
    detector.reset()
    torch.testing.assert_close(detector.push(wave), first, rtol=0, atol=0)


def recomputed_context(energies: list[float], values: list[torch.Tensor], window: int) -> torch.Tensor:
    e = torch.tensor(energies[-window:], dtype=torch.float64)
    v = torch.stack(values[-window:]).double()
    return torch.softmax(e, dim=0) @ v


@pytest.mark.parametrize("pattern", ["random", "spikes", "falling", "rising"])
def test_sliding_attention_equals_recomputing_the_window(pattern):
    rng = np.random.default_rng(0)
    window, hidden, steps = 16, 8, 3000
    energies = {
        "random": rng.normal(0, 300, steps),  # weights from 1 to exp(-1000): most underflow
        "spikes": np.where(rng.random(steps) < 0.05, 5000.0, rng.normal(0, 3, steps)),
        "falling": -40.0 * np.arange(steps),  # the max leaves the window at every step
        "rising": 40.0 * np.arange(steps),  # a new max at every step
    }[pattern].tolist()
    attention = SlidingAttention(window, hidden)
    seen_e, seen_v = [], []
    worst = 0.0
    for energy in energies:
        value = torch.from_numpy(rng.standard_normal(hidden))
        attention.push(energy, value)
        seen_e.append(energy)
        seen_v.append(value)
        worst = max(worst, (attention.context() - recomputed_context(seen_e, seen_v, window)).abs().max().item())
    assert worst < 1e-9
    # A recomputation every `window` updates, plus one whenever the window's max energy has fallen
    # `margin` below the reference: at every step for "falling", often for energies spread over
    # thousands, hardly ever otherwise.
    bound = {"random": steps // 4, "spikes": steps // window + 50, "falling": steps, "rising": steps // window + 1}
    assert steps // window <= attention.recomputations <= bound[pattern]


def test_sliding_attention_rejects_non_finite_energies():
    with pytest.raises(ValueError, match="finite"):
        SlidingAttention(4, 2).push(math.inf, torch.zeros(2))


def test_detections_fire_once_per_keyword_with_a_refractory_period():
    times = torch.arange(0, 8, 0.08)
    probs = torch.zeros_like(times)
    probs[(times > 1.0) & (times < 1.6)] = 0.9  # one keyword, several frames above threshold
    probs[(times > 1.3) & (times < 1.4)] = 0.97
    probs[(times > 1.7) & (times < 1.8)] = 0.8  # a second run within the refractory period
    probs[(times > 3.0) & (times < 3.3)] = 0.6
    probs[(times > 5.0) & (times < 7.5)] = 0.7  # above threshold for longer than the refractory period
    detections = detect(times, probs, threshold=0.5, refractory=1.0)
    assert [round(t, 2) for t, _ in detections] == [1.04, 3.04, 5.04]
    assert [p for _, p in detections] == pytest.approx([0.97, 0.6, 0.7])
    assert detect(times, probs, threshold=0.95, refractory=1.0) == [(pytest.approx(1.36), pytest.approx(0.97))]
