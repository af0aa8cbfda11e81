"""KsponSpeech transcript cleaning (KoSpeech's rules) and the Korean character vocabulary."""
from dataclasses import replace

import pytest

from asr.text import (CharVocabTokenizer, TextConfig, build_tokenizer, clean, kept_characters, normalize,
                      tokenizer_from_dict)
from asr.text_ko import clean_transcript, resolve_duals
from common.readers import kspon

# (raw KsponSpeech-style line, phonetic form, spelling form); lines written after the corpus's
# annotation conventions.
CASES = [
    # noise tags at the start, inside and at the end; a filler `음/`
    ("o/ 음/ 그래서 b/ 어제 갔어 l/", "음 그래서 어제 갔어", "음 그래서 어제 갔어"),
    # tags glued together or to a word, and `n/` before a dual
    ("b/n/ 아니 n/(그러니까)/(그니까) 왜", "아니 그니까 왜", "아니 그러니까 왜"),
    # a repeated word `+`, an unclear word `*`, an unintelligible word `u/`
    ("내+ 내일* 만나 u/ 보자", "내 내일 만나 보자", "내 내일 만나 보자"),
    # numbers: dual with a particle glued after it; a plain number without a dual stays digits
    ("(3시)/(세 시)에 2번 출구", "세 시에 2번 출구", "3시에 2번 출구"),
    # percent inside a dual, and a bare percent (KoSpeech's per-file 퍼센트 replacement)
    ("(70%)/(칠십 퍼센트)래", "칠십 퍼센트래", "70%래"),
    ("할인이 30%야", "할인이 30 퍼센트야", "할인이 30%야"),
    # a decimal point survives, sentence marks do not
    ("(3.5%)/(삼 점 오 퍼센트)야. 진짜?", "삼 점 오 퍼센트야 진짜", "3.5%야 진짜"),
    # a `/` inside the spelling side (a fraction) is a marker like any other
    ("(1/3)/(삼 분의 일)만 줘", "삼 분의 일만 줘", "13만 줘"),
    # nested dual: the inner pair resolves first and completes the outer one
    ("((아)/(어))/(어) 그래", "어 그래", "아 그래"),
    # colloquial pronunciation as a dual, comma and other excluded symbols
    ("(그리고)/(그리구), 뭐-라고 했지!", "그리구 뭐라고 했지", "그리고 뭐라고 했지"),
    # unbalanced leftovers of an annotation, and `#` as KoSpeech writes it
    ("(그래서 음 #1 번", "그래서 음 샾1 번", "그래서 음 샾1 번"),
    # spaces collapse; a Latin word ending in a tag letter is not a tag
    ("  어   (PC)/(피씨)방   info/ ", "어 피씨방 info", "어 PC방 info"),
    # a line that is only non-speech
    ("b/ l/ n/", "", ""),
]


@pytest.mark.parametrize("raw,phonetic,spelling", CASES)
def test_clean_transcript(raw, phonetic, spelling):
    assert clean_transcript(raw) == phonetic
    assert clean_transcript(raw, "spelling") == spelling


def test_options():
    assert clean_transcript("30%야", percent_word="프로") == "30 프로야"
    assert clean_transcript("진짜? 응.", drop_sentence_marks=False) == "진짜? 응."
    assert resolve_duals("(a)/(b) (c)/(d)", "spelling") == "a c"
    with pytest.raises(ValueError, match="form must be one of"):
        clean_transcript("x", "orthographic")


def test_config_switch_and_lower_case():
    ko = TextConfig(language="ko")
    assert clean("(PC)/(피씨)방 b/", ko) == "피씨방"
    assert clean("(PC)/(피씨)방 b/", replace(ko, kspon_form="spelling")) == "pc방"
    # English stays the alphabet normalization
    assert clean("HELLO, WORLD", TextConfig()) == "hello world"


def test_vocabulary_frequency_cutoff_and_unknown():
    texts = ["가 나 가", "가 다"]  # 가 3, space 3, 나 1, 다 1
    vocab = CharVocabTokenizer.build(texts, min_count=2)
    # blank, unk, then the most frequent first (ties by code point: space before 가)
    assert vocab.vocab == ["<blank>", "<unk>", " ", "가"]
    assert vocab.encode("가 나 다") == [3, 2, 1, 2, 1]
    assert vocab.decode([3, 2, 1, 0, 3]) == "가 가"  # blank and unk have no surface form
    full = CharVocabTokenizer.build(texts)
    assert full.vocab == ["<blank>", "<unk>", " ", "가", "나", "다"]
    assert tokenizer_from_dict(full.to_dict()).vocab == full.vocab
    with pytest.raises(ValueError, match="min_char_count"):
        CharVocabTokenizer.build(texts, min_count=0)


def test_build_tokenizer_from_config():
    texts = [clean(t, TextConfig(language="ko")) for t, _, _ in CASES]
    char = build_tokenizer(TextConfig(language="ko", min_char_count=2), texts)
    assert isinstance(char, CharVocabTokenizer) and "<unk>" in char.vocab
    assert char.decode(char.encode("그래서 어")) == "그래서 어"
    bpe = build_tokenizer(TextConfig(language="ko", unit="bpe", bpe_vocab_size=120), texts)
    assert bpe.vocab[0] == "<blank>" and bpe.decode(bpe.encode("그래서 어")) == "그래서 어"
    # the dataset's normalize keeps every character of the cleaned texts (unknown ones included)
    alphabet = kept_characters(TextConfig(language="ko"), texts)
    assert all(normalize(t, alphabet) == t for t in texts)


def test_cp949_transcript_file(tmp_path):
    raw = "o/ (70%)/(칠십 퍼센트)래 b/"
    path = tmp_path / "KsponSpeech_000001.txt"
    path.write_bytes(raw.encode("cp949"))
    assert clean_transcript(kspon.read_transcript(path)) == "칠십 퍼센트래"
