"""CTC decoding: prefix beam search against brute force, greedy agreement, LM fusion, alignment."""
import itertools

import numpy as np
import pytest
import torch

from asr.decode import (BeamSearchDecoder, DecoderConfig, beam_search, decode_dataset, forced_align, greedy,
                        split_words, token_words)
from asr.lm import WordLM, train_kneser_ney, write_arpa

CHARS = ["<blank>", *"abcdefghijklmnopqrstuvwxyz' "]
EXHAUSTIVE = dict(token_top_k=1000, token_min_logp=-np.inf, beam_threshold=0.0, recombine=False)


def normalized(logits: np.ndarray) -> np.ndarray:
    """Log-softmax over the last axis, rounded through float32 as model outputs are."""
    return (logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)).astype(np.float32).astype(np.float64)


def collapse(path) -> tuple[int, ...]:
    out, previous = [], None
    for token in path:
        if token != previous and token != 0:
            out.append(token)
        previous = token
    return tuple(out)


def brute_force_prefixes(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """ln P(labeling) for every labeling, summing every alignment (vocab^time paths)."""
    frames, vocab = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(vocab), repeat=frames):
        score = float(sum(log_probs[t, c] for t, c in enumerate(path)))
        key = collapse(path)
        totals[key] = np.logaddexp(totals.get(key, -np.inf), score)
    return totals


def peaked(labels: list[int], vocab: int, rng: np.random.Generator, margin: float = 6.0) -> np.ndarray:
    """Log-probs `(len(labels), vocab)` whose argmax per frame is the given label."""
    logits = rng.normal(0, 1, (len(labels), vocab))
    logits[np.arange(len(labels)), labels] += margin
    return normalized(logits)


def frames_for(text: str, vocab: list[str]) -> list[int]:
    """A frame labelling that spells `text`: each character twice, blanks between."""
    ids = {t: i for i, t in enumerate(vocab)}
    labels = [0]
    for char in text:
        labels += [ids[char], ids[char], 0]
    return labels


@pytest.mark.parametrize("seed", range(8))
def test_prefix_beam_search_equals_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    frames, vocab = int(rng.integers(3, 6)), int(rng.integers(3, 5))
    log_probs = normalized(rng.normal(0, 1.5, (frames, vocab)))
    exact = brute_force_prefixes(log_probs)
    decoder = BeamSearchDecoder(CHARS[:vocab], DecoderConfig(beam_width=500, nbest=500, **EXHAUSTIVE))
    hyps = decoder.decode(log_probs)
    assert {tuple(h.tokens) for h in hyps} == set(exact)
    for h in hyps:
        assert h.score == pytest.approx(exact[tuple(h.tokens)], abs=1e-9)
    best = max(exact, key=exact.get)
    assert tuple(hyps[0].tokens) == best
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_beam_width_one_equals_greedy_on_peaked_inputs():
    rng = np.random.default_rng(0)
    utterances = [peaked(list(rng.integers(0, len(CHARS), int(rng.integers(1, 60)))), len(CHARS), rng)
                  for _ in range(20)]
    decoder = BeamSearchDecoder(CHARS, DecoderConfig(beam_width=1))
    for log_probs, hyps in zip(utterances, decoder.decode_batch(utterances)):
        expected = greedy(torch.from_numpy(log_probs)[None], torch.tensor([len(log_probs)]))[0]
        assert hyps[0].tokens == expected


