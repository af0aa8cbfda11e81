"""Word n-gram language models: train one (interpolated modified Kneser-Ney), write ARPA, query it.

    python -m asr.lm TEXT_FILE OUT.arpa [--order 3] [--vocab FILE | --top-words N] [--prune C2 C3 ..]

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
- Count cutoffs (`--prune`, lmplz's meaning): n-grams of order n >= 2 seen at most C_n times are
  not listed, unless a listed higher-order n-gram needs them as prefix or suffix. The kept n-grams
  keep the probability the full counts give them; each context's backoff weight is recomputed,
  (1 - sum of its listed words' p) / (1 - sum of the same words' backed-off p one order down), so
  every distribution still sums to one.

The text is counted by `asr.lm_counts` (a stream, plain or gzipped; memory grows with the distinct
n-grams, not with the text; a vocabulary limit maps other words to `<unk>`), and the estimate is
vectorized over the count tables (`RowIndex` finds a prefix or suffix by binary search). Build time
and peak memory by corpus size are in docs/asr.md ("LM on large text").

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
import resource
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.lm_counts import (BOS, CHUNK_TOKENS, EOS, GZIP_ERRORS, UNK, LmText, NgramCounts, available_memory, check_memory,
                           count_ngrams, is_gzip, read_vocab, top_words)
from asr.text import TextConfig
from common.cli import add_check_flag

LN10 = math.log(10.0)
DISCOUNT_FALLBACK = (0.5, 1.0, 1.5)
COMMON_WORDS = ("the", "and", "of", "a", "to")  # tell an upper-case English LM from a lower-case one
LOG10_ZERO = -99.0  # ARPA's "probability zero" (the unigram <s>)


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


class RowIndex:
    """Finds rows in the sorted n-gram tables `rows` (`NgramCounts.rows`, or a pruned subset that
    keeps the prefix of every row): row r of order n has the code index_{n-1}(r[:-1]) * V + r[-1],
    increasing down each table, so a lookup is one `np.searchsorted` per order."""

    def __init__(self, rows: Sequence[np.ndarray], vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.codes = [rows[0][:, 0].astype(np.int64)]
        for table in rows[1:]:
            self.codes.append(self.find(table[:, :-1]) * vocab_size + table[:, -1])

    def find(self, query: np.ndarray) -> np.ndarray:
        """(m,) index of each row of `query` (m, k) in the order-k table; -1 where it is not there."""
        k = query.shape[1]
        if k == 1:
            codes, code = self.codes[0], query[:, 0].astype(np.int64)
        else:
            prefix = self.find(query[:, :-1])
            codes, code = self.codes[k - 1], np.where(prefix >= 0, prefix * self.vocab_size + query[:, -1], -1)
        if len(codes) == 0:
            return np.full(len(query), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(codes, code), len(codes) - 1)
        return np.where(codes[at] == code, at, -1)


def kept_ngrams(counts: NgramCounts, index: RowIndex, cutoffs: Sequence[int]) -> list[np.ndarray]:
    """Per order, a mask of the n-grams a model pruned with count cutoffs lists: those seen more than
    cutoffs[n - 1] times, and every prefix and suffix of a listed higher-order n-gram (ARPA readers
    need a listed n-gram's context, and its suffix is where its backoff lands). Unigrams are all kept."""
    keep = [np.ones(len(r), dtype=bool) for r in counts.rows]
    for n in range(counts.order, 1, -1):
        keep[n - 1] &= counts.counts[n - 1] > cutoffs[n - 1]
        if n < counts.order:
            listed = counts.rows[n][keep[n]]
            keep[n - 1][index.find(listed[:, :-1])] = True
            keep[n - 1][index.find(listed[:, 1:])] = True
    return keep


def backed_off_log10(index: RowIndex, log10_probs: Sequence[np.ndarray], log10_backoffs: Sequence[np.ndarray],
                     query: np.ndarray) -> np.ndarray:
    """(m,) log10 P(last word | the others) of each row of `query` (m, k) by the ARPA backoff rule
    over listed n-grams (`index` over the listed rows; a context without a backoff weight has 0)."""
    found = index.find(query)
    out = np.empty(len(query))
    hit = found >= 0
    out[hit] = log10_probs[query.shape[1] - 1][found[hit]]
    if not hit.all():
        missed = query[~hit]
        context = index.find(missed[:, :-1])
        backoff = np.where(context >= 0, log10_backoffs[query.shape[1] - 2][np.maximum(context, 0)], 0.0)
        out[~hit] = np.nan_to_num(backoff, nan=0.0) + backed_off_log10(index, log10_probs, log10_backoffs,
                                                                        missed[:, 1:])
    return out


def estimate_kneser_ney(counts: NgramCounts, cutoffs: Sequence[int] = ()) -> NgramModel:
    """Interpolated modified Kneser-Ney model from n-gram counts (see module doc).

    cutoffs: per order from 2 up, drop n-grams seen at most that many times (`kept_ngrams`;
        SRILM's -gtNmin, lmplz's --prune). Discounts, continuation counts and each kept n-gram's
        interpolated probability come from the full counts; the backoff weights are then
        recomputed so every context's distribution sums to one again.
    """
    order, size = counts.order, len(counts.vocab)
    if not 2 <= order <= 6:
        raise ValueError(f"LM order must be 2..6 (KenLM needs at least bigrams), got {order}")
    cutoffs = [0, *cutoffs, *[0] * order][:order]
    if any(c < 0 for c in cutoffs):
        raise ValueError(f"count cutoffs must be >= 0, got {list(cutoffs[1:])}")
    index = RowIndex(counts.rows, size)
    keep = kept_ngrams(counts, index, cutoffs)
    pruned = not all(k.all() for k in keep)

    ngrams, log10_probs, gammas = [], [], []
    lower_prob = None  # interpolated probability of each n-gram of the previous order (NaN: not kept)
    for n in range(1, order + 1):
        rows, raw = counts.rows[n - 1], counts.counts[n - 1]
        if n < order:
            # Continuation counts: distinct (n+1)-grams ending in each n-gram; <s> n-grams keep raw counts.
            adjusted = np.bincount(index.find(counts.rows[n][:, 1:]), minlength=len(rows))
            starts_sentence = rows[:, 0] == 0
            adjusted[starts_sentence] = raw[starts_sentence]
        else:
            adjusted = raw.copy()
        if n == 1:
            adjusted[0] = 0  # <s> is never predicted
        d1, d2, d3 = discounts(adjusted[adjusted > 0])
        discount = np.select([adjusted == 1, adjusted == 2, adjusted >= 3], [d1, d2, d3], 0.0)
        if n == 1:
            context, contexts = np.zeros(len(rows), dtype=np.int64), 1
        else:
            context, contexts = index.find(rows[:, :-1]), len(counts.rows[n - 2])
        total = np.bincount(context, weights=adjusted, minlength=contexts)
        gamma = np.bincount(context, weights=discount, minlength=contexts)
        np.divide(gamma, total, out=gamma, where=total > 0)
        kept = keep[n - 1]
        context, adjusted, discount = context[kept], adjusted[kept], discount[kept]
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(total[context] > 0, (adjusted - discount) / total[context], 0.0)
        if n == 1:
            lower = np.full(len(own), 1.0 / (size - 1))  # uniform over the vocabulary minus <s>
        else:
            lower = lower_prob[index.find(rows[kept][:, 1:])]  # p(w | h minus its first word)
        prob = own + gamma[context] * lower
        if n == 1:
            prob[0] = 0.0
        lower_prob = np.full(len(rows), np.nan)
        lower_prob[kept] = prob
        gammas.append(gamma)
        ngrams.append(rows[kept])
        with np.errstate(divide="ignore"):
            log10_probs.append(np.where(prob > 0, np.log10(prob), LOG10_ZERO))
        del adjusted, discount, context, total, own, lower

    listed = RowIndex(ngrams, size) if pruned else index
    log10_backoffs = []
    for n in range(1, order + 1):
        backoff = np.full(len(ngrams[n - 1]), np.nan)
        if n < order:
            children = ngrams[n]
            parent = listed.find(children[:, :-1])
            is_context = np.bincount(parent, minlength=len(backoff)) > 0
            if pruned:
                # 1 - what the listed children take, over 1 - what the same words take one order down.
                taken = np.bincount(parent, weights=10.0 ** log10_probs[n], minlength=len(backoff))
                below = np.bincount(parent, minlength=len(backoff), weights=10.0 ** backed_off_log10(
                    listed, log10_probs, log10_backoffs, children[:, 1:]))
                with np.errstate(divide="ignore", invalid="ignore"):
                    weight = np.maximum(1.0 - taken, 0.0) / np.maximum(1.0 - below, 1e-12)
            else:
                weight = gammas[n][np.flatnonzero(keep[n - 1])]
            with np.errstate(divide="ignore"):
                backoff[is_context] = np.log10(weight[is_context])
        log10_backoffs.append(backoff)
    return NgramModel(counts.vocab, ngrams, log10_probs, log10_backoffs)


def train_kneser_ney(sentences: Iterable[Sequence[str]], order: int = 3, cutoffs: Sequence[int] = ()) -> NgramModel:
    """Kneser-Ney model of `order` from word sequences: `count_ngrams`, then `estimate_kneser_ney`."""
    return estimate_kneser_ney(count_ngrams(sentences, order), cutoffs)


def write_arpa(path: str | Path, model: NgramModel, rows_per_write: int = 100_000) -> None:
    """Write `model` as an ARPA text file (written to a temp name, then renamed), a slice of rows at
    a time so a large model is never held as text in memory."""
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
            for start in range(0, len(rows), rows_per_write):
                part = slice(start, start + rows_per_write)
                texts = [" ".join(r) for r in words[rows[part]].tolist()]
                f.writelines(f"{p:.6f}\t{text}\n" if b != b else f"{p:.6f}\t{text}\t{b:.6f}\n"
                             for p, text, b in zip(probs[part].tolist(), texts, backoffs[part].tolist()))
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


def _arpa_sections(path: Path, stop_after: int | None = None):
    """(order, fields) for every n-gram line of an ARPA file (plain or gzipped), up to order
    `stop_after`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ARPA file not found")
    if is_gzip(path):
        try:
            yield from _arpa_lines(path, gzip.open(path, "rb"), stop_after)
        except GZIP_ERRORS as e:
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
    except GZIP_ERRORS as e:
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


def peak_memory_mib() -> float:
    """This process's peak resident memory so far, in MiB: Linux's VmHWM, which starts afresh at
    exec (ru_maxrss would count the memory of the process that started this one), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.lm", description=__doc__.splitlines()[0])
    parser.add_argument("text", help="text file, one sentence per line (any case; plain or gzipped)")
    parser.add_argument("out", help="ARPA file to write")
    parser.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    vocab = parser.add_mutually_exclusive_group()
    vocab.add_argument("--vocab", metavar="FILE",
                       help="keep only these words (one per line, e.g. librispeech-vocab.txt); others become <unk>")
    vocab.add_argument("--top-words", type=int, metavar="N",
                       help="keep the N most frequent words (one more pass over the text); others become <unk>")
    parser.add_argument("--prune", type=int, nargs="+", default=[], metavar="C",
                        help="count cutoffs from order 2 up: drop n-grams seen at most C times "
                             "(e.g. --prune 0 1: singleton trigrams); default none")
    parser.add_argument("--memory", type=float, metavar="GIB",
                        help="memory the build may use (default: 80%% of what is available now); "
                             "it stops with the numbers when its projection needs more")
    parser.add_argument("--chunk-tokens", type=int, default=CHUNK_TOKENS, metavar="N",
                        help=f"tokens counted at once before merging into the totals (default {CHUNK_TOKENS:,}); "
                             "fewer use less transient memory")
    parser.add_argument("--alphabet", default=TextConfig.alphabet,
                        help="characters kept by normalization (default: the training alphabet)")
    add_check_flag(parser)
    args = parser.parse_args(argv)
    if not 2 <= args.order <= 6:
        parser.error(f"--order must be 2..6 (KenLM needs at least bigrams), got {args.order}")
    if len(args.prune) > args.order - 1 or any(c < 0 for c in args.prune):
        parser.error(f"--prune takes at most {args.order - 1} cutoffs >= 0 (orders 2..{args.order}), "
                     f"got {' '.join(map(str, args.prune))}")
    if args.top_words is not None and args.top_words < 1:
        parser.error(f"--top-words must be >= 1, got {args.top_words}")
    if args.chunk_tokens < 1:
        parser.error(f"--chunk-tokens must be >= 1, got {args.chunk_tokens}")
    if args.memory is not None and args.memory <= 0:
        parser.error(f"--memory must be > 0 GiB, got {args.memory}")
    if args.check:
        return
    started = time.time()
    budget = int(args.memory * 2 ** 30) if args.memory else int(0.8 * available_memory())
    try:
        text = LmText(args.text, args.alphabet, progress=True)
        words = None
        if args.vocab:
            words = read_vocab(args.vocab, args.alphabet)
        elif args.top_words:
            words = top_words(text, args.top_words)
        counts = count_ngrams(text, args.order, words, memory_budget=budget, chunk_tokens=args.chunk_tokens,
                              fraction=lambda: text.fraction,
                              name=str(args.text))
        check_memory(counts.distinct(), budget, f"{args.text} (counted)")
        model = estimate_kneser_ney(counts, args.prune)
    except (FileNotFoundError, ValueError, MemoryError) as e:
        sys.exit(f"error: {e}")
    write_arpa(args.out, model)
    listed = ", ".join(f"{n}-grams {len(rows)}" for n, rows in enumerate(model.ngrams, start=1))
    unknown = f", {int(counts.counts[0][2])} <unk>" if words is not None else ""
    print(f"{args.out}: order {model.order}, {counts.sentences} sentences, {counts.tokens - counts.sentences} words"
          f"{unknown}, vocabulary {len(model.vocab) - 3}; {listed} ({time.time() - started:.1f} s, "
          f"peak memory {peak_memory_mib():.0f} MiB)")


if __name__ == "__main__":
    main(sys.argv[1:])
