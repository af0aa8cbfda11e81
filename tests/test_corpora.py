"""Corpus readers on tiny trees laid out like the real downloads (LibriSpeech, Speech Commands,
KsponSpeech): what they list, what they skip, and what their errors name."""
import logging

import numpy as np
import pytest
import soundfile as sf

from common.readers import durations, kspon, librispeech, speech_commands
from common.readers.bad_input import BadInput

RATE = 16000


def write_audio(path, samples, rate=RATE):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(samples) / rate
    sf.write(path, 0.1 * np.sin(2 * np.pi * 440 * t), rate)


# ------------------------------------------------------------------------------------ LibriSpeech

LIBRI_TEXTS = {
    "1272-128104-0000": "MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES",
    "1272-128104-0001": "NOR IS MISTER QUILTER'S MANNER LESS INTERESTING",
    "1272-135031-0000": "BECAUSE YOU WERE SLEEPING INSTEAD OF CONQUERING",
    "174-50561-0000": "FORGOTTEN TOO THE NAME OF GILLIAN",
}


def make_librispeech(data_root, split="dev-clean", texts=LIBRI_TEXTS):
    """Write `texts` as a LibriSpeech split under data_root/LibriSpeech; returns the split folder."""
    folder = data_root / "LibriSpeech" / split
    chapters = {}
    for utt_id, text in texts.items():
        speaker, chapter, _ = utt_id.split("-")
        chapters.setdefault((speaker, chapter), []).append((utt_id, text))
        write_audio(folder / speaker / chapter / f"{utt_id}.flac", 800 + 160 * len(chapters))
    for (speaker, chapter), lines in chapters.items():
        (folder / speaker / chapter / f"{speaker}-{chapter}.trans.txt").write_text(
            "".join(f"{i} {t}\n" for i, t in lines))
    return folder


def test_librispeech_lists_every_utterance_with_transcript_speaker_and_chapter(tmp_path):
    make_librispeech(tmp_path)
    for root in (tmp_path, tmp_path / "LibriSpeech"):  # data root or the LibriSpeech folder itself
        utts = librispeech.list_utterances(root, "dev-clean")
        assert [u.id for u in utts] == sorted(LIBRI_TEXTS)
        assert {u.id: u.text for u in utts} == LIBRI_TEXTS
        first = utts[0]
        assert (first.speaker, first.chapter) == ("1272", "128104")
        assert first.path == tmp_path / "LibriSpeech/dev-clean/1272/128104/1272-128104-0000.flac"
        assert all(u.path.is_file() for u in utts)


def test_librispeech_split_given_as_a_folder_path_ignores_root(tmp_path):
    folder = make_librispeech(tmp_path, split="my-recordings")
    utts = librispeech.list_utterances(None, folder)
    assert len(utts) == len(LIBRI_TEXTS)
    assert librispeech.list_utterances(tmp_path / "elsewhere", str(folder)) == utts


def test_librispeech_accepts_wav_recordings_but_prefers_flac(tmp_path):
    folder = make_librispeech(tmp_path, split="mine", texts={"7-8-0000": "HELLO", "7-8-0001": "BYE"})
    (folder / "7/8/7-8-0001.flac").unlink()
    write_audio(folder / "7/8/7-8-0001.wav", 400)
    write_audio(folder / "7/8/7-8-0000.wav", 400)  # the .flac of the same id wins
    utts = librispeech.list_utterances(None, folder, on_error="raise")
    assert [u.path.name for u in utts] == ["7-8-0000.flac", "7-8-0001.wav"]


def test_librispeech_skip_drops_bad_items_and_logs_one_summary(tmp_path, caplog):
    folder = make_librispeech(tmp_path)
    chapter = folder / "1272" / "128104"
    trans = chapter / "1272-128104.trans.txt"
    with open(trans, "ab") as f:
        f.write(b"1272-128104-0002 A LINE WHOSE AUDIO IS GONE\n")
        f.write(b"1272-128104-0003\n")                      # no transcript
        f.write(b"1272-128104-0004 CAF\xe9 LATIN ONE\n")    # not UTF-8
    write_audio(chapter / "1272-128104-0009.flac", 400)      # no transcript line

    with caplog.at_level(logging.WARNING, logger="common.readers.librispeech"):
        utts = librispeech.list_utterances(tmp_path, "dev-clean")
    assert [u.id for u in utts] == sorted(LIBRI_TEXTS)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    line = warnings[0]
    assert line.startswith("skipped 4 of 8 utterances in dev-clean: ")
    assert f"1 transcript lines without audio (first: {trans}:3)" in line
    assert f"2 unreadable transcript lines (first: {trans}:4)" in line
    assert f"1 audio files without transcript line (first: {chapter / '1272-128104-0009.flac'})" in line


