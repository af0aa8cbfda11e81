import os
import random
import shutil
import socket

import pytest
import torch
import torch.multiprocessing as mp

import asr.train as train_module
import numpy as np

from asr.config import AugmentConfig, OptimConfig, TrainConfig
from asr.data import DurationBatchSampler, SpeechDataset, collate, draw_vtlp, make_wave_augment, speed_perturb
from asr.decode import greedy
from asr.model import DeepSpeech2, ModelConfig, load_asr_checkpoint
from asr.text import CharTokenizer
from common.checkpoint import load_checkpoint
from common.config import load_config
from common.readers.librispeech import list_utterances
from common.features import make_features

TINY = ["model.rnn_layers=2", "model.rnn_hidden=32", "model.conv_channels=[4,4,4]",
        "model.conv_kernels=[[11,5],[11,5],[11,5]]", "features.n_mels=40", "data.num_workers=0",
        "data.max_batch_seconds=3", "data.min_seconds=0.1", "log_every=1", "optim.lr=3e-3"]


TINY_ALPHABET = "abcdefghijklmnopqrstuvwxyz' "


def tiny_config(corpus, *overrides):
    return load_config(TrainConfig, None, [f"data.root={corpus}", *TINY, *overrides])


def test_a_tiny_batch_is_overfit_until_greedy_decoding_is_exact(tone_corpus):
    torch.manual_seed(0)
    cfg = tiny_config(tone_corpus)
    tokenizer = CharTokenizer(cfg.text.alphabet)
    utterances = list_utterances(tone_corpus, "train-clean-100")[:3]
    batch = collate([SpeechDataset(utterances, tokenizer, cfg.text.alphabet, 16000)[i] for i in range(3)])
    features = make_features(cfg.features)
    model = DeepSpeech2(features.num_features, len(tokenizer.vocab), cfg.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(300):
        model.train()
        loss = train_module.ctc_loss(model, features, batch, torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 24:
            model.eval()
            with torch.no_grad():
                log_probs, lengths = model(*features(batch["waves"], batch["wave_lengths"]))
            if [tokenizer.decode(ids) for ids in greedy(log_probs, lengths)] == batch["texts"]:
                break
    assert [tokenizer.decode(ids) for ids in greedy(log_probs, lengths)] == batch["texts"]


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.1])
def test_speed_perturbation_scales_length_and_pitch_together(factor):
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    out = speed_perturb(tone, factor)
    assert abs(len(out) - 16000 / factor) <= 1
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
    assert abs(peak_hz - 1000 * factor) < 2


def test_speed_augment_draws_from_the_per_item_seed():
    augment = make_wave_augment(AugmentConfig(speed_p=1.0, speed_factors=[0.9, 1.1]), 16000)
    wave = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    lengths = []
    for seed in range(6):
        np.random.seed(seed)
        first = augment(wave)
        np.random.seed(seed)
        assert np.array_equal(first, augment(wave))
        lengths.append(len(first))
    assert set(lengths) == {round(8000 / 0.9), round(8000 / 1.1)}
    with pytest.raises(ValueError, match="speed_factors"):
        make_wave_augment(AugmentConfig(speed_p=1.0, speed_factors=[3.0]), 16000)


