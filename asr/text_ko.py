"""KsponSpeech transcripts as plain text: KoSpeech's preprocessing.

KsponSpeech (AI Hub) annotates spontaneous speech inside the transcript:

    o/ 음/ 그 (70%)/(칠십 퍼센트)래 b/ 내+ 내일* (3시)/(세 시)에 u/ 보자. l/

- `(spelling)/(phonetic)` dual transcriptions: how the words are written and how they were said;
- noise tags `b/` breath, `n/` noise, `l/` laughter, `o/` overlapping speech, `u/` unintelligible;
- `word/` a filler (`음/`), `word+` a repeated word, `word*` an unclear word.

`clean_transcript` does what KoSpeech's `dataset/kspon/preprocess/preprocess.py` does
(`bracket_filter` then `special_filter`): pick one side of every dual transcription, drop the
noise tags, the `/ + *` markers and the other symbols it excludes, write `%` in words (phonetic
form; KoSpeech hard-codes the replacement for the handful of real files that need it) and `#` as
`샾`, and collapse spaces. Two deliberate differences from KoSpeech: sentence marks (`. ? !`) are
dropped by default, since they are not heard (KoSpeech keeps them: `drop_sentence_marks=False`),
and a leftover unmatched parenthesis is removed instead of hiding the text after it.

The character vocabulary built on the cleaned transcripts is `asr.text.CharVocabTokenizer`.
"""
from __future__ import annotations

import re

FORMS = ("phonetic", "spelling")
NOISE_TAGS = "bnlou"  # breath, noise, laughter, overlap, unintelligible
PERCENT_WORD = "퍼센트"  # `%` in the phonetic form; KoSpeech's per-file table uses 퍼센트 or 프로
SHARP_WORD = "샾"  # `#`, as KoSpeech writes it
# Symbols KoSpeech's special_filter deletes (its EXCEPT list): annotation markers and stray marks.
EXCLUDED = "/+*-@$^&[]=:;,"

# A dual transcription: two parenthesised groups joined by `/`, neither holding parentheses.
# Nested forms such as `((아)/(어))/(어)` resolve from the inside out.
_DUAL = re.compile(r"\(([^()]*)\)\s*/\s*\(([^()]*)\)")
# A noise tag: one of the tag letters right before `/`, not the end of a longer Latin word.
_NOISE = re.compile(rf"(?<![A-Za-z])[{NOISE_TAGS}]/")
_EXCLUDED = re.compile("[" + re.escape(EXCLUDED) + "]")
# Sentence marks end a word; a `.` between digits (3.5) is a decimal point and stays.
_SENTENCE_MARK = re.compile(r"[?!]|\.(?!\d)|(?<!\d)\.")


def resolve_duals(text: str, form: str = "phonetic") -> str:
    """`text` with every `(spelling)/(phonetic)` pair replaced by the side `form` names."""
    if form not in FORMS:
        raise ValueError(f"KsponSpeech transcript form must be one of {FORMS}, got {form!r}")
    side = 1 if form == "spelling" else 2
    while True:  # repeat: a resolved inner pair can complete an outer one
        resolved = _DUAL.sub(lambda m: m.group(side), text)
        if resolved == text:
            return resolved
        text = resolved


def clean_transcript(text: str, form: str = "phonetic", *, percent_word: str = PERCENT_WORD,
                     drop_sentence_marks: bool = True) -> str:
    """A raw KsponSpeech transcript as plain text in the chosen `form` (see the module docstring).

    >>> clean_transcript("o/ 음/ 그 (70%)/(칠십 퍼센트)래 b/ 내+ 내일* (3시)/(세 시)에 u/ 보자. l/")
    '음 그 칠십 퍼센트래 내 내일 세 시에 보자'
    """
    text = resolve_duals(text, form)
    text = text.replace("(", " ").replace(")", " ")  # leftovers of unbalanced annotations
    text = _NOISE.sub(" ", text)  # before the markers go: the `/` tells a tag from a letter
    text = _EXCLUDED.sub("", text)
    text = text.replace("#", SHARP_WORD)
    if form == "phonetic":
        # `%` outside a dual (the transcriber wrote no phonetic side): the word as said.
        text = re.sub(r"\s*%", " " + percent_word, text) if percent_word else text.replace("%", "")
    if drop_sentence_marks:
        text = _SENTENCE_MARK.sub("", text)
    return " ".join(text.split())