def test_librispeech_clean_split_logs_nothing(tmp_path, caplog):
    make_librispeech(tmp_path)
    with caplog.at_level(logging.WARNING):
        librispeech.list_utterances(tmp_path, "dev-clean")
    assert caplog.records == []


def test_librispeech_raise_names_the_file_and_line(tmp_path):
    folder = make_librispeech(tmp_path)
    audio = folder / "174" / "50561" / "174-50561-0000.flac"
    audio.unlink()
    with pytest.raises(FileNotFoundError) as err:
        librispeech.list_utterances(tmp_path, "dev-clean", on_error="raise")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / '174' / '50561' / '174-50561.trans.txt'}:1: ")
    assert "174-50561-0000.flac" in message

    write_audio(audio, 400)
    trans = folder / "1272" / "135031" / "1272-135031.trans.txt"
    trans.write_text("1272-135031-0000\n")
    with pytest.raises(ValueError, match=f"^{trans}:1: expected 'UTTERANCE-ID TRANSCRIPT'"):
        librispeech.list_utterances(tmp_path, "dev-clean", on_error="raise")


def test_librispeech_duplicate_id_is_kept_once(tmp_path):
    folder = make_librispeech(tmp_path)
    trans = folder / "174" / "50561" / "174-50561.trans.txt"
    trans.write_text(trans.read_text() + "174-50561-0000 ANOTHER TEXT\n")
    utts = librispeech.list_utterances(tmp_path, "dev-clean")
    assert [u.text for u in utts if u.id == "174-50561-0000"] == [LIBRI_TEXTS["174-50561-0000"]]
    with pytest.raises(ValueError, match=f"{trans}:2: utterance 174-50561-0000 is already listed"):
        librispeech.list_utterances(tmp_path, "dev-clean", on_error="raise")


def test_librispeech_missing_split_names_path_and_existing_splits(tmp_path):
    make_librispeech(tmp_path, split="dev-clean", texts={"1-2-0000": "A"})
    make_librispeech(tmp_path, split="train-clean-100", texts={"3-4-0000": "B"})
    for on_error in ("skip", "raise"):
        with pytest.raises(FileNotFoundError) as err:
            librispeech.list_utterances(tmp_path, "test-other", on_error=on_error)
        message = str(err.value)
        assert str(tmp_path / "LibriSpeech" / "test-other") in message
        assert message.endswith("holds: dev-clean, train-clean-100")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        librispeech.list_utterances(None, tmp_path / "nowhere")


def test_unknown_policy_is_refused(tmp_path):
    make_librispeech(tmp_path)
    with pytest.raises(ValueError, match="on_error must be one of"):
        librispeech.list_utterances(tmp_path, "dev-clean", on_error="ignore")


def test_bad_input_summary_counts_by_kind():
    bad = BadInput("skip", split="s", unit="clips")
    bad.found("kind a", "f1", "x")
    bad.found("kind b", "f2", "y")
    bad.found("kind a", "f3", "z")
    assert bad.counts() == {"kind a": 2, "kind b": 1}
    assert bad.summary(kept=7) == ("skipped 3 of 10 clips in s: 2 kind a (first: f1), "
                                   "1 kind b (first: f2)")
    assert BadInput("skip", split="s", unit="clips").summary(kept=7) is None


# ------------------------------------------------------------------------------------ durations

def test_durations_from_headers_and_raw_size_with_cache(tmp_path, monkeypatch):
    flac, wav, pcm = tmp_path / "a.flac", tmp_path / "b.wav", tmp_path / "c.pcm"
    write_audio(flac, 1600)
    write_audio(wav, 8000, rate=8000)
    np.zeros(4000, dtype="<i2").tofile(pcm)
    cache = tmp_path / "cache" / "durations.tsv"
    assert durations.audio_durations([flac, wav, pcm], cache=cache) == [0.1, 1.0, 0.25]

    def no_header_reads(path):
        raise AssertionError(f"read {path} although it is cached")
    monkeypatch.setattr(durations.sf, "info", no_header_reads)
    assert durations.audio_durations([pcm, flac], cache=cache) == [0.25, 0.1]

    monkeypatch.undo()
    write_audio(flac, 3200)  # changed file: the cached entry is stale
    assert durations.audio_durations([flac], cache=cache) == [0.2]