@pytest.mark.parametrize("option", ["pitch_shift_p", "eq_p", "filter_p", "distortion_p", "gain_transition_p"])
def test_voice_and_channel_transforms_change_the_wave_repeatably(option):
    augment = make_wave_augment(AugmentConfig(**{option: 1.0}), 16000)
    t = np.arange(24000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    random.seed(4), np.random.seed(4)  # both generators, as SpeechDataset seeds them per item
    first = augment(wave)
    random.seed(4), np.random.seed(4)
    assert np.array_equal(first, augment(wave))
    assert first.shape == wave.shape and not np.allclose(first, wave, atol=1e-3)


def test_pitch_shift_moves_the_pitch_and_keeps_the_tempo():
    augment = make_wave_augment(AugmentConfig(pitch_shift_p=1.0, pitch_shift_semitones=[3.0, 3.0]), 16000)
    t = np.arange(32000) / 16000
    shifted = augment((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    spectrum = np.abs(np.fft.rfft(shifted[4000:-4000]))
    peak = np.fft.rfftfreq(24000, 1 / 16000)[np.argmax(spectrum)]
    assert len(shifted) == 32000 and abs(peak - 200 * 2 ** (3 / 12)) < 3  # 237.8 Hz


def test_sampler_bounds_padded_seconds_and_sortagrad_goes_shortest_first():
    seconds = [5.0, 1.0, 2.0, 9.0, 1.5, 3.0, 2.5, 4.0]
    sampler = DurationBatchSampler(seconds, 8.0, shuffle=True, seed=0, sortagrad=True)
    first_epoch = list(sampler)
    assert sorted(i for b in first_epoch for i in b) == list(range(8))
    assert all(len(b) * max(seconds[i] for i in b) <= 8.0 or len(b) == 1 for b in first_epoch)
    maxima = [max(seconds[i] for i in b) for b in first_epoch]
    assert maxima == sorted(maxima)
    sampler.set_epoch(1)
    assert sorted(map(tuple, sampler)) == sorted(map(tuple, first_epoch))  # same batches, new order
    halves = [list(DurationBatchSampler(seconds, 8.0, shuffle=False, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(halves[0]) == len(halves[1])


def test_n_steps_equal_half_then_crash_then_resume(tone_corpus, tmp_path, monkeypatch):
    cfg = tiny_config(tone_corpus, "epochs=2", "eval_every=3", "augment.freq_mask_p=0.5",
                      "augment.time_mask_p=0.5", "augment.time_mask_param=5", "data.test_splits=[]")
    straight = train_module.train(cfg, log_root=tmp_path / "straight", quiet=True)

    real_loss, calls = train_module.ctc_loss, {"n": 0}

    def crash_after_first_checkpoint(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # the last.pt of step 3 is on disk; die in the middle of the epoch
            raise KeyboardInterrupt("simulated crash")
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "ctc_loss", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(cfg, log_root=tmp_path / "resumed", quiet=True)
    monkeypatch.setattr(train_module, "ctc_loss", real_loss)
    assert load_checkpoint(tmp_path / "resumed" / cfg.stage / cfg.name / "last.pt")["step"] == 3
    resumed = train_module.train(cfg, log_root=tmp_path / "resumed", quiet=True)

    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert a["step"] == b["step"] > 3
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_non_finite_loss_skips_the_batch(tone_corpus, tmp_path, monkeypatch):
    real_loss, calls = train_module.ctc_loss, {"n": 0}

    def nan_on_second_batch(*args, **kwargs):
        calls["n"] += 1
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(train_module, "ctc_loss", nan_on_second_batch)
    cfg = tiny_config(tone_corpus, "epochs=1")
    run_dir = train_module.train(cfg, log_root=tmp_path, quiet=True)
    state = load_checkpoint(run_dir / "last.pt")
    assert state["skipped_batches"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert "non-finite loss, batch skipped" in (run_dir / "train.log").read_text()


def test_corrupt_audio_is_skipped_and_counted(tone_corpus, tmp_path):
    corpus = tmp_path / "LibriSpeech"
    shutil.copytree(tone_corpus, corpus)
    victim = sorted((corpus / "train-clean-100").rglob("*.flac"))[3]
    victim.write_bytes(victim.read_bytes()[:200])  # header intact, audio cut short
    cfg = tiny_config(corpus, "epochs=1")
    run_dir = train_module.train(cfg, log_root=tmp_path / "logs", quiet=True)
    assert load_checkpoint(run_dir / "last.pt")["skipped_utterances"] == 1
    assert "1 unreadable utterances skipped" in (run_dir / "train.log").read_text()
    assert load_asr_checkpoint(run_dir / "best.pt").tokenizer.vocab[0] == "<blank>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, corpus: str, log_root: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = tiny_config(corpus, "epochs=1", "eval_every=1000")
    train_module.train(cfg, log_root=log_root, quiet=True)


def test_two_process_gloo_ddp_trains(tone_corpus, tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tone_corpus), str(tmp_path)), nprocs=2, join=True)
    run_dir = tmp_path / "asr_clean" / "default"
    state = load_checkpoint(run_dir / "last.pt")
    log = (run_dir / "train.log").read_text()
    assert "world size 2" in log and "test results" in log
    # Each process takes every other batch: one epoch is half the single-process step count.
    single_cfg = tiny_config(tone_corpus)
    utterances, seconds, _ = train_module.select_train_utterances(single_cfg)
    single = train_module.build_data(single_cfg, CharTokenizer(TINY_ALPHABET), utterances, seconds, 0, 1)[1]
    assert state["step"] == (len(single) + 1) // 2


def test_fine_tuning_starts_from_the_checkpoint_network(tone_corpus, tmp_path):
    clean = train_module.train(tiny_config(tone_corpus, "epochs=1"), log_root=tmp_path, quiet=True)
    cfg = tiny_config(tone_corpus, "epochs=1", "stage=asr_other", f"init_from={clean / 'best.pt'}",
                      "model.rnn_hidden=64", "augment.freq_mask_p=0.5")
    other = train_module.train(cfg, log_root=tmp_path, quiet=True)
    saved = load_checkpoint(other / "last.pt")
    assert saved["config"]["model"]["rnn_hidden"] == 32  # the checkpoint's size, not the override
    start = load_checkpoint(clean / "best.pt")["model"]
    assert any(not torch.equal(start[k], saved["model"][k]) for k in start)  # and it trained on


@pytest.mark.parametrize("scheduler", ["onecycle", "cyclic", "cosine", "constant"])
def test_attention_blocks_learn_at_their_scaled_rate_under_every_schedule(scheduler):
    model_cfg = ModelConfig(num_conv_layers=1, conv_channels=[4], conv_kernels=[[11, 5]],
                                         conv_strides=[[2, 2]], rnn_layers=2, rnn_hidden=16, attention_heads=2)
    model = DeepSpeech2(40, 29, model_cfg)
    cfg = OptimConfig(lr=1e-3, scheduler=scheduler, attention_lr_scale=0.1, cyclic_step_size=5)
    optimizer = train_module.make_optimizer(cfg, model)
    scheduler_ = train_module.make_scheduler(cfg, optimizer, total_steps=20)
    rest, attention = optimizer.param_groups
    assert {id(p) for p in attention["params"]} == {id(p) for p in model.attentions.parameters()}
    assert len(rest["params"]) + len(attention["params"]) == len(list(model.parameters()))
    peak = [0.0, 0.0]
    for _ in range(19):
        optimizer.step()
        scheduler_.step()
        peak = [max(peak[0], rest["lr"]), max(peak[1], attention["lr"])]
        assert attention["lr"] == pytest.approx(0.1 * rest["lr"])
    assert peak[0] == pytest.approx(1e-3, rel=0.05)


def test_a_model_without_attention_has_one_parameter_group():
    model = DeepSpeech2(40, 29, ModelConfig(rnn_layers=1, rnn_hidden=16, conv_channels=[4, 4, 4]))
    optimizer = train_module.make_optimizer(OptimConfig(lr=1e-3), model)
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["lr"] == 1e-3


def test_heldout_splits_are_scored_when_the_corpus_holds_them(tone_corpus, tmp_path):
    # dev-clean stands in for a held-out split; test-heldout is missing, as in a real LibriSpeech.
    cfg = tiny_config(tone_corpus, "epochs=1", 'data.heldout_splits=["dev-clean","test-heldout"]')
    run_dir = train_module.train(cfg, log_root=tmp_path, quiet=True)
    rows = [line.split("|")[1].strip() for line in (run_dir / "results.md").read_text().splitlines()
            if line.startswith("| ") and "%" in line]
    assert rows == ["test-clean", "dev-clean"]
    log = (run_dir / "train.log").read_text()
    assert "held-out splits not in" in log and "not scored: test-heldout" in log


def test_vtlp_factors_repeat_for_a_seed_and_stay_in_range():
    cfg = AugmentConfig(vtlp_p=0.5, vtlp_range=[0.9, 1.1])
    torch.manual_seed(0)
    first = draw_vtlp(cfg, 2000)
    torch.manual_seed(0)
    assert torch.equal(first, draw_vtlp(cfg, 2000))
    warped = first[first != 1.0]
    assert 900 < len(warped) < 1100 and bool(((warped >= 0.9) & (warped <= 1.1)).all())
    assert draw_vtlp(AugmentConfig(), 4) is None
    with pytest.raises(ValueError, match="augment.vtlp_p"):
        load_config(TrainConfig, None, ["features.kind=spectrogram", "augment.vtlp_p=0.5"])
