import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from common.features import FeatureConfig, make_features
from kws.data import (AugmentConfig, DataConfig, KeywordDataset, LogMelChannel, WaveAugment, collate, epoch_sampler,
                      keyword_labels, make_wave_augment, mix_at_snr, pad_or_crop, split_clips,
                      split_listing)

WORD_PITCH = {"sheila": 1200.0, "yes": 500.0, "no": 700.0, "cat": 2000.0}


def write_speech_commands_tree(root: Path, n_speakers: int = 12, seed: int = 0, heldout: int = 0) -> Path:
    """A tiny Speech Commands layout: every speaker says every word of WORD_PITCH once as a tone.

    Speakers 0..n-5 train, n-4..n-3 validation, n-2..n-1 testing; `heldout` more speakers in
    _heldout_/ (the synthetic corpus's held-out split); a 2 s white noise in _background_noise_.
    Returns `root`.
    """
    rng = np.random.default_rng(seed)
    lists = {"validation": [], "testing": []}
    for s in range(n_speakers + heldout):
        speaker = f"{0xabc00000 + s:08x}"
        folder = root if s < n_speakers else root / "_heldout_"
        for word, pitch in WORD_PITCH.items():
            n = 16000 if s % 3 else 12000  # some clips shorter than a second
            t = np.arange(4000) / 16000
            clip = 0.003 * rng.standard_normal(n)
            start = int(rng.integers(0, n - 4000))
            clip[start:start + 4000] += 0.3 * np.sin(2 * np.pi * pitch * t) * np.hanning(4000)
            (folder / word).mkdir(parents=True, exist_ok=True)
            sf.write(folder / word / f"{speaker}_nohash_0.wav", clip.astype(np.float32), 16000, subtype="PCM_16")
            if n_speakers - 4 <= s < n_speakers:
                lists["validation" if s < n_speakers - 2 else "testing"].append(f"{word}/{speaker}_nohash_0.wav")
    for split, entries in lists.items():
        (root / f"{split}_list.txt").write_text("".join(e + "\n" for e in sorted(entries)))
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white_noise.wav",
             (0.1 * rng.standard_normal(32000)).astype(np.float32), 16000, subtype="PCM_16")
    return root


@pytest.fixture()
def tree(tmp_path) -> Path:
    return write_speech_commands_tree(tmp_path / "sc")


def test_labels_and_splits_follow_the_keyword_and_the_list_files(tree):
    cfg = DataConfig(root=str(tree), keyword="sheila")
    train, val, test = (split_clips(cfg, s) for s in ("train", "validation", "testing"))
    assert (len(train), len(val), len(test)) == (32, 8, 8)
    assert {c.speaker for c in val}.isdisjoint({c.speaker for c in train})
    labels = keyword_labels(train, "sheila")
    assert labels.tolist() == [int(c.word == "sheila") for c in train]
    assert int(labels.sum()) == 8


def test_a_missing_keyword_is_named(tree):
    with pytest.raises(ValueError, match="'marvin'"):
        split_clips(DataConfig(root=str(tree), keyword="marvin"), "train")


def test_pad_or_crop():
    wave = torch.arange(10, dtype=torch.float32)
    assert pad_or_crop(wave, 13).tolist() == list(range(10)) + [0, 0, 0]
    assert pad_or_crop(wave, 4).tolist() == [3, 4, 5, 6]  # centered
    crop = pad_or_crop(wave, 4, np.random.default_rng(0))
    assert crop.shape == (4,) and crop[1:].tolist() == [crop[0] + 1, crop[0] + 2, crop[0] + 3]


def test_mix_at_snr_hits_the_requested_snr():
    rng = np.random.default_rng(0)
    wave = torch.from_numpy(rng.standard_normal(16000).astype(np.float32)) * 0.2
    noise = torch.from_numpy(rng.standard_normal(16000).astype(np.float32)) * 3.0
    mixed = mix_at_snr(wave, noise, 10.0)
    snr = 10 * torch.log10(wave.pow(2).mean() / (mixed - wave).pow(2).mean())
    assert abs(snr.item() - 10.0) < 1e-3
    assert torch.equal(mix_at_snr(torch.zeros(100), noise[:100], 10.0), torch.zeros(100))


def test_oversampling_draws_the_requested_share_of_positives_reproducibly():
    labels = torch.zeros(20000, dtype=torch.long)
    labels[:400] = 1  # 2 % positives
    draws = list(epoch_sampler(labels, 0.5, seed=0, epoch=0))
    assert len(draws) == 20000
    assert abs(labels[draws].float().mean().item() - 0.5) < 0.02
    assert draws == list(epoch_sampler(labels, 0.5, seed=0, epoch=0))
    assert draws != list(epoch_sampler(labels, 0.5, seed=0, epoch=1))
    plain = list(epoch_sampler(labels, None, seed=0, epoch=0))
    assert sorted(plain) == list(range(20000))
    with pytest.raises(ValueError, match="positive_fraction"):
        epoch_sampler(labels, 1.5, seed=0, epoch=0)


def test_augmentation_is_seeded_by_seed_epoch_and_index(tree):
    cfg = AugmentConfig(background_noise_p=1.0, gaussian_noise_p=1.0, volume_p=1.0)
    augment = make_wave_augment(cfg, str(tree), 16000)
    clips = split_clips(DataConfig(root=str(tree)), "train")
    dataset = KeywordDataset(clips, "sheila", 16000, 16000, augment=augment, seed=3)
    plain = KeywordDataset(clips, "sheila", 16000, 16000)
    first, again = dataset[5]["wave"], dataset[5]["wave"]
    assert torch.equal(first, again) and not torch.equal(first, plain[5]["wave"])
    dataset.epoch = 1
    assert not torch.equal(first, dataset[5]["wave"])
    with pytest.raises(ValueError, match="background"):
        WaveAugment(cfg, [])


