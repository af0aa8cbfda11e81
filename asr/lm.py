"""Word n-gram language models: train one (interpolated modified Kneser-Ney), write ARPA, query it.

    python -m asr.lm TEXT_FILE OUT.arpa [--order 3]

Training follows Chen & Goodman (1998) and KenLM's `lmplz`:
- Sentences are `<s> w1 .. wn </s>`; `<s>` is only ever a context, never predicted.
- Adjusted counts: the highest order uses raw counts; a lower-order n-gram uses its continuation
  count (how many distinct words precede it), except n-grams starting with `<s>`, which nothing
  can precede, keep their raw count.
- Three discounts per order from counts-of-counts n1..n4 of the adjusted counts:
  Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3
  (lmplz's fallback 0.5 / 1 / 1.5 when an order's counts give no valid discounts).
- Interpolation: p(w|h) = (a(hw) - D(a(hw))) / a(h*) + gamma(h) p(w|h'), with
  gamma(h) = (D1 N1(h*) + D2 N2(h*) + D3+ N3+(h*)) / a(h*) and h' = h minus its first word; the
  unigram level interpolates with the uniform distribution over the vocabulary (`<unk>` included,
  `<s>` not), so `<unk>` gets gamma / |V|.
Written as ARPA, every listed n-gram carries its interpolated probability and every context its
gamma as backoff weight, which is exactly the backoff form: unlisted words get gamma(h) p(w|h').

Counting is vectorized: every n-gram occurrence is numbered by (number of its (n-1)-gram prefix,
last word), so each order is one `np.unique` over integers; ~100k sentences take a few seconds.

`WordLM` queries a model with `kenlm` (which returns log10; we convert to natural log). A gzipped
ARPA (`X.arpa.gz`, e.g. OpenSLR's prebuilt LibriSpeech LMs) is read as is where kenlm was built
with zlib; otherwise it is decompressed once to the sibling `X.arpa`, which is reused while it is
newer than the .gz. `arpa_words` and `read_arpa` read .gz files too; `X.arpa.gz` and `X.arpa`
share their tuned alpha/beta, `X.tuned.json` (`tuned_path`).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.text import TextConfig, normalize
from common.cli import add_check_flag

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LN10 = math.log(10.0)
DISCOUNT_FALLBACK = (0.5, 1.0, 1.5)
COMMON_WORDS = ("the", "and", "of", "a", "to")  # tell an upper-case English LM from a lower-case one
LOG10_ZERO = -99.0  # ARPA's "probability zero" (the unigram <s>)
GZIP_MAGIC = b"\x1f\x8b"
# What Python's gzip raises on a corrupt or truncated stream.
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


@dataclass
class NgramModel:
    """An n-gram model in backoff form, i.e. what an ARPA file holds.

    vocab: word per id; ids 0, 1, 2 are `<s>`, `</s>`, `<unk>`.
    ngrams[n - 1]: (count_n, n) word ids of the listed n-grams.
    log10_probs[n - 1]: (count_n,) log10 p(last word | the others).
    log10_backoffs[n - 1]: (count_n,) log10 backoff weight of the n-gram as a context; NaN where it
        is never a context (always NaN for the highest order).
    """

    vocab: list[str]
    ngrams: list[np.ndarray]
    log10_probs: list[np.ndarray]
    log10_backoffs: list[np.ndarray]

    @property
    def order(self) -> int:
        return len(self.ngrams)


def read_sentences(path: str | Path, alphabet: str = TextConfig.alphabet) -> list[list[str]]:
    """Words of every non-empty line of a text file, normalized like training transcripts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: LM text file not found")
    with open(path, encoding="utf-8") as f:
        lines = [normalize(line, alphabet).split() for line in f]
    return [words for words in lines if words]


