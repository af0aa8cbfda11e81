"""The synthetic LibriSpeech corpus: exact layout, reproducibility, disjointness, markers."""
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.heldout_breakdown import bootstrap_interval, utterance_groups
from corpora.synth.__main__ import main as synth_main
from corpora.synth.librispeech import (HELDOUT_SPLIT, SPLITS, LibriSpeechSpec, is_complete,
                                      make_librispeech, normalize_line)
from corpora.synth.degrade import HELDOUT_CHANNELS
from corpora.synth.speakers import KLATT_VARIANTS
from conftest import file_digests

TINY = LibriSpeechSpec(
    seed=0, train_clean_100=6, train_other_500=6, dev_clean=6, test_clean=6, dev_other=6,
    test_other=6, test_heldout=6, lm_sentences=200, train_clean_100_speakers=2,
    train_other_500_speakers=2, dev_test_speakers=2, utterances_per_chapter=2, babble_tracks=2,
    chunk_size=5, random_voice_share=0.5)
FLAC_NAME = re.compile(r"(\d+)-(\d+)-(\d{4})\.flac")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ls")
    result = make_librispeech(root, TINY, processes=1)
    assert result["utterances"] == 42 and result["lm_sentences"] == 200
    assert set(result["splits"]) == set(SPLITS) and result["hours"] > 0
    return root


def test_same_seed_is_byte_identical_whatever_the_processes(corpus, tmp_path):
    make_librispeech(tmp_path / "a", TINY, processes=2)
    assert file_digests(corpus / "LibriSpeech") == file_digests(tmp_path / "a" / "LibriSpeech")
    make_librispeech(tmp_path / "b", replace(TINY, seed=1), processes=2)
    assert file_digests(corpus / "LibriSpeech") != file_digests(tmp_path / "b" / "LibriSpeech")


def test_layout_and_transcripts(corpus):
    base = corpus / "LibriSpeech"
    for split in SPLITS:
        flacs = sorted((base / split).rglob("*.flac"))
        assert len(flacs) == 6
        for flac in flacs:
            speaker, chapter = flac.parent.parent.name, flac.parent.name
            match = FLAC_NAME.fullmatch(flac.name)
            assert match and match[1] == speaker and match[2] == chapter
            assert flac.parent.parent.parent.name == split
            info = sf.info(flac)
            assert (info.samplerate, info.channels, info.format, info.subtype) == \
                (16000, 1, "FLAC", "PCM_16")
            assert info.frames > 8000
        for trans in (base / split).rglob("*.trans.txt"):
            speaker, chapter = trans.parent.parent.name, trans.parent.name
            assert trans.name == f"{speaker}-{chapter}.trans.txt"
            ids = []
            for line in trans.read_text().splitlines():
                utt_id, text = line.split(" ", 1)
                assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", text)
                ids.append(utt_id)
            assert ids == [f"{speaker}-{chapter}-{i:04d}" for i in range(len(ids))]
            assert sorted(p.stem for p in trans.parent.glob("*.flac")) == ids
    assert not list(base.rglob("*.tmp")) and not (base / ".babble.npy").exists()


def test_speakers_txt_and_disjoint_speakers(corpus):
    base = corpus / "LibriSpeech"
    rows = [line.split("|") for line in (base / "SPEAKERS.TXT").read_text().splitlines()
            if not line.startswith(";")]
    subsets = {}
    for speaker_id, sex, subset, minutes, name in rows:
        assert sex.strip() in ("M", "F") and float(minutes) > 0 and "+" in name
        subsets.setdefault(speaker_id.strip(), []).append(subset.strip())
    assert all(len(s) == 1 for s in subsets.values())  # each speaker in one subset only
    for split in SPLITS:
        on_disk = {p.name for p in (base / split).iterdir()}
        assert on_disk == {spk for spk, s in subsets.items() if s == [split]}
        assert len(on_disk) == 2


def _speaker_voices(base: Path) -> dict[str, list[str]]:
    """SPEAKERS.TXT as {subset: [voice, ...]}."""
    voices = {}
    for line in (base / "SPEAKERS.TXT").read_text().splitlines():
        if not line.startswith(";"):
            _, _, subset, _, name = (field.strip() for field in line.split("|"))
            voices.setdefault(subset, []).append(name.split()[0])
    return voices


def test_heldout_voices_are_held_out_of_every_other_split(corpus):
    base = corpus / "LibriSpeech"
    voices = _speaker_voices(base)
    heldout = voices.pop(HELDOUT_SPLIT)
    variants = [voice.partition("+")[2] for voice in heldout]
    # half packaged Klatt-engine variants, half voices generated for test-heldout
    assert variants[0] in KLATT_VARIANTS and variants[1].startswith("hv")
    for subset, names in voices.items():
        for name in names:
            language, _, variant = name.partition("+")
            assert language != "en-029" and variant not in KLATT_VARIANTS
            assert not variant.startswith("hv")
    # random_voice_share 0.5: one of the two speakers of each training split has a generated voice
    for split in ("train-clean-100", "train-other-500"):
        assert sum(name.partition("+")[2].startswith("rv") for name in voices[split]) == 1
    rows = [line.split(" ") for line in (base / "HELDOUT.TXT").read_text().splitlines()[1:]]
    assert sorted(row[0] for row in rows) == sorted(p.stem for p in (base / HELDOUT_SPLIT).rglob("*.flac"))
    assert {row[1] for row in rows} == set(heldout)
    assert all(1 <= len(row[2].split(",")) <= 2 and set(row[2].split(",")) <= set(HELDOUT_CHANNELS)
               for row in rows)
    generated = (base / "VOICES.TXT").read_text()
    for name in ("rv0000", "rv0001", "hv0000"):
        assert f"=== {name} (formant scale" in generated and f"name {name}\n" in generated


