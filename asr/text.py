"""Text for CTC: normalization and tokenizers (characters or BPE); id 0 is always the CTC blank.

English (LibriSpeech) text is normalized to a fixed alphabet; Korean (KsponSpeech, `language: ko`)
transcripts are cleaned as KoSpeech does (`asr.text_ko`) and characters come from a vocabulary
built on the training transcripts (`CharVocabTokenizer`, KoSpeech's character vocabulary: every
character seen at least `min_count` times, most frequent first, plus `<unk>` for the rest).

BPE uses word-boundary markers (Metaspace, `▁` starts every word), never byte-level BPE: a token's
text is then surface text, so a decoder can tell where words end and fuse a word-level LM.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Literal, Protocol

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from asr.text_ko import clean_transcript

BLANK = "<blank>"
UNK = "<unk>"
WORD_START = "▁"


@dataclass
class TextConfig:
    unit: Literal["char", "bpe"] = "char"  # output tokens: characters or BPE pieces
    alphabet: str = "abcdefghijklmnopqrstuvwxyz' "  # characters kept by normalization (char unit)
    bpe_vocab_size: int = 256  # BPE vocabulary size, blank and <unk> included
    language: Literal["en", "ko"] = "en"  # "ko": KsponSpeech transcripts, see asr.text_ko
    kspon_form: Literal["phonetic", "spelling"] = "phonetic"  # ko: which side of (spelling)/(phonetic)
    min_char_count: int = 1  # ko: training characters seen fewer times become <unk>


def clean(text: str, cfg: TextConfig) -> str:
    """A raw corpus transcript as the text the model learns and is scored on."""
    if cfg.language == "ko":
        return clean_transcript(text, cfg.kspon_form).lower()
    return normalize(text, cfg.alphabet)


def kept_characters(cfg: TextConfig, texts: list[str]) -> str:
    """The characters `normalize` must keep: the alphabet, or for ko every character of the
    (cleaned) `texts`, so a character outside the vocabulary stays in the reference as an error."""
    if cfg.language == "ko":
        return "".join(sorted(set("".join(texts))))
    return cfg.alphabet


def normalize(text: str, alphabet: str) -> str:
    """Lower-case, drop characters outside `alphabet`, collapse spaces (LibriSpeech is upper case)."""
    text = "".join(c for c in text.lower() if c in alphabet)
    return re.sub(r"\s+", " ", text).strip()


def dropped_characters(text: str, alphabet: str) -> str:
    """The characters of `text` that `normalize` drops, in order ("Café at 3" -> "é3")."""
    return "".join(c for c in text.lower() if c not in alphabet)


class TextTokenizer(Protocol):
    vocab: list[str]  # token texts; vocab[0] is the blank

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def to_dict(self) -> dict: ...


class CharTokenizer:
    """One token per character of the alphabet; the space is the word separator."""

    def __init__(self, alphabet: str) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"text.alphabet has repeated characters: {alphabet!r}")
        self.alphabet = alphabet
        self.vocab = [BLANK, *alphabet]
        self._ids = {c: i for i, c in enumerate(self.vocab)}

    def encode(self, text: str) -> list[int]:
        """Ids of `text`, which must be normalized to the alphabet already."""
        try:
            return [self._ids[c] for c in text]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} of {text!r} is not in the alphabet {self.alphabet!r}") from None

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids if i != 0)

    def to_dict(self) -> dict:
        return {"unit": "char", "alphabet": self.alphabet}


class BPETokenizer:
    """Byte-pair encoding over characters with `▁` word-start markers (HF `tokenizers`)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
        if self.vocab[0] != BLANK:
            raise ValueError(f"BPE tokenizer must have {BLANK} as id 0, found {self.vocab[0]!r}")

    @classmethod
    def train(cls, texts: list[str], vocab_size: int, alphabet: str) -> "BPETokenizer":
        """Learn merges from normalized `texts`; every alphabet character stays a token."""
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="always")
        tokenizer.decoder = decoders.Metaspace(replacement=WORD_START, prepend_scheme="always")
        initial = sorted({WORD_START + c for c in alphabet if c != " "} | {c for c in alphabet if c != " "})
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BLANK, UNK],
                                      initial_alphabet=initial, show_progress=False)
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([i for i in ids if i != 0])

    def to_dict(self) -> dict:
        return {"unit": "bpe", "tokenizer": self.tokenizer.to_str()}


def character_counts(texts: Iterable[str]) -> Counter:
    """How often each character occurs in `texts` (the space included)."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(text)
    return counts


class CharVocabTokenizer:
    """Characters of a vocabulary built from transcripts; any other character is `<unk>`.

    Ids: 0 the CTC blank, 1 `<unk>`, then the characters, most frequent first (ties by code point,
    so the same transcripts always give the same ids).
    """

    def __init__(self, chars: list[str]) -> None:
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError(f"vocabulary must be distinct single characters, got {chars[:20]!r}...")
        if BLANK in chars or UNK in chars:
            raise ValueError("vocabulary characters must not include the special tokens")
        self.chars = list(chars)
        self.vocab = [BLANK, UNK, *self.chars]
        self._ids = {c: i for i, c in enumerate(self.vocab)}
        self.unk_id = 1

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> "CharVocabTokenizer":
        """The vocabulary of `texts`: characters seen at least `min_count` times."""
        if min_count < 1:
            raise ValueError(f"text.min_char_count must be at least 1, got {min_count}")
        counts = character_counts(texts)
        kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        if not kept:
            raise ValueError(f"no character occurs {min_count} times in the training transcripts")
        return cls(kept)

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(c, self.unk_id) for c in text]

    def decode(self, ids: list[int]) -> str:
        # <unk> has no surface form: it is left out (and counts as an error against the reference).
        return "".join(self.vocab[i] for i in ids if i > 1)

    def to_dict(self) -> dict:
        return {"unit": "char_vocab", "chars": "".join(self.chars)}


def build_tokenizer(cfg: TextConfig, train_texts: list[str]) -> TextTokenizer:
    """The tokenizer a config asks for; BPE and the ko vocabulary come from the (cleaned) training
    transcripts."""
    if cfg.language == "ko":
        chars = CharVocabTokenizer.build(train_texts, cfg.min_char_count)
        if cfg.unit == "char":
            return chars
        return BPETokenizer.train(train_texts, cfg.bpe_vocab_size, "".join(chars.chars))
    if cfg.unit == "char":
        return CharTokenizer(cfg.alphabet)
    return BPETokenizer.train(train_texts, cfg.bpe_vocab_size, cfg.alphabet)


def tokenizer_from_dict(state: dict) -> TextTokenizer:
    """Rebuild a tokenizer saved with `to_dict` (it travels inside checkpoints as plain data)."""
    if state.get("unit") == "char":
        return CharTokenizer(state["alphabet"])
    if state.get("unit") == "char_vocab":
        return CharVocabTokenizer(list(state["chars"]))
    if state.get("unit") == "bpe":
        return BPETokenizer(Tokenizer.from_str(state["tokenizer"]))
    raise ValueError(f"unknown tokenizer state: {json.dumps(state)[:80]}")