def discounts(adjusted_counts: np.ndarray) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) of one order from its adjusted counts."""
    n1, n2, n3, n4 = (int(np.count_nonzero(adjusted_counts == k)) for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return DISCOUNT_FALLBACK
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not all(0 < dk < k for k, dk in enumerate(d, start=1)):
        return DISCOUNT_FALLBACK
    return d


def train_kneser_ney(sentences: Iterable[Sequence[str]], order: int = 3, progress: bool = True) -> NgramModel:
    """Interpolated modified Kneser-Ney model of `order` from word sequences (see module doc)."""
    if not 2 <= order <= 6:
        raise ValueError(f"LM order must be 2..6 (KenLM needs at least bigrams), got {order}")
    vocab, index = [BOS, EOS, UNK], {BOS: 0, EOS: 1, UNK: 2}
    tokens, ends = [], []
    for words in sentences:
        tokens.append(0)
        tokens.extend(index.setdefault(w, len(index)) for w in words)
        tokens.append(1)
        ends.append(len(tokens))
    if not ends:
        raise ValueError("no sentences to train the LM on")
    vocab += list(index)[3:]
    size = len(vocab)
    t = np.asarray(tokens, dtype=np.int64)
    lengths = np.diff(np.concatenate(([0], ends)))
    room = np.repeat(np.asarray(ends), lengths) - np.arange(len(t))  # tokens left in the sentence

    # Per order: the number of the n-gram starting at each position (-1 where it does not fit),
    # the first position of each distinct n-gram, and raw counts. Unigrams are numbered by word
    # id (their positions are never needed; <unk> has none).
    ids, first, raw = [t], [np.full(size, -1)], [np.bincount(t, minlength=size)]
    for n in tqdm(range(2, order + 1), desc="counting n-grams", disable=not progress, leave=False):
        positions = np.flatnonzero(room >= n)
        if len(positions) == 0:
            raise ValueError(f"no sentence is long enough for {n}-grams (order {order}); lower the order")
        keys = ids[-1][positions] * size + t[positions + n - 1]
        _, first_index, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                    return_counts=True)
        number = np.full(len(t), -1, dtype=np.int64)
        number[positions] = inverse
        ids.append(number)
        first.append(positions[first_index])
        raw.append(counts)

    ngrams, log10_probs, log10_backoffs = [], [], []
    lower_prob = None  # interpolated probabilities of the previous order
    gammas = []  # per order n: gamma of each (n-1)-gram context, indexed by that n-gram's number
    for n in range(1, order + 1):
        count = len(first[n - 1])
        if n == 1:
            rows = np.arange(size)[:, None]
        else:
            rows = np.stack([t[first[n - 1] + j] for j in range(n)], axis=1)
        if n < order:
            # Continuation counts: distinct (n+1)-grams ending in each n-gram.
            suffix = ids[n - 1][first[n] + 1]
            adjusted = np.bincount(suffix, minlength=count)
            starts_sentence = rows[:, 0] == 0
            adjusted[starts_sentence] = raw[n - 1][starts_sentence]
        else:
            adjusted = raw[n - 1].copy()
        if n == 1:
            adjusted[0] = 0  # <s> is never predicted
        listed = adjusted > 0
        d1, d2, d3 = discounts(adjusted[listed])
        discount = np.select([adjusted == 1, adjusted == 2, adjusted >= 3], [d1, d2, d3], 0.0)
        if n == 1:
            context = np.zeros(count, dtype=np.int64)
            contexts = 1
        else:
            context = ids[n - 2][first[n - 1]]  # number of the (n-1)-gram prefix
            contexts = len(first[n - 2])
        total = np.bincount(context, weights=adjusted, minlength=contexts)
        mass = np.bincount(context, weights=discount, minlength=contexts)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(total > 0, mass / total, 0.0)
            own = np.where(total[context] > 0, (adjusted - discount) / total[context], 0.0)
        if n == 1:
            lower = np.full(count, 1.0 / (size - 1))  # uniform over the vocabulary minus <s>
        else:
            lower = lower_prob[ids[n - 2][first[n - 1] + 1]]  # p(w | h minus its first word)
        prob = own + gamma[context] * lower
        if n == 1:
            prob[0] = 0.0
        lower_prob = prob
        gammas.append(gamma)
        ngrams.append(rows)
        with np.errstate(divide="ignore"):
            log10_probs.append(np.where(prob > 0, np.log10(prob), LOG10_ZERO))
    for n in range(1, order + 1):
        if n == order:
            backoff = np.full(len(ngrams[n - 1]), np.nan)
        else:
            gamma = gammas[n]  # gamma of each n-gram as a context of order n+1
            is_context = np.bincount(ids[n - 1][first[n]], minlength=len(gamma)) > 0
            with np.errstate(divide="ignore"):
                backoff = np.where(is_context, np.log10(gamma), np.nan)
        log10_backoffs.append(backoff)
    return NgramModel(vocab, ngrams, log10_probs, log10_backoffs)


def write_arpa(path: str | Path, model: NgramModel) -> None:
    """Write `model` as an ARPA text file (written to a temp name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    words = np.asarray(model.vocab, dtype=object)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for n, rows in enumerate(model.ngrams, start=1):
            f.write(f"ngram {n}={len(rows)}\n")
        for n, (rows, probs, backoffs) in enumerate(zip(model.ngrams, model.log10_probs, model.log10_backoffs),
                                                    start=1):
            f.write(f"\n\\{n}-grams:\n")
            texts = [" ".join(r) for r in words[rows].tolist()] if n > 1 else words[rows[:, 0]].tolist()
            lines = [f"{p:.6f}\t{text}" if b != b else f"{p:.6f}\t{text}\t{b:.6f}"
                     for p, text, b in zip(probs.tolist(), texts, backoffs.tolist())]
            f.write("\n".join(lines))
            f.write("\n")
        f.write("\n\\end\\\n")
    tmp.replace(path)


@dataclass
class Arpa:
    """An ARPA model read into dicts: ngrams[n - 1] maps a word tuple to (log10 p, log10 backoff)."""

    ngrams: list[dict[tuple[str, ...], tuple[float, float]]]

    @property
    def order(self) -> int:
        return len(self.ngrams)

    def log10_prob(self, context: Sequence[str], word: str) -> float:
        """log10 P(word | context) with backoff; an unlisted word is scored as `<unk>`."""
        if (word,) not in self.ngrams[0]:
            word = UNK
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        backoff = 0.0
        while True:
            entry = self.ngrams[len(context)].get((*context, word))
            if entry is not None:
                return backoff + entry[0]
            if not context:
                raise ValueError(f"ARPA model lists neither {word!r} nor {UNK}")
            backoff += self.ngrams[len(context) - 1].get(context, (0.0, 0.0))[1]
            context = context[1:]

    def log10_sentence(self, words: Sequence[str]) -> float:
        """log10 P(<s> words </s>), the sum of each word's (and </s>'s) backoff probability."""
        history, total = [BOS], 0.0
        for word in [*words, EOS]:
            total += self.log10_prob(history, word)
            history.append(word)
        return total


def is_gzip(path: str | Path) -> bool:
    """Whether the file starts with gzip's magic bytes (the content decides, not the name)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _arpa_sections(path: Path, stop_after: int | None = None):
    """(order, fields) for every n-gram line of an ARPA file (plain or gzipped), up to order
    `stop_after`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ARPA file not found")
    if is_gzip(path):
        try:
            yield from _arpa_lines(path, gzip.open(path, "rb"), stop_after)
        except _GZIP_ERRORS as e:
            raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from None
    else:
        yield from _arpa_lines(path, open(path, "rb"), stop_after)


def _arpa_lines(path: Path, stream, stop_after: int | None):
    """`_arpa_sections` for an open binary stream, which it closes."""
    order = 0
    with stream as f:  # decoded line by line, so a bad byte is reported with its line
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{number}: not UTF-8 text (expected an ARPA file in UTF-8)") from None
            if not line or line.startswith("ngram ") or line == "\\data\\":
                continue
            if line == "\\end\\":
                return
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:-len("-grams:")])
                if stop_after is not None and order > stop_after:
                    return
                continue
            if order == 0:
                raise ValueError(f"{path}:{number}: expected '\\data\\' or '\\1-grams:', got {line[:40]!r}")
            yield order, line.split(), number


