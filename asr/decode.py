"""Decoding CTC outputs into token ids: greedy, prefix beam search with word-LM shallow fusion,
and forced alignment of a token sequence to frames.

Prefix beam search (Hannun et al., 2014) keeps, per prefix, the log probability of all alignments
of the frames so far that collapse to it and end in blank (`pb`) or in its last token (`pnb`).
Per frame a prefix may stay (blank, or a repeat of its last token) or grow by a token; a repeated
token grows it only from the blank-ending mass. Growths that produce a prefix already in the beam
are merged into it, so without pruning the search is exact: a prefix's score is the sum over
every alignment that collapses to it (the tests check this against brute-force enumeration).

Shallow fusion ranks prefixes by ln P_ctc + alpha ln P_lm + beta * words (+ unk_score per word the
LM does not know). A word is scored when it completes: at a space token for characters, at the
next `▁` token for BPE, and at the end of the utterance, which adds ln P_lm(</s>). Partial words
that are not the beginning of any LM word pay the unknown-word score right away (as pyctcdecode
does), which drops misspelt beams early; it grows with the word's length past 6 characters, so
gluing several words into one unknown word does not pay.

With an LM, beams that agree on everything the future can score (LM state, open word, last token)
are recombined: only the best of them keeps its slot, the others could not overtake it anymore
(pyctcdecode's `prune_history`). At small beams this gives room to more distinct hypotheses; it
also makes the n-best list less diverse, so `recombine=False` turns it off.

Speed comes from doing each frame as a few numpy operations over all beams of a whole batch of
utterances at once (structure of arrays, prefixes identified by 64-bit hashes), pruning tokens per
frame (top-k and a log-prob floor), and caching LM scores per (LM state, word). Python loops run
only over LM cache misses and over the final n-best.
"""
from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