def test_the_heldout_split_is_its_own_folder_and_never_training(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc", heldout=2)
    cfg = DataConfig(root=str(root), keyword="sheila")
    heldout = split_clips(cfg, "heldout")
    assert len(heldout) == 8 and all(c.path.parent.parent.name == "_heldout_" for c in heldout)
    assert len(split_clips(cfg, "train")) == 32  # as without the held-out folder
    assert {c.speaker for c in heldout}.isdisjoint({c.speaker for c in split_clips(cfg, "train")})
    plain = write_speech_commands_tree(tmp_path / "real")
    with pytest.raises(FileNotFoundError, match=re.escape(str(plain / "_heldout_")) + ": no held-out split"):
        split_clips(DataConfig(root=str(plain)), "heldout")


def test_logmel_channel_offsets_bands_as_a_filter_on_the_wave_would():
    feats = torch.full((4, 40, 50), -5.0)
    db_to_log = math.log(10.0) / 10.0
    # A flat 6 dB EQ is a gain: +6 dB of power on every band and frame.
    flat = LogMelChannel(AugmentConfig(eq_p=1.0, eq_gain_db=[6.0, 6.0]), 40, 16000, 1e-9)
    torch.testing.assert_close(flat(feats), feats + 6.0 * db_to_log)
    # The same gain on the wave moves the log-mel features by the same amount.
    features = make_features(FeatureConfig(kind="logmel", n_mels=40))
    wave = 0.1 * torch.randn(16000)
    loud, _ = features(wave * 10 ** (6.0 / 20))
    quiet, _ = features(wave)
    torch.testing.assert_close(loud - quiet, torch.full_like(quiet, 6.0 * db_to_log), atol=1e-3, rtol=0)
    # Roll-offs only attenuate, and leave some band untouched; ramps are one offset per frame.
    torch.manual_seed(0)
    rolled = LogMelChannel(AugmentConfig(filter_p=1.0), 40, 16000, 1e-9)(feats) - feats
    assert (rolled <= 0).all() and (rolled == 0).any(dim=1).all() and (rolled < -0.5).any(dim=1).all()
    assert (rolled == rolled[:, :, :1]).all()  # the same on every frame
    ramp = LogMelChannel(AugmentConfig(gain_transition_p=1.0), 40, 16000, 1e-9)(feats) - feats
    assert (ramp == ramp[:, :1, :]).all() and (ramp.abs() <= 18 * db_to_log + 1e-5).all()
    assert (ramp[:, 0, 0] != ramp[:, 0, -1]).any()
    # Never below the features' floor; the same torch seed draws the same channel.
    floor = LogMelChannel(AugmentConfig(eq_p=1.0, eq_gain_db=[-12.0, -12.0]), 40, 16000, 1e-9)
    assert floor(torch.full((1, 40, 5), math.log(1e-9))).min() == pytest.approx(math.log(1e-9))
    both = LogMelChannel(AugmentConfig(eq_p=0.5, filter_p=0.5, gain_transition_p=0.5), 40, 16000, 1e-9)
    torch.manual_seed(3)
    first = both(feats)
    torch.manual_seed(3)
    assert torch.equal(first, both(feats))
    assert not LogMelChannel(AugmentConfig(), 40, 16000, 1e-9).active and both.active


def test_a_bad_clip_is_skipped_and_counted(tree):
    clips = split_clips(DataConfig(root=str(tree)), "train")
    clips[0].path.write_bytes(b"RIFF\x00\x00")  # truncated header
    dataset = KeywordDataset(clips, "sheila", 16000, 16000)
    assert dataset[0] is None
    batch = collate([dataset[i] for i in range(4)])
    assert batch["skipped"] == 1
    assert batch["waves"].shape == (3, 16000)
    assert batch["labels"].tolist() == [int(clips[i].word == "sheila") for i in range(1, 4)]


LAYOUT = "Speech Commands layout: WORD/*.wav, validation_list.txt, testing_list.txt"


@pytest.mark.parametrize("case", ["missing", "file", "empty"])
def test_a_root_that_is_no_corpus_names_the_path_and_the_layout(tmp_path, case):
    root = tmp_path / "sc"
    if case == "file":
        root.write_text("not a folder")
    elif case == "empty":
        root.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        split_clips(DataConfig(root=str(root)), "testing")
    message = str(info.value)
    assert message.startswith(f"{root}: ") and LAYOUT in message and "\n" not in message
    assert {"missing": "no such folder", "file": "not a folder", "empty": "no word folders"}[case] in message


def test_a_missing_keyword_folder_names_the_layout_too(tree):
    with pytest.raises(ValueError, match=f"no folder for keyword 'marvin'.*{re.escape(LAYOUT)}"):
        split_clips(DataConfig(root=str(tree), keyword="marvin"), "testing")


def test_list_entries_without_audio_are_counted(tree):
    (tree / "sheila" / "abc0000a_nohash_0.wav").unlink()  # a testing clip
    listing = split_listing(DataConfig(root=str(tree)), "testing")
    assert len(listing.clips) == 7
    assert listing.skipped == {"list entries without audio": 1}
    assert split_listing(DataConfig(root=str(tree)), "validation").skipped == {}
