"""From LM text to word n-gram counts, in memory that grows with the distinct n-grams, not the text.

    text = LmText("librispeech-lm-norm.txt.gz")            # plain or gzipped, read as a stream
    counts = count_ngrams(text, order=3, vocab=top_words(LmText(path), 200_000))

`asr.lm` estimates its Kneser-Ney model from these counts. The text is read line by line, each line
normalized like the training transcripts (`asr.text.normalize`); whether a file is gzipped is told
by its first bytes, not its name. Words become ids as they come, or through a fixed vocabulary
(`--vocab FILE`, `--top-words N`) where every other word is `<unk>`.

Counting: every `chunk_tokens` tokens, each order's n-gram occurrences in the chunk are appended to
that order's running table of distinct n-grams and the whole is reduced again (sort, then sum the
runs of equal rows), so the running tables only ever hold distinct n-grams. Rows are sorted by
their word ids packed into one int64 where they fit (order x bits per id <= 63: 200k words to
order 3), otherwise by `np.lexsort` over the id columns.

Memory: an n-gram costs about `BYTES_PER_NGRAM` bytes at the peak of estimation (measured with
`bench/asr_lm.py`, see docs/asr.md). With a memory budget, the count of distinct n-grams is
projected to the end of the file after every chunk (Heaps' law, d ~ f^beta, fitted to what has
been read so far) and counting stops with a one-line error as soon as the projection, or the
count itself, needs more than the budget.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.text import TextConfig, normalize

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
GZIP_MAGIC = b"\x1f\x8b"
# What Python's gzip raises on a corrupt or truncated stream.
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
# Peak bytes per distinct n-gram (all orders together) while `asr.lm` counts and estimates an
# order-3 model; measured by bench/asr_lm.py (docs/asr.md, "LM on large text"), rounded up.
BYTES_PER_NGRAM = 160
CHUNK_TOKENS = 1 << 22  # tokens counted at once: 4 M tokens, ~50-100 MB of transient arrays


def is_gzip(path: str | Path) -> bool:
    """Whether the file starts with gzip's magic bytes (the content decides, not the name)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