def test_heldout_split_does_not_depend_on_the_training_voices(corpus, tmp_path):
    other = replace(TINY, random_voice_share=0.0, random_formant_scale=(0.95, 1.05),
                    clean_variants=("m1", "f2"))
    make_librispeech(tmp_path, other, processes=2)
    assert (file_digests(tmp_path / "LibriSpeech" / HELDOUT_SPLIT)
            == file_digests(corpus / "LibriSpeech" / HELDOUT_SPLIT))
    assert (file_digests(tmp_path / "LibriSpeech" / "train-clean-100")
            != file_digests(corpus / "LibriSpeech" / "train-clean-100"))


def _texts(base: Path, split: str) -> set[str]:
    return {line.split(" ", 1)[1] for trans in (base / split).rglob("*.trans.txt")
            for line in trans.read_text().splitlines()}


def test_lm_text_excludes_held_out_sentences(corpus):
    base = corpus / "LibriSpeech"
    lm = (base / "lm-text.txt").read_text().splitlines()
    assert len(lm) == len(set(lm)) == 200
    held_out = set().union(*(_texts(base, s) for s in SPLITS if not s.startswith("train")))
    train = set().union(*(_texts(base, s) for s in SPLITS if s.startswith("train")))
    assert len(held_out) == 30 and not held_out & (set(lm) | train)


def test_completion_marker(corpus, tmp_path):
    assert is_complete(corpus, TINY)
    assert not is_complete(corpus, replace(TINY, seed=5))
    assert not is_complete(tmp_path, TINY)
    marker = json.loads((corpus / "LibriSpeech" / ".complete").read_text())
    assert marker["utterances"] == 42


def test_refuses_to_replace_a_foreign_librispeech_folder(tmp_path):
    real = tmp_path / "LibriSpeech"
    real.mkdir()
    (real / "SPEAKERS.TXT").write_text("; real data\n")
    with pytest.raises(ValueError, match="not made by corpora.synth"):
        make_librispeech(tmp_path, TINY, processes=1)
    assert (real / "SPEAKERS.TXT").exists()


def test_text_file_sentences(tmp_path):
    text = tmp_path / "mine.txt"
    lines = [f"Sentence number {w}, said the {w} cat!" for w in
             "one two three four five six seven eight nine ten eleven twelve".split()]
    text.write_text("\n".join(lines) + "\n\n")
    spec = replace(TINY, babble_tracks=0)
    result = make_librispeech(tmp_path, spec, processes=2, text_file=text)
    base = tmp_path / "LibriSpeech"
    assert result["utterances"] == 12  # fewer lines than asked: every split shrinks
    spoken = set().union(*(_texts(base, s) for s in SPLITS))
    assert "SENTENCE NUMBER SEVEN SAID THE SEVEN CAT" in spoken and len(spoken) == 12
    lm = set((base / "lm-text.txt").read_text().splitlines())
    held_out = set().union(*(_texts(base, s) for s in SPLITS if not s.startswith("train")))
    assert lm == spoken - held_out
    assert is_complete(tmp_path, spec, text_file=text)
    assert not is_complete(tmp_path, spec)


def test_normalize_line_rejects_digits():
    assert normalize_line("It's “well-known”: Mary's; ok.", "f:1") == "IT'S WELL KNOWN MARY'S OK"
    with pytest.raises(ValueError, match="f:3.*'7'"):
        normalize_line("I have 7 cats", "f:3")


def test_cli_keeps_a_complete_corpus(tmp_path, capsys):
    args = ["--root", str(tmp_path), "--only", "librispeech", "--scale", "0.001"]
    synth_main(args)
    first = file_digests(tmp_path / "LibriSpeech")
    synth_main(args)
    assert "kept" in capsys.readouterr().out
    assert file_digests(tmp_path / "LibriSpeech") == first


def test_cli_set_changes_spec_fields_and_rejects_unknown_ones(tmp_path, capsys):
    synth_main(["--root", str(tmp_path), "--only", "librispeech", "--scale", "0.001",
                "--set", "random_voice_share=1.0", "random_formant_scale=[0.9,0.95]"])
    base = tmp_path / "LibriSpeech"
    voices = _speaker_voices(base)
    assert all(v.partition("+")[2].startswith("rv") for s in ("train-clean-100", "train-other-500")
               for v in voices[s])
    spec = json.loads((base / ".complete").read_text())["spec"]
    assert spec["random_voice_share"] == 1.0 and spec["random_formant_scale"] == [0.9, 0.95]
    for bad, message in (("nosuch=1", "no spec field 'nosuch'"), ("random_voice_share=x", "not a JSON"),
                         ("random_voice_share", "expected FIELD=VALUE")):
        with pytest.raises(SystemExit):
            synth_main(["--root", str(tmp_path), "--only", "librispeech", "--set", bad])
        assert message in capsys.readouterr().err


def test_heldout_breakdown_groups_every_heldout_utterance(corpus):
    base = corpus / "LibriSpeech"
    groups = utterance_groups(base)
    assert sorted(groups) == sorted(p.stem for p in (base / HELDOUT_SPLIT).rglob("*.flac"))
    for utt_id, names in groups.items():
        assert names[0].startswith("accent ") and 3 <= len(names) <= 4
        assert names[1] == "packaged Klatt-engine variant" or names[1].startswith("generated, ")
        assert all(n.removeprefix("channel ") in HELDOUT_CHANNELS for n in names[2:])
    edits, units = np.array([1, 0, 3, 2]), np.array([10, 10, 10, 10])
    low, high = bootstrap_interval(edits, units)
    assert low <= 0.15 <= high and 0.0 <= low < high <= 0.3