def test_batched_pooled_and_single_decoding_agree():
    rng = np.random.default_rng(1)
    lengths = [0, 1, 7, 30, 30, 55, 12, 3]
    utterances = [normalized(rng.normal(0, 2, (n, len(CHARS)))) for n in lengths]
    decoder = BeamSearchDecoder(CHARS, DecoderConfig(beam_width=6, nbest=3))
    batched = decoder.decode_batch(utterances)
    for log_probs, hyps in zip(utterances, batched):
        alone = decoder.decode(log_probs)
        assert [h.tokens for h in alone] == [h.tokens for h in hyps]
        assert [h.score for h in alone] == pytest.approx([h.score for h in hyps])
    assert batched[0] == [([], 0.0)]  # no frames: the empty hypothesis with probability 1
    pooled = decode_dataset(utterances, decoder, workers=2, chunk_size=3, progress=False)
    assert pooled == [hyps[0].tokens for hyps in batched]
    padded = torch.zeros(len(lengths), max(lengths), len(CHARS))
    for i, x in enumerate(utterances):
        padded[i, : len(x)] = torch.from_numpy(x)
    assert beam_search(padded, torch.tensor(lengths), decoder) == pooled


@pytest.fixture(scope="module")
def cat_lm(tmp_path_factory):
    """A trigram LM that strongly prefers 'the cat sat' over 'the bat sat'."""
    sentences = [["the", "cat", "sat"]] * 30 + [["a", "cat", "ran"]] * 10 + [["the", "bat", "flew"]] * 3
    sentences += [["a", "dog", "sat"]] * 5
    path = tmp_path_factory.mktemp("lm") / "cat.arpa"
    write_arpa(path, train_kneser_ney(sentences, order=3))
    return WordLM(path)


def ambiguous(vocab: list[str], pieces: list[dict[str, float]]) -> np.ndarray:
    """Log-probs with one frame per piece: {token: probability}; blank frames in between."""
    frames = []
    for piece in pieces:
        for probs in (piece, {vocab[0]: 1.0}):
            row = np.full(len(vocab), 1e-6)
            for token, p in probs.items():
                row[vocab.index(token)] = p
            frames.append(np.log(row / row.sum()))
    return np.array(frames)


def test_lm_fusion_flips_an_ambiguous_character_to_the_likely_word(cat_lm):
    pieces = [{c: 1.0} for c in "the "] + [{"b": 0.6, "c": 0.4}] + [{c: 1.0} for c in "at sat"]
    log_probs = ambiguous(CHARS, pieces)
    words = token_words(CHARS)
    plain = BeamSearchDecoder(CHARS, DecoderConfig(beam_width=16)).decode(log_probs)[0]
    fused = BeamSearchDecoder(CHARS, DecoderConfig(beam_width=16, lm="x", alpha=1.0, beta=0.5),
                              lm=cat_lm).decode(log_probs)[0]
    assert [w for w, _ in split_words(plain.tokens, words)] == ["the", "bat", "sat"]
    assert [w for w, _ in split_words(fused.tokens, words)] == ["the", "cat", "sat"]


def test_lm_fusion_with_bpe_tokens_sees_word_boundaries(cat_lm):
    vocab = ["<blank>", "<unk>", "▁the", "▁c", "▁b", "at", "▁sat", "▁", "s"]
    pieces = [{"▁the": 1.0}, {"▁b": 0.6, "▁c": 0.4}, {"at": 1.0}, {"▁sat": 1.0}]
    log_probs = ambiguous(vocab, pieces)
    words = token_words(vocab)
    plain = BeamSearchDecoder(vocab, DecoderConfig(beam_width=8)).decode(log_probs)[0]
    fused = BeamSearchDecoder(vocab, DecoderConfig(beam_width=8, lm="x", alpha=1.0, beta=0.5),
                              lm=cat_lm).decode(log_probs)[0]
    assert [w for w, _ in split_words(plain.tokens, words)] == ["the", "bat", "sat"]
    assert [w for w, _ in split_words(fused.tokens, words)] == ["the", "cat", "sat"]
    # '▁' alone opens a word that the next piece continues.
    assert split_words([7, 8, 5, 2], words) == [("sat", [0, 1, 2]), ("the", [3])]