def test_duration_of_unreadable_file_names_it(tmp_path):
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio")
    with pytest.raises(ValueError, match=f"^{broken}: cannot read audio header"):
        durations.audio_durations([broken])


# ------------------------------------------------------------------------------- Speech Commands

SC_CLIPS = ["yes/aa11_nohash_0.wav", "yes/aa11_nohash_1.wav", "yes/bb22_nohash_0.wav",
            "no/bb22_nohash_0.wav", "no/cc33_nohash_0.wav", "sheila/dd44_nohash_0.wav",
            "marvin/ee55_nohash_0.wav"]
SC_VALIDATION = ["yes/bb22_nohash_0.wav", "no/bb22_nohash_0.wav"]
SC_TESTING = ["sheila/dd44_nohash_0.wav"]


def make_speech_commands(root):
    for rel in SC_CLIPS:
        write_audio(root / rel, 160)
    write_audio(root / "_background_noise_" / "white_noise.wav", 320)
    write_audio(root / "_background_noise_" / "doing_the_dishes.wav", 320)
    (root / "_background_noise_" / "README.md").write_text("noise")
    (root / "validation_list.txt").write_text("\n".join(SC_VALIDATION) + "\n")
    (root / "testing_list.txt").write_text("\n".join(SC_TESTING) + "\n")
    (root / "LICENSE").write_text("CC-BY")
    return root


def rel_paths(clips, root):
    return [c.path.relative_to(root).as_posix() for c in clips]


def test_speech_commands_splits_follow_the_lists(tmp_path):
    root = make_speech_commands(tmp_path / "speech_commands")
    train = speech_commands.list_clips(root, "train")
    assert rel_paths(train, root) == sorted(set(SC_CLIPS) - set(SC_VALIDATION) - set(SC_TESTING))
    assert rel_paths(speech_commands.list_clips(root, "validation"), root) == sorted(SC_VALIDATION)
    assert rel_paths(speech_commands.list_clips(tmp_path, "testing"), root) == SC_TESTING  # data root
    assert {(c.word, c.speaker) for c in train} == {("yes", "aa11"), ("no", "cc33"), ("marvin", "ee55")}
    assert speech_commands.list_words(root) == ["marvin", "no", "sheila", "yes"]
    assert [p.name for p in speech_commands.background_noises(root)] == [
        "doing_the_dishes.wav", "white_noise.wav"]


def test_speech_commands_missing_list_file_is_a_structural_error(tmp_path):
    root = make_speech_commands(tmp_path)
    (root / "testing_list.txt").unlink()
    for split in ("train", "testing"):
        with pytest.raises(FileNotFoundError, match=f"^{root / 'testing_list.txt'}: missing list file"):
            speech_commands.list_clips(root, split)
    with pytest.raises(ValueError, match="split must be one of"):
        speech_commands.list_clips(root, "test")


def test_speech_commands_list_entry_without_audio_skips_or_raises(tmp_path, caplog):
    root = make_speech_commands(tmp_path)
    (root / "validation_list.txt").write_text("\n".join(SC_VALIDATION + ["yes/gone_nohash_0.wav",
                                                                         "not a path"]) + "\n")
    with caplog.at_level(logging.WARNING, logger="common.readers.speech_commands"):
        clips = speech_commands.list_clips(root, "validation")
    assert rel_paths(clips, root) == sorted(SC_VALIDATION)
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("skipped 2 of 4 clips in validation: ")
    assert f"1 list entries without audio (first: {root / 'validation_list.txt'}:3)" in message
    with pytest.raises(FileNotFoundError, match=f"^{root / 'validation_list.txt'}:3: no audio file"):
        speech_commands.list_clips(root, "validation", on_error="raise")


def test_speech_commands_clip_without_nohash_name_is_reported(tmp_path):
    root = make_speech_commands(tmp_path)
    odd = root / "yes" / "recorded.wav"
    write_audio(odd, 160)
    assert odd not in [c.path for c in speech_commands.list_clips(root, "train")]
    with pytest.raises(ValueError, match=f"^{odd}: expected a name like SPEAKER_nohash_0.wav"):
        speech_commands.list_clips(root, "train", on_error="raise")


