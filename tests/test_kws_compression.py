import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.config import load_config
from common.features import FeatureConfig, make_features
from kws.distill import DistillConfig, TeacherLoss, distillation_loss, resample_attention, run
from kws.model import CRNN, ModelConfig, keyword_probability
from kws.costs import count_macs, count_parameters, saved_bytes, state_dict_bytes
from kws.prune import prune_crnn
from kws.quantize import dynamic_int8, fp16_state, load_fp16, pack_int8, unpack_int8
from kws.stream import StreamingDetector, offline_reference, stream_wave
from test_kws_data import write_speech_commands_tree
from test_kws_stream import track
from test_kws_train import tiny_config

FEATURES = make_features(FeatureConfig(kind="logmel", n_mels=40))


def student_model(seed: int = 0) -> CRNN:
    """The student architecture of configs/kws/distill.json, random weights."""
    torch.manual_seed(seed)
    return CRNN(40, load_config(DistillConfig, "configs/kws/distill.json").model).eval()


def baseline_model(seed: int = 0) -> CRNN:
    torch.manual_seed(seed)
    return CRNN(40, ModelConfig()).eval()


def inputs(seed: int = 1) -> torch.Tensor:
    """Log-mel features of a noisy tone track, cut into 1 s clips: `(3, 40, 101)`."""
    feats, _ = FEATURES(track(3.0, seed))
    return torch.stack([feats[:, i * 100:i * 100 + 101] for i in range(2)] + [feats[:, -101:]])


def test_distillation_loss_is_cross_entropy_at_alpha_zero_and_zero_kl_at_the_teacher():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 2), torch.randn(6, 2)
    labels = torch.tensor([0, 1, 1, 0, 0, 1])
    assert distillation_loss(student, teacher, labels, 3.0, 0.0) == F.cross_entropy(student, labels)
    # alpha = 1: pure soft loss, zero exactly at the teacher's logits and positive elsewhere.
    assert distillation_loss(teacher, teacher, labels, 3.0, 1.0).abs() < 1e-7
    assert distillation_loss(teacher + torch.tensor([0.5, -0.5]), teacher, labels, 3.0, 1.0) > 1e-3
    # The T^2 weighting: T^2 * KL at temperature T, by hand.
    t, a = 2.0, 0.3
    p_t = torch.softmax(teacher / t, -1)
    kl = (p_t * (p_t.log() - torch.log_softmax(student / t, -1))).sum(-1).mean()
    expected = a * t * t * kl + (1 - a) * F.cross_entropy(student, labels)
    torch.testing.assert_close(distillation_loss(student, teacher, labels, t, a), expected)


def test_minimizing_the_soft_loss_recovers_the_teacher_distribution():
    torch.manual_seed(1)
    teacher = torch.randn(5, 2) * 2
    student = torch.zeros(5, 2, requires_grad=True)
    optimizer = torch.optim.Adam([student], lr=0.1)
    for _ in range(500):
        optimizer.zero_grad()
        distillation_loss(student, teacher, torch.zeros(5, dtype=torch.long), 2.0, 1.0).backward()
        optimizer.step()
    torch.testing.assert_close(torch.softmax(student, -1), torch.softmax(teacher, -1), atol=1e-3, rtol=0)


def test_teacher_attention_moves_onto_the_student_frames_by_hand():
    teacher = baseline_model()  # time stride 16 against the teacher's 8, both kernel 20
    student = CRNN(40, ModelConfig(cnn_out_channels=2, kernel_size=[8, 20], stride=[4, 16], hidden_size=12,
                                   num_layers=1, attention="linear"))
    x = inputs()
    source, target = teacher.frame_centers(11), student.frame_centers(6)  # 101 frames: 11 and 6
    assert source.tolist()[:3] == [9.5, 17.5, 25.5] and target.tolist()[:2] == [9.5, 25.5]
    # Teacher frame 2j sits on student frame j; frame 2j + 1 halfway between j and j + 1.
    moved = resample_attention(torch.eye(11), source, target)
    expected = torch.zeros(11, 6)
    for i in range(11):
        expected[i, i // 2] += 1.0 if i % 2 == 0 else 0.5
        if i % 2:
            expected[i, i // 2 + 1] += 0.5
    torch.testing.assert_close(moved, expected)
    # Beyond the ends everything goes to the end frame; rows keep their mass.
    torch.testing.assert_close(resample_attention(torch.eye(2), torch.tensor([-3.0, 99.0]), target),
                               torch.eye(6)[[0, 5]])
    log_weights = teacher.forward_with_attention(x)[1]
    torch.testing.assert_close(resample_attention(log_weights.exp(), source, target).sum(-1), torch.ones(3))


def test_attention_distillation_is_zero_at_the_teacher_and_logits_match_forward():
    teacher, student, x = baseline_model(), student_model(), inputs()
    labels = torch.tensor([0, 1, 0])
    for model in (teacher, student):
        logits, log_weights = model.forward_with_attention(x)
        torch.testing.assert_close(logits, model(x))
        torch.testing.assert_close(log_weights.exp().sum(-1), torch.ones(3))
    plain, with_attention = TeacherLoss(teacher, 4.0, 0.5), TeacherLoss(teacher, 4.0, 0.5, attention_weight=2.0)
    # The teacher as its own student: the attention term vanishes.
    torch.testing.assert_close(with_attention(baseline_model(), x, labels), plain(baseline_model(), x, labels))
    # A student attends elsewhere: a positive term that gradients reach.
    loss = with_attention(student, x, labels)
    assert loss > plain(student, x, labels) + 1e-3
    loss.backward()
    assert student.attention.energy[0].weight.grad.abs().sum() > 0


def test_bad_distillation_settings_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), 0.0, 0.5)