WORD_START = "▁"
UNK = "<unk>"
_U64 = np.uint64
_MASK64 = (1 << 64) - 1
_WORD_BASE = 1_000_003  # polynomial hash of words: h(s + c) = h(s) * BASE + code(c) + 1 (mod 2^64)
UNKNOWN_WORD_CHARACTERS = 6  # unknown words longer than this cost unk_score * length / this
_EOS_HASH = _UNK_HASH = None  # set below: hashes of "</s>" and "<unk>", which no normalized word equals


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, collapse repeats, drop blanks (id 0).

    log_probs (batch, time, vocab), lengths (batch,) -> one id list per utterance.
    """
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for path, n in zip(best, lengths.tolist()):
        path = path[:n]
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]
        out.append(path[keep & (path != 0)].tolist())
    return out


@dataclass
class DecoderConfig:
    """Prefix beam search settings; log probabilities are natural logs."""

    beam_width: int = 32
    token_top_k: int = 1  # per frame the k most likely tokens (blank included) may always grow beams
    token_min_logp: float = -5.0  # ... and any other token with at least this log-prob
    beam_threshold: float = 10.0  # > 0: drop beams scoring more than this below the best one
    nbest: int = 1  # hypotheses returned per utterance
    lm: str = ""  # word n-gram LM (ARPA or KenLM binary); empty: no LM
    alpha: float = 0.5  # LM weight
    beta: float = 1.0  # word insertion bonus
    unk_score: float = -10.0  # added per word the LM lacks (x length / 6 past 6 characters)
    recombine: bool = True  # with an LM: keep only the best of beams alike for the future (see _step)


class Hypothesis(NamedTuple):
    tokens: list[int]  # token ids, no blanks
    score: float  # ln P_ctc + alpha ln P_lm + beta * words (+ unk scores); ln P_ctc without an LM


@dataclass(frozen=True)
class TokenWords:
    """How tokens build words.

    starts_word: (vocab,) bool, True for tokens that end the current word and begin a new one
        (the space for characters; tokens starting with `▁` for BPE).
    in_word: (vocab,) bool, True for tokens that are part of a word (False for blank and space).
    text: per token, the characters it adds to its word ("" for blank, space and a bare `▁`).
    """

    starts_word: np.ndarray
    in_word: np.ndarray
    text: list[str]


def token_words(vocab: Sequence[str]) -> TokenWords:
    """Word roles of a vocabulary (`vocab[0]` is the blank): BPE when any token starts with `▁`."""
    bpe = any(token.startswith(WORD_START) for token in vocab[1:])
    starts, inside, texts = [False], [False], [""]
    for token in vocab[1:]:
        if bpe:
            starts.append(token.startswith(WORD_START))
            inside.append(True)
            texts.append(token[len(WORD_START):] if starts[-1] else token)
        else:
            starts.append(token == " ")
            inside.append(token != " ")
            texts.append("" if token == " " else token)
    return TokenWords(np.asarray(starts), np.asarray(inside), texts)


def split_words(tokens: Sequence[int], words: TokenWords) -> list[tuple[str, list[int]]]:
    """(word, positions in `tokens` of its tokens) for every non-empty word of a token sequence."""
    out: list[tuple[str, list[int]]] = []
    text, positions = "", []
    for i, token in enumerate(tokens):
        if words.starts_word[token]:
            if text:
                out.append((text, positions))
            text, positions = "", []
        if words.in_word[token]:
            text += words.text[token]
            positions.append(i)
    if text:
        out.append((text, positions))
    return out


def word_hash(text: str) -> int:
    """The 64-bit polynomial hash the decoder gives a (partial) word."""
    h = 0
    for char in text:
        h = (h * _WORD_BASE + ord(char) + 1) & _MASK64
    return h


_EOS_HASH = word_hash("</s>")
_UNK_HASH = word_hash(UNK)


def _mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """64-bit hash of pairs of uint64 arrays (splitmix64's finalizer over a * phi + b)."""
    x = a * _U64(0x9E3779B97F4A7C15) + b
    x ^= x >> _U64(30)
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


def _in_sorted(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Membership of `queries` in the sorted 1-D array `sorted_values` (bool, queries' shape)."""
    if len(sorted_values) == 0:
        return np.zeros(queries.shape, dtype=bool)
    pos = np.minimum(sorted_values.searchsorted(queries), len(sorted_values) - 1)
    return sorted_values[pos] == queries


class _Beams:
    """All live beams of a batch as parallel arrays, grouped by utterance (ascending `utt`).

    utt: utterance index; pb / pnb: ln P of the prefix's alignments ending in blank / its last
    token; last: last token (-1: empty prefix); key / parent: hashes identifying the prefix and the
    prefix minus its last token; node: prefix tree node for backtracking; lm: fusion score so far;
    ctx: LM state id after the completed words; whash / wlen / oov: hash, length and "unknown to
    the LM" flag of the open (unfinished) word. Every utterance keeps at least one beam.
    """

    FIELDS = ("utt", "pb", "pnb", "last", "key", "parent", "node", "lm", "ctx", "whash", "wlen", "oov")

    def __init__(self, **fields: np.ndarray) -> None:
        for name in self.FIELDS:
            setattr(self, name, fields[name])

    def take(self, index: np.ndarray | slice) -> "_Beams":
        return _Beams(**{name: getattr(self, name)[index] for name in self.FIELDS})

    def __len__(self) -> int:
        return len(self.utt)


class BeamSearchDecoder:
    """CTC prefix beam search with optional word n-gram shallow fusion (see the module doc).

    vocab: token texts, `vocab[0]` the blank. lm: a loaded `asr.lm.WordLM`; when None and
    `cfg.lm` names a file, that file is loaded. Decoding state (LM score cache, LM states) lives
    in the object and carries over between calls, which only makes later calls faster.
    """

    def __init__(self, vocab: Sequence[str], cfg: DecoderConfig | None = None, lm=None) -> None:
        self.cfg = cfg = cfg or DecoderConfig()
        if cfg.beam_width < 1 or cfg.nbest < 1:
            raise ValueError(f"beam_width and nbest must be >= 1, got {cfg.beam_width} and {cfg.nbest}")
        if cfg.alpha < 0 or cfg.unk_score > 0:
            # Growths are pruned before LM scoring on the premise that the LM cannot add more than beta.
            raise ValueError(f"alpha must be >= 0 and unk_score <= 0, got {cfg.alpha} and {cfg.unk_score}")
        self.vocab = list(vocab)
        self.words = token_words(self.vocab)
        if lm is None and cfg.lm:
            from asr.lm import WordLM

            lm = WordLM(cfg.lm)
        self.lm = lm
        texts = self.words.text
        self._tok_len = np.array([len(s) for s in texts], dtype=np.int64)
        self._tok_hash = np.array([word_hash(s) for s in texts], dtype=_U64)
        self._tok_mult = np.array([pow(_WORD_BASE, len(s), 1 << 64) for s in texts], dtype=_U64)
        # Hashes of the LM's words and of all their beginnings (ARPA files list their words;
        # arpa_words reads gzipped ones too).
        self._word_hashes = self._prefix_hashes = np.zeros(0, dtype=_U64)
        self._word_of_hash: dict[int, str] = {}
        if lm is not None and str(lm.path).endswith((".arpa", ".arpa.gz")):
            from asr.lm import arpa_words

            lm_words = [w.lower() for w in arpa_words(lm.path)] if lm.upper_case else arpa_words(lm.path)
            self._word_of_hash = {word_hash(w): w for w in lm_words}
            self._word_hashes = np.array(sorted(self._word_of_hash), dtype=_U64)
            prefixes = {word_hash(w[:i]) for w in lm_words for i in range(1, len(w) + 1)}
            self._prefix_hashes = np.array(sorted(prefixes), dtype=_U64)
        self._cache: dict[int, tuple[float, int, bool]] = {}  # (word hash, LM state) -> scores
        self._grow_nodes(0)

    # -- prefix tree for backtracking: node i is token `_node_token[i]` after node `_node_parent[i]`
    def _grow_nodes(self, needed: int) -> None:
        if needed == 0:
            self._node_parent = np.empty(4096, dtype=np.int64)
            self._node_token = np.empty(4096, dtype=np.int64)
            self._node_count = 0
        elif needed > len(self._node_parent):
            size = max(needed, 2 * len(self._node_parent))
            self._node_parent = np.resize(self._node_parent, size)
            self._node_token = np.resize(self._node_token, size)

    def _add_nodes(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        start = self._node_count
        end = start + len(parents)
        self._grow_nodes(end)
        self._node_parent[start:end] = parents
        self._node_token[start:end] = tokens
        self._node_count = end
        return np.arange(start, end, dtype=np.int64)

    def _backtrack(self, node: int) -> list[int]:
        tokens = []
        while node >= 0:
            tokens.append(int(self._node_token[node]))
            node = int(self._node_parent[node])
        return tokens[::-1]

    def _open_words(self, nodes: np.ndarray) -> list[str]:
        """The characters of the word still open at each prefix node (walked back in lockstep)."""
        columns = []
        current = nodes.copy()
        while (current >= 0).any():
            live = current >= 0
            token = np.where(live, self._node_token[np.maximum(current, 0)], 0)
            columns.append(token)
            ends = self.words.starts_word[token]
            current = np.where(live & ~ends, self._node_parent[np.maximum(current, 0)], -1)
        texts = self.words.text
        rows = np.stack(columns[::-1], axis=1).tolist() if columns else [[] for _ in nodes]
        return ["".join([texts[t] for t in row]) for row in rows]

    # -- LM
    def _word_scores(self, ctx: np.ndarray, whash: np.ndarray, node: np.ndarray, unknown: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ln P_lm(word | state), next state, word unknown to the LM) of each beam's open word.

        Words known to be unknown (flagged while growing, or not among the ARPA's words) all score
        as `<unk>`, so they share cache entries.
        """
        if len(self._word_hashes):
            unknown = unknown | ~_in_sorted(self._word_hashes, whash)
        keys = _mix(np.where(unknown, _U64(_UNK_HASH), whash), ctx.astype(_U64)).tolist()
        cache = self._cache
        values = [cache.get(k) for k in keys]
        missing = [i for i, value in enumerate(values) if value is None]
        if missing:
            unknowns = unknown[missing].tolist()
            if self._word_of_hash:  # a known word's text is in the LM vocabulary: no walk back
                words = [UNK if u else self._word_of_hash[h] for u, h in zip(unknowns, whash[missing].tolist())]
            else:
                words = [UNK if u else w for u, w in zip(unknowns, self._open_words(node[missing]))]
            for i, word, state, is_unknown in zip(missing, words, ctx[missing].tolist(), unknowns):
                value = cache.get(keys[i])  # the same word may be missing twice in one call
                if value is None:
                    lnp, after = self.lm.score(state, word)
                    value = cache[keys[i]] = (lnp, after, is_unknown or word not in self.lm)
                values[i] = value
        lnp, state, oov = zip(*values)
        return np.array(lnp), np.array(state, dtype=np.int64), np.array(oov, dtype=bool)

    def _end_scores(self, ctx: np.ndarray) -> np.ndarray:
        """ln P_lm(</s> | state) per beam."""
        keys = _mix(np.full(len(ctx), _EOS_HASH, dtype=_U64), ctx.astype(_U64)).tolist()
        cache = self._cache
        out = np.empty(len(keys))
        for i, key in enumerate(keys):
            value = cache.get(key)
            if value is None:
                value = cache[key] = (self.lm.end_score(int(ctx[i])), int(ctx[i]), False)
            out[i] = value[0]
        return out

    def _complete(self, beams: _Beams, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fusion score added, next LM state) when the open words of beams `index` complete."""
        lnp, state, oov = self._word_scores(beams.ctx[index], beams.whash[index], beams.node[index],
                                            beams.oov[index])
        cfg = self.cfg
        unknown = oov & ~beams.oov[index]  # unknown words seen as such already paid while growing
        delta = cfg.alpha * lnp + cfg.beta + np.where(unknown, self._unknown_cost(beams.wlen[index]), 0.0)
        return delta, state

    def _unknown_cost(self, characters: np.ndarray) -> np.ndarray:
        """Score of an unknown word: unk_score, scaled up past 6 characters (as pyctcdecode does)."""
        return self.cfg.unk_score * np.maximum(1.0, characters / UNKNOWN_WORD_CHARACTERS)

    # -- search
    def _token_candidates(self, log_probs: np.ndarray, lengths: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per (frame, utterance) the non-blank tokens allowed to grow beams.

        log_probs (time, batch, vocab) -> tokens (time, batch, K) with -1 padding, their log-probs
        (time, batch, K) with -inf padding, and the count per (time, batch).
        """
        cfg = self.cfg
        frames, batch, vocab = log_probs.shape
        allowed = log_probs >= cfg.token_min_logp
        k = min(cfg.token_top_k, vocab)
        if k == 1:
            best = log_probs.argmax(-1)
            allowed |= np.arange(vocab) == best[..., None]
        elif k > 1:
            kth = np.partition(log_probs, vocab - k, axis=-1)[..., vocab - k]
            allowed |= log_probs >= kth[..., None]
        allowed[..., 0] = False
        allowed &= (np.arange(frames)[:, None] < lengths[None, :])[..., None]
        counts = allowed.sum(-1)
        width = max(1, int(counts.max(initial=0)))
        t, b, v = np.nonzero(allowed)
        flat = t * batch + b
        starts = np.cumsum(counts.ravel()) - counts.ravel()
        rank = np.arange(len(flat)) - starts[flat]
        tokens = np.full((frames, batch, width), -1, dtype=np.int64)
        token_lp = np.full((frames, batch, width), -np.inf, dtype=np.float64)
        tokens[t, b, rank] = v
        token_lp[t, b, rank] = log_probs[t, b, v]
        return tokens, token_lp, counts

    def decode(self, log_probs: np.ndarray | torch.Tensor) -> list[Hypothesis]:
        """n-best hypotheses (best first) of one utterance's log-probs `(time, vocab)`."""
        return self.decode_batch([log_probs])[0]

    def decode_batch(self, log_probs: Sequence[np.ndarray | torch.Tensor]) -> list[list[Hypothesis]]:
        """n-best hypotheses per utterance; each item is `(time_i, vocab)` log-probs.

        The utterances are searched together (one set of array operations per frame for all of
        them); each one's result is exactly what decoding it alone gives.
        """
        arrays = [x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
                  for x in log_probs]
        for i, x in enumerate(arrays):
            if x.ndim != 2 or x.shape[1] != len(self.vocab):
                raise ValueError(f"log_probs[{i}] must be (time, {len(self.vocab)}), got {x.shape}")
            if np.isnan(x).any():
                raise ValueError(f"log_probs[{i}] contains NaN")
        if not arrays:
            return []
        # Longest first, so finished utterances are always the last group of beams.
        order = sorted(range(len(arrays)), key=lambda i: -len(arrays[i]))
        lengths = np.array([len(arrays[i]) for i in order], dtype=np.int64)
        batch, frames = len(order), int(lengths[0])
        lp = np.zeros((frames, batch, len(self.vocab)), dtype=np.float32)
        for j, i in enumerate(order):
            lp[: lengths[j], j] = arrays[i]
        tokens, token_lp, counts = self._token_candidates(lp, lengths)
        self._grow_nodes(0)

        roots = _mix(np.arange(batch, dtype=_U64), np.full(batch, 0x5EED, dtype=_U64))
        beams = _Beams(utt=np.arange(batch), pb=np.zeros(batch), pnb=np.full(batch, -np.inf),
                       last=np.full(batch, -1), key=roots, parent=~roots, node=np.full(batch, -1),
                       lm=np.zeros(batch), ctx=np.zeros(batch, dtype=np.int64), whash=np.zeros(batch, dtype=_U64),
                       wlen=np.zeros(batch, dtype=np.int64), oov=np.zeros(batch, dtype=bool))
        results: list[list[Hypothesis]] = [[] for _ in range(batch)]
        active = batch
        for t in range(frames + 1):
            still = int(np.count_nonzero(lengths > t))  # utterances 0..still-1 go on past frame t
            if still < active:
                cut = int(np.searchsorted(beams.utt, still))
                self._finish(beams.take(slice(cut, None)), results)
                beams = beams.take(slice(0, cut))
                active = still
            if active == 0:
                break
            beams = self._step(beams, lp[t], tokens[t], token_lp[t], int(counts[t].max()))
        out: list[list[Hypothesis]] = [[] for _ in order]
        for j, i in enumerate(order):
            out[i] = results[j]
        return out

    def _step(self, beams: _Beams, x: np.ndarray, tokens: np.ndarray, token_lp: np.ndarray,
              width: int) -> _Beams:
        """Advance every beam by one frame; x (batch, vocab) are the frame's log-probs."""
        cfg = self.cfg
        utt = beams.utt
        total = np.logaddexp(beams.pb, beams.pnb)
        stay_pb = total + x[utt, 0]
        stay_pnb = np.where(beams.last >= 0, beams.pnb + x[utt, np.maximum(beams.last, 0)], -np.inf)
        if width == 0:  # only blank survives token pruning: no beam can grow
            beams.pb, beams.pnb = stay_pb, stay_pnb
            return beams

        tok = tokens[utt, :width]  # (beams, width)
        grow = np.where(tok == beams.last[:, None], beams.pb[:, None], total[:, None]) + token_lp[utt, :width]

        # A prefix grown into one already in the beam adds its mass to that one: find the beams
        # whose parent prefix is in the beam and whose last token the parent may grow by.
        sorter = np.argsort(beams.key)
        sorted_keys = beams.key[sorter]
        pos = np.minimum(sorted_keys.searchsorted(beams.parent), len(beams) - 1)
        child = np.flatnonzero(sorted_keys[pos] == beams.parent)
        if len(child):
            parent = sorter[pos[child]]
            same = tok[parent] == beams.last[child, None]
            found = same.any(1)
            child, parent, col = child[found], parent[found], same[found].argmax(1)
            stay_pnb[child] = np.logaddexp(stay_pnb[child], grow[parent, col])
            grow[parent, col] = -np.inf

        stay_score = np.logaddexp(stay_pb, stay_pnb) + beams.lm
        # Growths that cannot enter the beam, even with the best LM outcome, are dropped before
        # any LM work: below the worst of `beam_width` stays, or the threshold below the best.
        counts = np.bincount(utt, minlength=int(utt[-1]) + 1)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        floor = np.where(counts >= cfg.beam_width, np.minimum.reduceat(stay_score, starts), -np.inf)
        if cfg.beam_threshold > 0:
            floor = np.maximum(floor, np.maximum.reduceat(stay_score, starts) - cfg.beam_threshold)
        bonus = max(cfg.beta, 0.0) if self.lm is not None else 0.0
        src, col = np.nonzero(grow + (beams.lm + bonus)[:, None] > floor[utt, None])
        e_tok = tok[src, col]
        e_p = grow[src, col]
        e_lm = beams.lm[src]

        e_ctx, e_whash, e_wlen, e_oov = beams.ctx[src], beams.whash[src], beams.wlen[src], beams.oov[src]
        if self.lm is not None and len(src):
            starts_word = self.words.starts_word[e_tok]
            completes = starts_word & (e_wlen > 0)  # the beam's open word ends here
            new_whash = np.where(starts_word, self._tok_hash[e_tok],
                                 e_whash * self._tok_mult[e_tok] + self._tok_hash[e_tok])
            new_wlen = np.where(starts_word, self._tok_len[e_tok], e_wlen + self._tok_len[e_tok])
            new_oov = e_oov & ~starts_word  # a new word starts known
            if len(self._prefix_hashes):
                was_unknown = new_oov
                new_oov = was_unknown.copy()
                check = (new_wlen > 0) & ~was_unknown
                new_oov[check] = ~_in_sorted(self._prefix_hashes, new_whash[check])
                grown_by = np.where(starts_word, 0, self._tok_len[e_tok])
                e_lm = e_lm + np.where(new_oov, self._unknown_cost(new_wlen), 0.0) \
                    - np.where(was_unknown, self._unknown_cost(new_wlen - grown_by), 0.0)
            if completes.any():
                closing = np.unique(src[completes])
                delta, state = self._complete(beams, closing)
                at = closing.searchsorted(src[completes])
                e_lm = e_lm.copy()
                e_ctx = e_ctx.copy()
                e_lm[completes] += delta[at]
                e_ctx[completes] = state[at]
            e_whash, e_wlen, e_oov = new_whash, new_wlen, new_oov

        # Keep the best `beam_width` candidates per utterance.
        n = len(beams)
        score = np.concatenate([stay_score, e_p + e_lm])
        cand_utt = np.concatenate([utt, utt[src]])
        order = np.argsort(-score)
        order = order[np.argsort(cand_utt[order], kind="stable")]  # by utterance, then best first
        if self.lm is not None and cfg.recombine and len(order) > 1:
            # Hypothesis recombination (pyctcdecode's prune_history): prefixes that end in the same LM
            # state, open word and last token get the same scores from every future frame, so the
            # lower one can no longer overtake the better one; its beam slot goes to another prefix.
            # (Not exact for CTC: the blank/non-blank split of a prefix's mass still differs.)
            future = _mix(_mix(np.concatenate([beams.ctx, e_ctx]).astype(_U64),
                               np.concatenate([beams.whash, e_whash])),
                          _mix(np.concatenate([beams.last, e_tok]).astype(_U64), cand_utt.astype(_U64)))
            _, best_of_each = np.unique(future[order], return_index=True)
            order = order[np.sort(best_of_each)]
        sorted_utt = cand_utt[order]
        first = sorted_utt.searchsorted(sorted_utt)
        keep = (np.arange(len(order)) - first < cfg.beam_width) & (score[order] > -np.inf)
        if cfg.beam_threshold > 0:
            keep &= score[order] >= score[order[first]] - cfg.beam_threshold
        chosen = order[keep]
        grown = chosen >= n
        e_index = chosen[grown] - n
        nodes = np.concatenate([beams.node, np.empty(len(src), dtype=np.int64)])
        nodes[n + e_index] = self._add_nodes(beams.node[src[e_index]], e_tok[e_index])
        keys = np.concatenate([beams.key, np.zeros(len(src), dtype=_U64)])
        keys[n + e_index] = _mix(beams.key[src[e_index]], e_tok[e_index].astype(_U64))

        def pick(stay: np.ndarray, grow: np.ndarray) -> np.ndarray:
            return np.concatenate([stay, grow])[chosen]

        return _Beams(utt=cand_utt[chosen], pb=pick(stay_pb, np.full(len(src), -np.inf)),
                      pnb=pick(stay_pnb, e_p), last=pick(beams.last, e_tok), key=keys[chosen],
                      parent=pick(beams.parent, beams.key[src]), node=nodes[chosen], lm=pick(beams.lm, e_lm),
                      ctx=pick(beams.ctx, e_ctx), whash=pick(beams.whash, e_whash),
                      wlen=pick(beams.wlen, e_wlen), oov=pick(beams.oov, e_oov))

    def _finish(self, beams: _Beams, results: list[list[Hypothesis]]) -> None:
        """Score the beams of finished utterances (open word, </s>) and store their n-best."""
        lm = beams.lm.copy()
        if self.lm is not None and len(beams):
            ctx = beams.ctx.copy()
            open_word = np.flatnonzero(beams.wlen > 0)
            if len(open_word):
                delta, state = self._complete(beams, open_word)
                lm[open_word] += delta
                ctx[open_word] = state
            lm += self.cfg.alpha * self._end_scores(ctx)
        score = np.logaddexp(beams.pb, beams.pnb) + lm
        for u in np.unique(beams.utt):
            mine = np.flatnonzero(beams.utt == u)
            best = mine[np.argsort(-score[mine], kind="stable")[: self.cfg.nbest]]
            results[u] = [Hypothesis(self._backtrack(int(beams.node[i])), float(score[i])) for i in best]


def beam_search(log_probs: torch.Tensor, lengths: torch.Tensor, decoder: BeamSearchDecoder) -> list[list[int]]:
    """Best token ids per utterance of a padded batch, like `greedy`.

    log_probs (batch, time, vocab), lengths (batch,).
    """
    x = log_probs.detach().float().cpu().numpy()
    results = decoder.decode_batch([x[i, :n] for i, n in enumerate(lengths.tolist())])
    return [r[0].tokens if r else [] for r in results]


# -- decoding many utterances in worker processes (forked: they share the LM and the log-probs)
_POOL_DECODER: BeamSearchDecoder | None = None
_POOL_LOG_PROBS: Sequence[np.ndarray] = ()


def _decode_chunk(indices: list[int]) -> tuple[list[int], list[list[int]]]:
    results = _POOL_DECODER.decode_batch([_POOL_LOG_PROBS[i] for i in indices])
    return indices, [r[0].tokens if r else [] for r in results]


def decode_dataset(log_probs: Sequence[np.ndarray], decoder: BeamSearchDecoder, workers: int = 2,
                   chunk_size: int = 64, progress: bool = True, desc: str = "beam search") -> list[list[int]]:
    """Best token ids of every utterance (each `(time_i, vocab)`), in input order.

    Utterances of similar length are searched together in chunks of up to `chunk_size`; chunks go
    to `workers` forked processes (one process when workers <= 1 or fork is unavailable), which
    share the log-probs and the loaded LM with this one.
    """
    global _POOL_DECODER, _POOL_LOG_PROBS
    by_length = sorted(range(len(log_probs)), key=lambda i: len(log_probs[i]))
    if workers > 1:  # a few chunks per worker keeps them all busy until the end
        chunk_size = max(8, min(chunk_size, -(-len(log_probs) // (3 * workers))))
    chunks = [by_length[i:i + chunk_size] for i in range(0, len(by_length), chunk_size)]
    out: list[list[int]] = [[] for _ in log_probs]
    bar = tqdm(total=len(log_probs), desc=desc, unit="utt", disable=not progress, leave=False)
    _POOL_DECODER, _POOL_LOG_PROBS = decoder, log_probs
    try:
        if workers > 1 and len(chunks) > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(min(workers, len(chunks))) as pool:
                for indices, tokens in pool.imap_unordered(_decode_chunk, chunks):
                    for i, ids in zip(indices, tokens):
                        out[i] = ids
                    bar.update(len(indices))
        else:
            for chunk in chunks:
                indices, tokens = _decode_chunk(chunk)
                for i, ids in zip(indices, tokens):
                    out[i] = ids
                bar.update(len(indices))
    finally:
        _POOL_DECODER, _POOL_LOG_PROBS = None, ()
        bar.close()
    return out


def default_workers() -> int:
    """Worker processes for dataset decoding: 2, or 1 on a single-core machine."""
    return max(1, min(2, os.cpu_count() or 1))


def forced_align(log_probs: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """Most likely CTC alignment (Viterbi) of `tokens` to `log_probs` `(time, vocab)`.

    Returns (time,) int: for each frame the position in `tokens` it emits, or -1 for blank.
    Raises ValueError when the frames are too few for the tokens (repeats need a blank between).
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    frames = len(log_probs)
    labels = np.zeros(2 * len(tokens) + 1, dtype=np.int64)  # blank, t0, blank, t1, ..., blank
    labels[1::2] = tokens
    states = len(labels)
    # A state may come from itself, the previous state, or (non-blank, not a repeat) two back.
    skip = np.zeros(states, dtype=bool)
    skip[3::2] = np.asarray(tokens[1:]) != np.asarray(tokens[:-1]) if len(tokens) > 1 else False
    if frames == 0:
        if tokens:
            raise ValueError(f"cannot align {len(tokens)} tokens to 0 frames")
        return np.zeros(0, dtype=np.int64)
    # score is a view of `padded` past two -inf slots, so "the previous state" and "two back" are
    # shifted views of it rather than arrays built per frame (10 minutes of audio are 60,000 frames).
    padded = np.full(states + 2, -np.inf)
    score = padded[2:]
    no_skip = np.where(skip, 0.0, -np.inf)
    score[0] = log_probs[0, 0]
    if states > 1:
        score[1] = log_probs[0, labels[1]]
    back = np.zeros((frames, states), dtype=np.int8)  # 0 stay, 1 from previous, 2 from two back
    for t in range(1, frames):
        prev1, prev2 = padded[1:-1], padded[:-2] + no_skip
        from1 = prev1 > score  # ties stay, then come from the previous state
        best = np.where(from1, prev1, score)
        from2 = prev2 > best
        back[t] = from1
        back[t, from2] = 2
        score[:] = np.where(from2, prev2, best) + log_probs[t, labels]
    final = states - 1 if states == 1 or score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[final]):
        raise ValueError(f"cannot align {len(tokens)} tokens to {frames} frames")
    path = np.empty(frames, dtype=np.int64)
    state = final
    for t in range(frames - 1, -1, -1):
        path[t] = state
        # int(): `state - int8` is an int8 under NumPy 2, which overflows past state 127 (64 tokens).
        state -= int(back[t, state])
    return np.where(path % 2 == 1, path // 2, -1)


def check_decoding(lm: str | os.PathLike | None, beam: int | None, alpha: float | None, beta: float | None,
                   prefix: str = "") -> None:
    """ValueError (one line naming the setting, `prefix` + its name) for settings no decoder takes."""
    if beam is not None and (isinstance(beam, bool) or not isinstance(beam, int) or beam < 0):
        raise ValueError(f"{prefix}beam must be an integer >= 0 (0: greedy), got {beam}")
    if alpha is not None and not 0 <= alpha < math.inf:
        raise ValueError(f"{prefix}alpha must be a finite number >= 0, got {alpha}")
    if beta is not None and not math.isfinite(beta):
        raise ValueError(f"{prefix}beta must be a finite number, got {beta}")
    if lm is None and (alpha is not None or beta is not None):
        # alpha weighs the LM and beta is its word bonus: without an LM they would be silently ignored.
        raise ValueError(f"{prefix}alpha and {prefix}beta weigh the word LM: give {prefix}lm too")