def fused_score(text: str, ctc: float, lm: WordLM, alpha: float, beta: float, unk: float) -> float:
    """ln P_ctc + alpha ln P_lm(<s> words </s>) + beta * words + the unknown-word scores."""
    words = text.split()
    unknown = sum(unk * max(1.0, len(w) / 6) for w in words if w not in lm)
    lm_score = lm.model.score(" ".join(words), bos=True, eos=True) * np.log(10)
    return ctc + alpha * lm_score + beta * len(words) + unknown


@pytest.mark.parametrize("suffix", [".arpa", ".lm"])
@pytest.mark.parametrize("seed", range(3))
def test_every_hypothesis_scores_exactly_ctc_plus_lm_terms(tmp_path, suffix, seed):
    # A file not named .arpa (as a KenLM binary would be) gives no word list: unknown words are then
    # found only when they complete and words are read back from the prefix tree; same scores.
    path = tmp_path / f"ab{suffix}"
    write_arpa(path, train_kneser_ney([["a", "ab"], ["ab", "b"], ["a"], ["b", "a", "a"]] * 3, order=2))
    lm = WordLM(path)
    vocab = ["<blank>", "a", "b", " "]
    rng = np.random.default_rng(seed)
    log_probs = normalized(rng.normal(0, 1.5, (6, len(vocab))))
    exact = brute_force_prefixes(log_probs)
    alpha, beta, unk = 0.7, 1.3, -2.5
    decoder = BeamSearchDecoder(vocab, DecoderConfig(beam_width=2000, nbest=2000, lm="x", alpha=alpha, beta=beta,
                                                     unk_score=unk, **EXHAUSTIVE), lm=lm)
    hyps = decoder.decode(log_probs)
    assert {tuple(h.tokens) for h in hyps} == set(exact)
    for h in hyps:
        text = "".join(vocab[t] for t in h.tokens)
        assert h.score == pytest.approx(fused_score(text, exact[tuple(h.tokens)], lm, alpha, beta, unk), abs=1e-4)


@pytest.mark.parametrize("text", ["the cat sat", "a dog ran", "the zebra sat"])
def test_fused_score_of_a_longer_utterance(cat_lm, text):
    alpha, beta, unk = 0.8, 1.7, -4.0
    vocab = ["<blank>", *"abcdeghnorstz "]  # few tokens, so a wide beam keeps every alignment that matters
    log_probs = peaked(frames_for(text, vocab), len(vocab), np.random.default_rng(3), margin=6.0)
    decoder = BeamSearchDecoder(vocab, DecoderConfig(beam_width=2048, lm="x", alpha=alpha, beta=beta, unk_score=unk,
                                                     **EXHAUSTIVE), lm=cat_lm)
    best = decoder.decode(log_probs)[0]
    assert "".join(vocab[t] for t in best.tokens) == text
    ctc = -torch.nn.functional.ctc_loss(torch.from_numpy(log_probs)[:, None], torch.tensor([best.tokens]),
                                        torch.tensor([len(log_probs)]), torch.tensor([len(best.tokens)]),
                                        reduction="sum").item()
    assert best.score == pytest.approx(fused_score(text, ctc, cat_lm, alpha, beta, unk), abs=1e-4)


def test_split_words_for_characters():
    words = token_words(CHARS)
    ids = [CHARS.index(c) for c in "hi  there "]
    assert split_words(ids, words) == [("hi", [0, 1]), ("there", [4, 5, 6, 7, 8])]
    assert not words.starts_word[0] and words.starts_word[CHARS.index(" ")]