class LmText:
    """The sentences of a text file (plain or gzipped), one per non-empty line, as word lists
    normalized like the training transcripts; read as a stream, each time it is iterated.

    `fraction` is how much of the file the running iteration has read (of the compressed bytes for
    a .gz), which is what the memory projection extrapolates from.
    """

    def __init__(self, path: str | Path, alphabet: str = TextConfig.alphabet, progress: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: LM text file not found")
        self.alphabet = alphabet
        self.progress = progress
        self.fraction = 0.0

    def __iter__(self) -> Iterator[list[str]]:
        size = max(1, self.path.stat().st_size)
        self.fraction = 0.0
        with open(self.path, "rb") as raw, tqdm(total=size, unit="B", unit_scale=True, leave=False,
                                                 desc=f"reading {self.path.name}", disable=not self.progress) as bar:
            stream = gzip.GzipFile(fileobj=raw) if is_gzip(self.path) else raw
            number = 0
            try:
                for number, line in enumerate(stream, start=1):
                    if number % 8192 == 0:
                        bar.update(raw.tell() - bar.n)
                        self.fraction = raw.tell() / size
                    try:
                        text = line.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ValueError(f"{self.path}:{number}: not UTF-8 text (expected one sentence per line)") from None
                    words = normalize(text, self.alphabet).split()
                    if words:
                        yield words
            except GZIP_ERRORS as e:
                raise ValueError(f"{self.path}: corrupt or truncated gzip file after line {number} ({e})") from None
            bar.update(size - bar.n)
            self.fraction = 1.0


def read_vocab(path: str | Path, alphabet: str = TextConfig.alphabet) -> list[str]:
    """The words of a vocabulary file (one or more per line, e.g. OpenSLR's librispeech-vocab.txt),
    normalized like the LM text, in file order without repeats."""
    words = dict.fromkeys(w for line in LmText(path, alphabet) for w in line)
    for marker in (BOS, EOS, UNK):
        words.pop(marker, None)
    if not words:
        raise ValueError(f"{path}: no words in the vocabulary file (expected one word per line)")
    return list(words)


def top_words(sentences: Iterable[Sequence[str]], count: int) -> list[str]:
    """The `count` most frequent words (ties: first seen first), most frequent first."""
    if count < 1:
        raise ValueError(f"--top-words must be >= 1, got {count}")
    frequencies = Counter()
    for words in sentences:
        frequencies.update(words)
    return [word for word, _ in frequencies.most_common(count)]


@dataclass
class NgramCounts:
    """Raw counts of every n-gram of a text, sentences read as `<s> w1 .. wn </s>`.

    vocab: word per id; ids 0, 1, 2 are `<s>`, `</s>`, `<unk>`.
    rows[n - 1]: (count_n, n) int32 word ids of the distinct n-grams, sorted lexicographically;
        rows[0] is every id of the vocabulary (a word may have count 0, e.g. from a vocabulary file).
    counts[n - 1]: (count_n,) int64 occurrences of each.
    """

    vocab: list[str]
    rows: list[np.ndarray]
    counts: list[np.ndarray]
    sentences: int
    tokens: int  # words and </s> (what perplexity divides by)

    @property
    def order(self) -> int:
        return len(self.rows)

    def distinct(self) -> int:
        """Distinct n-grams of all orders."""
        return sum(len(r) for r in self.rows)


def unique_rows(rows: np.ndarray, counts: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of `rows` (m, n) in lexicographic order, and the summed `counts` (m,) of each."""
    n = rows.shape[1]
    if len(rows) == 0:
        return rows, counts
    bits = max(1, (vocab_size - 1).bit_length())
    if n * bits <= 63:
        keys = np.zeros(len(rows), dtype=np.int64)
        for j in range(n):
            keys = (keys << bits) | rows[:, j].astype(np.int64)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        keys = keys[starts]
        mask = (1 << bits) - 1
        unique = np.stack([(keys >> (bits * (n - 1 - j))) & mask for j in range(n)], axis=1).astype(np.int32)
    else:
        order = np.lexsort(rows.T[::-1])
        ordered = rows[order]
        starts = np.flatnonzero(np.concatenate(([True], np.any(ordered[1:] != ordered[:-1], axis=1))))
        unique = ordered[starts]
    return unique, np.add.reduceat(counts[order], starts)


def available_memory() -> int:
    """Bytes of memory available to a new allocation (Linux MemAvailable, else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def projected_distinct(history: Sequence[tuple[float, int]]) -> int:
    """Distinct n-grams at the end of the text from (fraction read, distinct so far) points:
    d = d_last * (1 / f_last) ** beta, beta fitted between the first and last point (Heaps' law,
    clipped to [0.5, 1]); linear (beta 1, the upper bound) until the points span 1.5x."""
    f_last, d_last = history[-1]
    f_first, d_first = history[0]
    beta = 1.0
    if f_last >= 1.5 * f_first > 0 and d_last > d_first > 0:
        beta = min(1.0, max(0.5, math.log(d_last / d_first) / math.log(f_last / f_first)))
    return int(d_last * (1.0 / max(f_last, 1e-9)) ** beta)


def size_text(size: float) -> str:
    """Bytes as a person reads them: '512 KiB', '37 MiB', '2.4 GiB'."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if unit == "GiB" else f"{size / scale:.0f} {unit}"
    return f"{size / 1024:.0f} KiB"


def check_memory(distinct: int, budget: int, what: str) -> None:
    """Raise MemoryError (one line with the numbers) when `distinct` n-grams need more than `budget` bytes."""
    need = distinct * BYTES_PER_NGRAM
    if need > budget:
        raise MemoryError(f"{what}: {distinct:,} distinct n-grams need ~{size_text(need)} "
                          f"({BYTES_PER_NGRAM} bytes each), more than the {size_text(budget)} budget; "
                          f"use --top-words N or --vocab FILE, a lower --order or a smaller text (or --memory GIB)")


def count_ngrams(sentences: Iterable[Sequence[str]], order: int, vocab: Sequence[str] | None = None,
                 memory_budget: int | None = None, chunk_tokens: int = CHUNK_TOKENS,
                 fraction: Callable[[], float] | None = None, name: str = "LM text") -> NgramCounts:
    """Raw counts of all n-grams up to `order` (see `NgramCounts`), counted chunk by chunk.

    vocab: the words to keep (every other word is `<unk>`); None keeps every word.
    memory_budget: bytes the estimate may need (`check_memory`); None checks nothing.
    fraction: how much of the text has been read (`LmText.fraction`); lets the budget check project
        the count to the end of the text instead of only checking what has been counted.
    """
    fixed = vocab is not None
    index = {BOS: 0, EOS: 1, UNK: 2}
    for word in vocab or ():
        index.setdefault(word, len(index))
    unigrams = np.zeros(len(index), dtype=np.int64)
    rows = [np.zeros((0, n), dtype=np.int32) for n in range(2, order + 1)]
    counts = [np.zeros(0, dtype=np.int64) for _ in range(2, order + 1)]
    history: list[tuple[float, int]] = []

    def add_chunk(tokens: array, ends: array) -> None:
        nonlocal unigrams
        t = np.frombuffer(tokens, dtype=np.int32)
        unigrams = np.concatenate((unigrams, np.zeros(len(index) - len(unigrams), dtype=np.int64)))
        unigrams += np.bincount(t, minlength=len(index))
        ends = np.frombuffer(ends, dtype=np.int64)
        lengths = np.diff(np.concatenate(([0], ends)))
        room = np.repeat(ends, lengths) - np.arange(len(t))  # tokens left in the sentence
        for n in range(2, order + 1):
            positions = np.flatnonzero(room >= n)
            occurrences = np.stack([t[positions + j] for j in range(n)], axis=1)
            rows[n - 2], counts[n - 2] = unique_rows(
                np.concatenate((rows[n - 2], occurrences)),
                np.concatenate((counts[n - 2], np.ones(len(occurrences), dtype=np.int64))), len(index))
        if memory_budget is not None:
            distinct = len(index) + sum(len(r) for r in rows)
            check_memory(distinct, memory_budget, f"{name} (counted so far)")
            if fraction is not None and 0 < fraction() < 1:
                history.append((fraction(), distinct))
                check_memory(projected_distinct(history), memory_budget,
                             f"{name} (projected from {fraction():.1%} of the file)")

    # Compact buffers (4 and 8 bytes an entry): a list would hold an int object per token.
    tokens, ends = array("i"), array("q")
    sentence_count = token_count = 0
    for words in sentences:
        tokens.append(0)
        if fixed:
            tokens.extend(index.get(w, 2) for w in words)
        else:
            tokens.extend(index.setdefault(w, len(index)) for w in words)
        tokens.append(1)
        ends.append(len(tokens))
        sentence_count += 1
        token_count += len(words) + 1
        if len(tokens) >= chunk_tokens:
            add_chunk(tokens, ends)
            tokens, ends = array("i"), array("q")
    if tokens:
        add_chunk(tokens, ends)
    if not sentence_count:
        raise ValueError(f"{name}: no sentences to train the LM on")
    if len(rows) and len(rows[-1]) == 0:
        raise ValueError(f"{name}: no sentence is long enough for {order}-grams; lower the order")
    words = list(index)  # every chunk padded `unigrams` to the vocabulary it had seen
    return NgramCounts(words, [np.arange(len(words), dtype=np.int32)[:, None], *rows], [unigrams, *counts],
                       sentence_count, token_count)