@pytest.mark.parametrize("make", [baseline_model, student_model])
def test_quantized_probabilities_stay_close_to_float(make):
    model, x = make(), inputs()
    reference = keyword_probability(model(x))
    packed = pack_int8(model)
    assert list(packed) == ["packed"] and packed["packed"].dtype == torch.uint8
    for quantized in (unpack_int8(model, packed), dynamic_int8(model), load_fp16(model, fp16_state(model))):
        torch.testing.assert_close(keyword_probability(quantized(x)), reference, atol=0.02, rtol=0)


def test_weight_only_int8_rounds_each_weight_to_its_row_scale_and_is_small():
    model = baseline_model()
    restored = unpack_int8(model, pack_int8(model))
    for (key, w), (_, q) in zip(model.state_dict().items(), restored.state_dict().items()):
        if w.dim() >= 2:
            rows = w.reshape(w.shape[0], -1)
            step = rows.abs().amax(1, keepdim=True) / 127
            assert ((rows - q.reshape_as(rows)).abs() <= 0.5 * step * 1.01 + 1e-6).all(), key
        else:
            torch.testing.assert_close(q, w.half().float(), rtol=0, atol=0)
    n_weights = sum(v.numel() for v in model.state_dict().values() if v.dim() >= 2)
    # One int8 per weight plus fp16 scales and biases in one tensor: far below float32's 4 bytes each.
    assert n_weights < saved_bytes(pack_int8(model)) < 0.3 * state_dict_bytes(model)
    with pytest.raises(ValueError, match="does not fit"):
        unpack_int8(student_model(), pack_int8(model))


def test_macs_of_quantized_layers_count_as_their_float_formula():
    linear = nn.Sequential(nn.Linear(10, 7))
    assert count_macs(dynamic_int8(linear), torch.randn(5, 10)) == 5 * 10 * 7
    batch, steps, inputs_, hidden = 2, 5, 6, 4
    gru = nn.Sequential(nn.GRU(inputs_, hidden, batch_first=True))
    per_cell = 3 * hidden * (inputs_ + hidden) + 13 * hidden
    assert count_macs(dynamic_int8(gru), torch.randn(batch, steps, inputs_)) == batch * steps * per_cell


def test_student_macs_and_bytes_by_hand():
    model = student_model()
    # conv 2 x 4 x 16 over 10 x 11 outputs, GRU(20 -> 12) over 11 steps, Linear(12, 1) energies, classifier.
    conv, gru = 2 * 4 * 16 * 10 * 11, 11 * (3 * 12 * (20 + 12) + 13 * 12)
    assert count_macs(model, torch.randn(1, 40, 101)) == conv + gru + 11 * 12 + 12 * 2
    assert count_parameters(model) == (2 * 64 + 2) + (3 * 12 * 32 + 6 * 12) + 13 + 26


