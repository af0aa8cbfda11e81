"""The synthetic KsponSpeech corpus and the Korean sentence/annotation generator behind it."""
import re
from pathlib import Path

import numpy as np
import pytest

from asr.text_ko import clean_transcript
from common.readers import kspon as reader
from corpora.synth import korean
from corpora.synth import kspon
from conftest import file_digests

TINY = dict(n_train=12, n_dev=3, n_eval_clean=3, n_eval_other=3, n_train_speakers=3,
            n_dev_speakers=1, n_eval_speakers=1, files_per_folder=5, folders_per_part=2,
            chunk_size=4)


def _trn(corpus: Path, split: str) -> list[tuple[str, str]]:
    lines = (corpus / kspon.SCRIPTS_DIR / f"{split}.trn").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split(" :: ")) for line in lines]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The tiny corpus made with 1 and 2 processes, and with another seed."""
    roots = {}
    for name, seed, processes in (("one", 0, 1), ("two", 0, 2), ("other_seed", 1, 2)):
        root = tmp_path_factory.mktemp(name)
        result = kspon.make_kspon(root, kspon.KsponSpec(seed=seed, **TINY), processes=processes)
        roots[name] = (root / kspon.CORPUS_DIR, result)
    return roots


def test_same_seed_same_bytes_whatever_the_processes(corpora):
    one, two = file_digests(corpora["one"][0]), file_digests(corpora["two"][0])
    assert one == two
    assert file_digests(corpora["other_seed"][0]) != one
    assert sum(1 for name in one if name.endswith(".pcm")) == 21


def test_layout_and_numbering_follow_the_real_release(corpora):
    corpus, result = corpora["one"]
    train, dev = _trn(corpus, "train"), _trn(corpus, "dev")
    clean, other = _trn(corpus, "eval_clean"), _trn(corpus, "eval_other")
    assert [len(x) for x in (train, dev, clean, other)] == [12, 3, 3, 3]
    assert result["splits"]["train"]["utterances"] == 12
    # 5 files per folder and 2 folders per part here: file 11 is in folder 3, part 2.
    assert train[0][0] == "KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm"
    assert train[10][0] == "KsponSpeech_02/KsponSpeech_0003/KsponSpeech_000011.pcm"
    assert dev[0][0] == "KsponSpeech_02/KsponSpeech_0003/KsponSpeech_000013.pcm"
    assert clean[0][0] == "KsponSpeech_eval/eval_clean/KsponSpeech_E00001.pcm"
    assert other[0][0] == "KsponSpeech_eval/eval_other/KsponSpeech_E00004.pcm"
    default = kspon.KsponSpec()
    assert (kspon.relative_path("train", 124001, default)
            == "KsponSpeech_02/KsponSpeech_0125/KsponSpeech_124001.pcm")
    # The project's reader finds every listed utterance.
    for split, lines in (("train", train), ("dev", dev), ("eval_clean", clean),
                         ("eval_other", other)):
        assert len(reader.list_utterances(corpus.parent, split, on_error="raise")) == len(lines)


def test_audio_and_cp949_transcripts(corpora):
    corpus, _ = corpora["one"]
    for split in kspon.SPLITS:
        for relative, text in _trn(corpus, split):
            pcm = corpus / relative
            data = pcm.read_bytes()
            assert len(data) % 2 == 0
            wave = np.frombuffer(data, dtype="<i2") / 32768.0
            assert wave.size > 16000 * 0.8, relative
            assert np.sqrt(np.mean(wave ** 2)) > 3e-3 and np.max(np.abs(wave)) < 1.0
            raw = pcm.with_suffix(".txt").read_bytes()
            decoded = raw.decode("cp949")
            assert decoded.strip() == text
            assert decoded.encode("cp949") == raw
            assert reader.read_transcript(pcm.with_suffix(".txt")) == text


def test_dev_and_eval_sentences_never_in_train(corpora):
    spec = kspon.KsponSpec(n_train=400, n_dev=50, n_eval_clean=50, n_eval_other=50)
    sentences = kspon._sentences(spec, np.random.default_rng(0))
    keys = {split: {korean.sentence_key(t) for t in tokens} for split, tokens in sentences.items()}
    assert {split: len(k) for split, k in keys.items()} == spec.split_sizes()
    for held_out in ("dev", "eval_clean", "eval_other"):
        assert not keys[held_out] & keys["train"]
    corpus, _ = corpora["one"]
    train = {clean_transcript(text, "spelling") for _, text in _trn(corpus, "train")}
    for split in ("dev", "eval_clean", "eval_other"):
        assert not {clean_transcript(text, "spelling") for _, text in _trn(corpus, split)} & train


def test_is_complete_and_refusing_foreign_folders(corpora, tmp_path):
    corpus, _ = corpora["one"]
    assert kspon.is_complete(corpus.parent, kspon.KsponSpec(seed=0, **TINY))
    assert not kspon.is_complete(corpus.parent, kspon.KsponSpec(seed=3, **TINY))
    (tmp_path / "KsponSpeech").mkdir()
    with pytest.raises(ValueError, match="refusing to overwrite"):
        kspon.make_kspon(tmp_path, kspon.KsponSpec(**TINY))


# ---------------------------------------------------------------------------------------------
# Korean text

def test_numbers_read_aloud():
    assert [korean.sino_korean(n) for n in (0, 10, 11, 105, 1000, 2024, 10000, 15000, 32500,
                                            110000, 100000000)] == [
        "영", "십", "십일", "백오", "천", "이천이십사", "만", "만 오천", "삼만 이천오백", "십일만",
        "일억"]
    assert [korean.native_korean(n) for n in (1, 4, 20, 25, 99)] == [
        "하나", "넷", "스물", "스물다섯", "아흔아홉"]
    assert [korean.native_korean(n, attributive=True) for n in (1, 2, 3, 4, 20, 21)] == [
        "한", "두", "세", "네", "스무", "스물한"]
    assert [korean.month_name(m) for m in (1, 6, 10, 12)] == ["일월", "유월", "시월", "십이월"]
    assert korean.decimal_reading("3.5") == "삼 점 오"
    with pytest.raises(ValueError):
        korean.native_korean(100)


def test_particles_follow_the_last_syllable():
    assert korean.particle("세 시", "으로") == "로"
    assert korean.particle("삼십 분", "으로") == "으로"
    assert korean.particle("서울", "으로") == "로"  # ㄹ takes 로
    assert korean.particle("치킨", "이") == "이" and korean.particle("피자", "이") == "가"
    assert korean.particle("만 원", "이에요") == "이에요"
    assert korean.particle("퍼센트", "이래") == "래"


def test_word_and_template_files(tmp_path):
    words = korean.vocabulary()
    assert words["people"][-1] == "옆집 아저씨"  # entries keep their inner spaces
    assert words["media"][0] == ("TV", "티비") and ("치킨", "마리") in words["food_counters"]
    assert korean.templates()[0] == "{day} 날씨 진짜 {weather}"
    malformed = [("[media]\nTV\n", "left = right"), ("[people]\n엄마\n엄마\n", "already"),
                 ("[people]\n엄마 = 엄마\n", "one word per line"), ("[nope]\n", "unknown section"),
                 ("엄마\n", "before any"), ("[people]\n엄마  # mother\n", "missing sections")]
    for index, (text, error) in enumerate(malformed):
        path = tmp_path / f"words{index}.txt"  # one file each: the loader caches by path
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=error):
            korean.vocabulary(path)


def test_reading_back_an_annotated_transcript():
    text = "o/ 음/ 그 (70%)/(칠십 퍼센트)래 b/ 내+ 내일* (3시)/(세 시)에 u/ 보자. l/"
    assert clean_transcript(text, "phonetic") == "음 그 칠십 퍼센트래 내 내일 세 시에 보자"
    assert clean_transcript(text, "spelling") == "음 그 70%래 내 내일 3시에 보자"
    assert clean_transcript("(3.5%)/(삼 점 오 퍼센트)야.", "spelling") == "3.5%야"


def test_annotations_appear_and_leave_no_trace_when_read():
    rng = np.random.default_rng(0)
    transcripts, n = [], 3000
    for _ in range(n):
        tokens = korean.annotate(korean.sentence(rng), rng)
        text = korean.transcript(tokens)
        spoken = clean_transcript(text, "phonetic")
        assert spoken == korean.spoken_text(tokens)
        assert not re.search(r"[()/+*]|(?<!\S)[bnlou]/", spoken), text
        text.encode("cp949")  # every character the generator uses exists in CP949
        transcripts.append(text)

    def share(pattern: str) -> float:
        return sum(bool(re.search(pattern, t)) for t in transcripts) / n

    assert share(r"\([^)]*\d[^)]*\)/\(") > 0.3  # digits with their reading
    assert share(r"\([A-Z]+\)/\(") > 0.01  # abbreviations read out
    assert share(r"\((그리고|그러니까|진짜|근데|있잖아|그럼|되게)\)/\(") > 0.01  # colloquial
    for tag in ("b/", "n/", "l/", "o/", "u/"):
        assert share(rf"(?<!\S){tag}(?!\S)") > 0.005, tag
    assert share(r"\S\+ ") > 0.03 and share(r"\S\*") > 0.005
    assert share(r"(?<!\S)(음|어|아|그|뭐|저|으|응|막)/ ") > 0.1