# ---------------------------------------------------------------------------------- KsponSpeech

KSPON = {
    "train": {
        "KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm": "아/ 몬 소리야, 그건 또. b/",
        "KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000002.pcm":
            "o/ 그래서 (70%)/(칠십 퍼센트) 정도 n/",
    },
    "eval_clean": {"KsponSpeech_eval/KsponSpeech_E00001.pcm": "네 알겠습니다."},
}


def make_kspon(root, trn_encoding="utf-8"):
    scripts = root / "KsponSpeech_scripts"
    scripts.mkdir(parents=True)
    for split, lines in KSPON.items():
        for number, (rel, text) in enumerate(lines.items(), start=1):
            pcm = root / rel
            pcm.parent.mkdir(parents=True, exist_ok=True)
            np.full(1600 * number, 100, dtype="<i2").tofile(pcm)
            pcm.with_suffix(".txt").write_bytes((text + "\n").encode("cp949"))
        (scripts / f"{split}.trn").write_bytes(
            "".join(f"{rel} :: {text}\n" for rel, text in lines.items()).encode(trn_encoding))
    return root


@pytest.mark.parametrize("trn_encoding", ["utf-8", "cp949"])
def test_kspon_reads_trn_lines_raw(tmp_path, trn_encoding):
    root = make_kspon(tmp_path, trn_encoding)
    utts = kspon.list_utterances(root, "train")
    assert [u.id for u in utts] == ["KsponSpeech_000001", "KsponSpeech_000002"]
    assert [u.text for u in utts] == list(KSPON["train"].values())
    assert [u.path for u in utts] == [root / rel for rel in KSPON["train"]]
    (ev,) = kspon.list_utterances(root, "eval_clean")
    assert (ev.id, ev.text) == ("KsponSpeech_E00001", "네 알겠습니다.")
    assert durations.audio_durations([u.path for u in utts]) == [0.1, 0.2]


def test_kspon_bad_lines_skip_or_raise(tmp_path, caplog):
    root = make_kspon(tmp_path)
    trn = root / "KsponSpeech_scripts" / "train.trn"
    with open(trn, "a", encoding="utf-8") as f:
        f.write("KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000003.pcm :: 음성 파일이 없다\n")
        f.write("KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000004.pcm 구분자가 없다\n")
    with caplog.at_level(logging.WARNING, logger="common.readers.kspon"):
        assert len(kspon.list_utterances(root, "train")) == 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert message == (f"skipped 2 of 4 utterances in train: 1 lines without audio (first: {trn}:3), "
                       f"1 unreadable lines (first: {trn}:4)")
    with pytest.raises(FileNotFoundError, match=f"^{trn}:3: no audio file .*KsponSpeech_000003.pcm$"):
        kspon.list_utterances(root, "train", on_error="raise")


def test_kspon_missing_trn_lists_the_existing_ones(tmp_path):
    root = make_kspon(tmp_path / "KsponSpeech")
    with pytest.raises(FileNotFoundError) as err:
        kspon.list_utterances(tmp_path, "dev")  # data root holding KsponSpeech/
    assert str(err.value) == (f"{root / 'KsponSpeech_scripts' / 'dev.trn'}: no such split list; "
                              f"{root / 'KsponSpeech_scripts'} holds: eval_clean, train")


def test_kspon_read_transcript_cp949_then_utf8(tmp_path, caplog):
    root = make_kspon(tmp_path)
    txt = root / "KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000002.txt"
    assert kspon.read_transcript(txt) == "o/ 그래서 (70%)/(칠십 퍼센트) 정도 n/"
    resaved = tmp_path / "resaved.txt"
    resaved.write_bytes("이건 유티에프 팔로 저장된 전사입니다 b/\n".encode("utf-8"))
    with caplog.at_level(logging.WARNING, logger="common.readers.kspon"):
        assert kspon.read_transcript(resaved) == "이건 유티에프 팔로 저장된 전사입니다 b/"
    assert [r.getMessage() for r in caplog.records] == [
        f"{resaved}: transcript is not CP949, read it as UTF-8"]
    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(b"\xff\xfe\xff")
    with pytest.raises(ValueError, match=f"^{garbage}: transcript is neither CP949 nor UTF-8"):
        kspon.read_transcript(garbage)