def test_structured_pruning_removes_units_and_keeps_the_function_of_what_remains():
    model, x = baseline_model(), inputs()
    pruned = prune_crnn(model, channels=4, hidden=16).eval()
    assert count_parameters(pruned) < count_parameters(model) / 3
    assert count_macs(pruned, x[:1]) < count_macs(model, x[:1]) / 2
    assert state_dict_bytes(pruned) < state_dict_bytes(model) / 3
    # Keeping everything is the identity.
    torch.testing.assert_close(prune_crnn(model, 8, 32).eval()(x), model(x), rtol=0, atol=0)
    # Silence 3 conv channels, 3 units per GRU layer and 3 attention units (every weight touching
    # them zero): they rank lowest, and removing them must not change the output at all.
    silenced = prune_crnn(model, 8, 32)  # a copy
    channels, units = [1, 5, 6], torch.tensor([0, 3, 30])
    rows = torch.cat([units + 32 * g for g in range(3)])
    with torch.no_grad():
        state = silenced.state_dict()
        state["conv.0.weight"][channels] = 0
        state["conv.0.bias"][channels] = 0
        state["rnn.weight_ih_l0"].view(96, 8, 18)[:, channels] = 0
        for layer, readers in ((0, ["rnn.weight_ih_l1"]), (1, ["attention.energy.0.weight", "classifier.weight"])):
            for k in (f"rnn.weight_ih_l{layer}", f"rnn.weight_hh_l{layer}", f"rnn.bias_ih_l{layer}",
                      f"rnn.bias_hh_l{layer}"):
                state[k][rows] = 0
            for k in [f"rnn.weight_hh_l{layer}"] + readers:
                state[k][:, units] = 0
        state["attention.energy.0.weight"][units] = 0
        state["attention.energy.0.bias"][units] = 0
        state["attention.energy.2.weight"][:, units] = 0
        silenced.load_state_dict(state)
    small = prune_crnn(silenced, 5, 29).eval()
    assert count_parameters(small) < count_parameters(silenced)
    torch.testing.assert_close(small(x), silenced.eval()(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", ["float", "int8", "dyn-int8"])
def test_the_compressed_student_streams_like_offline(variant):
    model = student_model()
    model = {"float": lambda m: m, "int8": lambda m: unpack_int8(m, pack_int8(m)), "dyn-int8": dynamic_int8}[variant](model)
    wave = track(3.0, seed=2)
    window = (101 - 20) // 16 + 1
    detector = StreamingDetector(model, FEATURES, max_window_length=window)
    _, streamed = stream_wave(detector, wave, chunk=333)
    offline = offline_reference(model, FEATURES, wave, window)
    assert streamed.shape[0] >= offline.shape[0] - 2
    # torch.ao's int8 GRU quantizes activations per call, so chunked calls round differently.
    atol = 5e-2 if variant == "dyn-int8" else 1e-5
    torch.testing.assert_close(streamed, offline[:streamed.shape[0]].float(), atol=atol, rtol=0)


def test_distill_stage_trains_the_grid_student_pruned_model_and_writes_the_report(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc", heldout=2)
    logs = tmp_path / "logs"
    from kws.train import train

    teacher_dir = train(tiny_config(root, "epochs=1", "model.hidden_size=8"), log_root=logs, quiet=True)
    cfg = load_config(DistillConfig, "configs/kws/distill.json", [
        f"data.root={root}", f"teacher={teacher_dir / 'best.pt'}", "batch_size=8", "log_every=2",
        "augment.background_noise_p=0.5", "epochs=1", "grid_temperature=[2.0]", "grid_alpha=[0.5, 0.9]",
        "grid_epochs=1", "prune_channels=4", "prune_hidden=4", "prune_epochs=1"])
    student_dir = run(cfg, log_root=logs, quiet=True)
    grid = (logs / "kws_distill" / "grid.md").read_text()
    assert grid.count("| 2 |") == 2 and "**best**" in grid
    for name in ("grid_T2_a0.5", "grid_T2_a0.9", "student", "pruned"):
        assert (logs / "kws_distill" / name / "best.pt").is_file(), name
    assert student_dir == logs / "kws_distill" / "student"
    # Rerunning skips the finished grid points (their files stay untouched).
    stamp = (logs / "kws_distill" / "grid_T2_a0.5" / "last.pt").stat().st_mtime_ns
    run(cfg, log_root=logs, quiet=True)
    assert (logs / "kws_distill" / "grid_T2_a0.5" / "last.pt").stat().st_mtime_ns == stamp

    result = json.loads((logs / "kws" / "compression.json").read_text())
    names = [r["variant"] for r in result["rows"]]
    assert names[:4] == ["baseline", "baseline fp16", "baseline dyn-int8", "baseline int8"]
    assert {"student int8", "pruned int8"} <= set(names)
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["student int8"]["bytes"] < rows["student"]["bytes"] < rows["baseline"]["bytes"]
    assert rows["student int8"]["macs"] == rows["student"]["macs"] < rows["baseline"]["macs"]
    for png in ("au_fa_fr_vs_macs.png", "au_fa_fr_vs_bytes.png"):
        assert (logs / "kws" / png).is_file()
    table = (logs / "kws" / "compression.md").read_text()
    assert "| baseline |" in table and "held-out au-fa-fr" in table and "(8 clips, 2 keyword" in table
    assert all(0.0 <= r["heldout_au_fa_fr"] < 1.0 and "heldout_ratio" in r for r in rows.values())


def test_a_run_saved_before_model_attention_existed_still_resumes(tmp_path):
    from common.checkpoint import load_checkpoint, save_checkpoint
    from kws.train import train

    root = write_speech_commands_tree(tmp_path / "sc")
    run_dir = train(tiny_config(root, "epochs=1"), log_root=tmp_path / "logs", quiet=True)
    state = load_checkpoint(run_dir / "last.pt")
    del state["config"]["model"]["attention"]  # what an older checkpoint holds
    save_checkpoint(run_dir / "last.pt", state)
    train(tiny_config(root, "epochs=2"), log_root=tmp_path / "logs", quiet=True)
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 2