def read_arpa(path: str | Path) -> Arpa:
    """Read a (small) ARPA file fully into dicts; for tests and inspection, not for decoding."""
    path = Path(path)
    ngrams: list[dict] = []
    for order, fields, number in _arpa_sections(path):
        while len(ngrams) < order:
            ngrams.append({})
        if len(fields) not in (order + 1, order + 2):
            raise ValueError(f"{path}:{number}: a {order}-gram line needs 'log10p {order} words "
                             f"[backoff]', got {len(fields)} fields")
        backoff = float(fields[order + 1]) if len(fields) == order + 2 else 0.0
        ngrams[order - 1][tuple(fields[1:order + 1])] = (float(fields[0]), backoff)
    if not ngrams:
        raise ValueError(f"{path}: no n-grams found (not an ARPA file?)")
    return Arpa(ngrams)


def arpa_words(path: str | Path) -> list[str]:
    """The words of an ARPA file's unigram section, without `<s>`, `</s>` and `<unk>`."""
    return [fields[1] for _, fields, _ in _arpa_sections(Path(path), stop_after=1)
            if fields[1] not in (BOS, EOS, UNK)]


def _plain_sibling(path: Path) -> Path:
    """Where `decompressed_arpa` puts the text of gzipped `path`: `X.arpa.gz` -> `X.arpa`."""
    return path.with_name(path.name[:-len(".gz")] if path.name.endswith(".gz") else path.name + ".arpa")