@pytest.mark.parametrize("tokens", [[1, 2], [1, 1], [2], [1, 2, 1]])
def test_forced_alignment_is_the_best_path(tokens):
    rng = np.random.default_rng(len(tokens))
    log_probs = normalized(rng.normal(0, 1.5, (6, 3)))
    alignment = forced_align(log_probs, tokens)
    path = [0 if a < 0 else tokens[a] for a in alignment]
    assert collapse(path) == tuple(tokens)
    # Positions advance monotonically and each token's frames are contiguous.
    visited = [a for a in alignment if a >= 0]
    assert visited == sorted(visited) and sorted(set(visited)) == list(range(len(tokens)))
    best = max((p for p in itertools.product(range(3), repeat=6) if collapse(p) == tuple(tokens)),
               key=lambda p: sum(log_probs[t, c] for t, c in enumerate(p)))
    assert sum(log_probs[t, c] for t, c in enumerate(path)) == pytest.approx(
        sum(log_probs[t, c] for t, c in enumerate(best)))
    with pytest.raises(ValueError, match="cannot align"):
        forced_align(log_probs[:1], [1, 1])


def viterbi_reference(log_probs: np.ndarray, tokens: list[int]) -> float:
    """Score of the best CTC alignment of `tokens`, by the textbook recursion in plain Python."""
    labels = [0]
    for token in tokens:
        labels += [token, 0]
    best = [-np.inf] * len(labels)
    best[0], best[1] = log_probs[0, 0], log_probs[0, labels[1]]
    for t in range(1, len(log_probs)):
        previous = best[:]
        for s, label in enumerate(labels):
            came = [previous[s]] + ([previous[s - 1]] if s >= 1 else [])
            if s >= 2 and label != 0 and label != labels[s - 2]:
                came.append(previous[s - 2])
            best[s] = max(came) + log_probs[t, label]
    return max(best[-1], best[-2])


def assert_valid_alignment(alignment: np.ndarray, tokens: list[int], frames: int) -> None:
    """One entry per frame; positions in order, each token on a contiguous run of frames, all used."""
    assert alignment.shape == (frames,)
    visited = alignment[alignment >= 0]
    assert (np.diff(visited) >= 0).all() and np.array_equal(np.unique(visited), np.arange(len(tokens)))
    for position in range(len(tokens)):
        at = np.flatnonzero(alignment == position)
        assert at[-1] - at[0] + 1 == len(at)  # no blank inside a token's run: it would emit it twice
    path = [0 if a < 0 else tokens[a] for a in alignment]
    assert collapse(path) == tuple(tokens)  # repeats have a blank between them


def test_forced_alignment_of_64_and_more_tokens():
    # The alignment's back-pointers once were int8 and the backtracking state with them: past
    # state 127 (64 tokens) it overflowed.
    tokens = [(i % 27) + 1 for i in range(64)]
    alignment = forced_align(np.log(np.full((400, 29), 1 / 29)), tokens)
    assert_valid_alignment(alignment, tokens, 400)


@pytest.mark.parametrize("seed", range(3))
def test_forced_alignment_of_hundreds_of_tokens_matches_the_reference_viterbi(seed):
    rng = np.random.default_rng(seed)
    tokens = list(rng.integers(1, 4, 150))  # a 3-letter vocabulary: plenty of repeats
    log_probs = normalized(rng.normal(0, 1.5, (400, 4)))
    alignment = forced_align(log_probs, tokens)
    assert_valid_alignment(alignment, tokens, 400)
    path = [0 if a < 0 else tokens[a] for a in alignment]
    assert sum(log_probs[t, c] for t, c in enumerate(path)) == pytest.approx(viterbi_reference(log_probs, tokens))


def test_forced_alignment_of_ten_minutes():
    # 60,000 frames (10 minutes at 10 ms) and 400 tokens: every token planted on a run of frames.
    rng = np.random.default_rng(0)
    tokens = list(rng.integers(1, len(CHARS), 400))
    planted = np.zeros(60_000, dtype=np.int64)
    starts = np.sort(rng.choice(np.arange(0, 60_000 - 40, 100), 400, replace=False))
    for position, start in enumerate(starts):
        planted[start:start + 40] = tokens[position]
    log_probs = peaked(list(planted), len(CHARS), rng, margin=3.0)
    alignment = forced_align(log_probs, tokens)
    assert_valid_alignment(alignment, tokens, 60_000)
    path = np.array([0 if a < 0 else tokens[a] for a in alignment])
    score = log_probs[np.arange(60_000), path].sum()
    assert score >= log_probs[np.arange(60_000), planted].sum() - 1e-6