def decompressed_arpa(path: str | Path) -> Path:
    """The plain ARPA next to a gzipped one (`X.arpa.gz` -> `X.arpa`), decompressed on first use.

    An existing sibling is reused while it is at least as new as the .gz (a newer .gz, e.g. one
    downloaded again, is decompressed anew). Written to a temp file in the same folder, then
    renamed, so an interrupted run never leaves a half-written `X.arpa` to be reused.
    """
    path = Path(path)
    plain = _plain_sibling(path)
    if plain.is_file() and plain.stat().st_mtime_ns >= path.stat().st_mtime_ns:
        return plain
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{plain.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, plain)
    except _GZIP_ERRORS as e:
        raise ValueError(f"{path}: corrupt or truncated gzip file ({e})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return plain


class WordLM:
    """A KenLM model (ARPA, gzipped ARPA or binary) scored word by word in natural log, with
    states as ints.

    State ids let callers key caches and arrays by plain integers; id 0 is the sentence start.
    Raises FileNotFoundError for a missing file and ValueError for one kenlm cannot read, each one
    line naming the file: the decoder loads its LM here, so every CLI reports a bad --lm alike.
    `path` is the file as given; `loaded_path` the one kenlm read (`decompressed_arpa(path)` where
    this kenlm cannot read gzip itself).
    """

    def __init__(self, path: str | Path) -> None:
        import kenlm  # imported here: training and reading ARPA files do not need it

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: language model file not found")
        self.path = self.loaded_path = path
        try:
            self.model = kenlm.Model(str(path))
        except (OSError, UnicodeDecodeError):  # kenlm's message is C++ detail (not always decodable)
            if not is_gzip(path):
                empty = " (the file is empty)" if path.stat().st_size == 0 else ""
                raise ValueError(f"{path}: not an ARPA (or kenlm binary) language model{empty}") from None
            # kenlm built without zlib: hand it the decompressed text instead.
            made = not _plain_sibling(path).exists()
            self.loaded_path = decompressed_arpa(path)
            try:
                self.model = kenlm.Model(str(self.loaded_path))
            except (OSError, UnicodeDecodeError):
                if made:  # not worth keeping: it would only be reused to fail again
                    self.loaded_path.unlink(missing_ok=True)
                raise ValueError(f"{path}: not a gzipped ARPA language model") from None
        self._kenlm = kenlm
        # The decoder's words are lower case (asr.text.normalize); OpenSLR's prebuilt LibriSpeech
        # LMs are upper case, like LibriSpeech's transcripts. Such a model is queried in upper case.
        self.upper_case = (not any(w in self.model for w in COMMON_WORDS)
                           and any(w.upper() in self.model for w in COMMON_WORDS))
        start = kenlm.State()
        self.model.BeginSentenceWrite(start)
        self.states = [start]
        self._state_ids = {start: 0}

    @property
    def order(self) -> int:
        return self.model.order

    def score(self, state: int, word: str) -> tuple[float, int]:
        """(ln P(word | state), state after the word)."""
        out = self._kenlm.State()
        log10p = self.model.BaseScore(self.states[state], word.upper() if self.upper_case else word, out)
        new = self._state_ids.get(out)
        if new is None:
            new = self._state_ids[out] = len(self.states)
            self.states.append(out)
        return log10p * LN10, new

    def end_score(self, state: int) -> float:
        """ln P(</s> | state)."""
        return self.model.BaseScore(self.states[state], EOS, self._kenlm.State()) * LN10

    def __contains__(self, word: str) -> bool:
        return (word.upper() if self.upper_case else word) in self.model


def tuned_path(lm_path: str | Path) -> Path:
    """Where the alpha/beta tuned for an LM are kept: next to it, `NAME.tuned.json`.

    A trailing `.gz` is ignored, so `X.arpa.gz` and its decompressed `X.arpa` (the same model)
    share `X.tuned.json`.
    """
    lm_path = Path(lm_path)
    name = lm_path.name[:-len(".gz")] if lm_path.name.endswith(".gz") else lm_path.name
    return lm_path.with_name(f"{Path(name).stem}.tuned.json")


def read_tuned(lm_path: str | Path) -> dict | None:
    """The tuning result saved next to an LM (keys alpha, beta, ...), or None when there is none."""
    path = tuned_path(lm_path)
    if not path.is_file():
        return None
    try:
        tuned = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(tuned, dict) or not all(isinstance(tuned.get(k), (int, float)) for k in ("alpha", "beta")):
        raise ValueError(f"{path}: expected a JSON object with numeric 'alpha' and 'beta'")
    if not (0 <= tuned["alpha"] < math.inf and math.isfinite(tuned["beta"])):  # JSON allows NaN and Infinity
        raise ValueError(f"{path}: expected alpha >= 0 and a finite beta, got {tuned['alpha']} and {tuned['beta']}")
    return tuned


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.lm", description=__doc__.splitlines()[0])
    parser.add_argument("text", help="text file, one sentence per line (any case)")
    parser.add_argument("out", help="ARPA file to write")
    parser.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    parser.add_argument("--alphabet", default=TextConfig.alphabet,
                        help="characters kept by normalization (default: the training alphabet)")
    add_check_flag(parser)
    args = parser.parse_args(argv)
    if args.order < 1:
        parser.error(f"--order must be >= 1, got {args.order}")
    if args.check:
        return
    started = time.time()
    try:
        sentences = read_sentences(args.text, args.alphabet)
        model = train_kneser_ney(sentences, args.order)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    write_arpa(args.out, model)
    counts = ", ".join(f"{n}-grams {len(rows)}" for n, rows in enumerate(model.ngrams, start=1))
    print(f"{args.out}: order {model.order}, {len(sentences)} sentences, {len(model.vocab) - 3} words; "
          f"{counts} ({time.time() - started:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