def test_bad_settings_and_shapes_are_rejected():
    with pytest.raises(ValueError, match="beam_width"):
        BeamSearchDecoder(CHARS, DecoderConfig(beam_width=0))
    with pytest.raises(ValueError, match="alpha"):
        BeamSearchDecoder(CHARS, DecoderConfig(alpha=-1.0))
    with pytest.raises(ValueError, match=r"log_probs\[0\] must be \(time, 29\)"):
        BeamSearchDecoder(CHARS).decode(np.zeros((5, 4)))


def test_grid_search_scores_every_point_and_picks_the_best(cat_lm):
    from asr.lm_tune import best_point, grid_search
    from asr.text import CharTokenizer

    pieces = [{c: 1.0} for c in "the "] + [{"b": 0.6, "c": 0.4}] + [{c: 1.0} for c in "at sat"]
    log_probs = [ambiguous(CHARS, pieces).astype(np.float32)] * 3
    cfg = DecoderConfig(beam_width=8, lm=str(cat_lm.path))
    grid = grid_search(log_probs, ["the cat sat"] * 3, CharTokenizer("".join(CHARS[1:])), cfg,
                       alphas=[0.0, 1.0], betas=[0.0, 0.5], workers=2, progress=False)
    assert [(r["alpha"], r["beta"]) for r in grid] == [(0.0, 0.0), (0.0, 0.5), (1.0, 0.0), (1.0, 0.5)]
    assert [r["wer"] for r in grid] == pytest.approx([1 / 3, 1 / 3, 0.0, 0.0])
    assert best_point(grid)["alpha"] == 1.0 and best_point(grid)["wer"] == 0.0


def test_recombination_frees_beam_slots_for_a_better_hypothesis(tmp_path):
    # An LM where "a" and "b" are alike and "c" much likelier. The first word is a toss-up between "a" and
    # "b"; afterwards "a " and "b " share LM state, open word and last token, so only one of them
    # needs a slot. Without recombination the two take both slots of a width-2 beam, and "_ c"
    # (0.4 acoustically against 0.6 for "_ a") is dropped before its word completes and the LM
    # could lift it; with recombination it survives and wins.
    path = tmp_path / "lm.arpa"
    # (KenLM needs a bigram section; its one bigram leaves the states after a, b and c alike.)
    path.write_text("\\data\\\nngram 1=6\nngram 2=1\n\n\\1-grams:\n-1.0\t</s>\n-99\t<s>\t-0.5\n"
                    "-3.0\t<unk>\n-1.5\ta\n-1.5\tb\n-0.5\tc\n\n\\2-grams:\n-0.5\t<s> c\n\n\\end\\\n")
    lm = WordLM(path)
    vocab = ["<blank>", "a", "b", "c", " "]
    log_probs = ambiguous(vocab, [{"a": 0.5, "b": 0.5}, {" ": 1.0}, {"a": 0.6, "c": 0.4}])
    settings = dict(beam_width=2, lm="x", alpha=1.0, beta=0.0, token_top_k=5, token_min_logp=-np.inf,
                    beam_threshold=0.0)
    best = {}
    for recombine in (False, True):
        hyp = BeamSearchDecoder(vocab, DecoderConfig(recombine=recombine, **settings), lm=lm).decode(log_probs)[0]
        best[recombine] = "".join(vocab[t] for t in hyp.tokens)
    exact = BeamSearchDecoder(vocab, DecoderConfig(**{**settings, "beam_width": 1000}, recombine=False),
                              lm=lm).decode(log_probs)[0]
    assert "".join(vocab[t] for t in exact.tokens).endswith(" c")  # the best by the fused score
    assert best[False].endswith(" a")
    assert best[True].endswith(" c")
