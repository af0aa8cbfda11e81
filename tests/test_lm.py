"""Word n-gram LM: Kneser-Ney estimates against a slow reference, ARPA normalization, KenLM agreement."""
import json
from collections import Counter

import numpy as np
import pytest

from asr.lm import (BOS, EOS, UNK, WordLM, arpa_words, discounts, main, read_arpa, read_tuned, train_kneser_ney,
                    tuned_path, write_arpa)
from asr.lm_counts import LmText

WORDS = ["a", "b", "c", "d", "e", "f"]


def random_sentences(seed: int, count: int = 50) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    # A skewed word distribution gives counts-of-counts n1..n4 > 0 at every order.
    return [[str(w) for w in rng.choice(WORDS, size=rng.integers(1, 7), p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])]
            for _ in range(count)]


def reference_kneser_ney(sentences: list[list[str]], order: int):
    """Interpolated modified Kneser-Ney, straight from the definitions with dicts and loops."""
    raw = Counter()
    for words in sentences:
        tokens = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(tokens) - n + 1):
                raw[tuple(tokens[i:i + n])] += 1
    left = {}
    for gram in raw:
        if len(gram) > 1:
            left.setdefault(gram[1:], set()).add(gram[0])

    def adjusted(gram):
        if gram == (BOS,):
            return 0
        if len(gram) == order or gram[0] == BOS:
            return raw[gram]
        return len(left.get(gram, ()))

    by_order = {n: {g: adjusted(g) for g in raw if len(g) == n and adjusted(g) > 0} for n in range(1, order + 1)}
    disc = {n: discounts(np.array(list(by_order[n].values()))) for n in by_order}
    vocab = {g[0] for g in by_order[1]} | {UNK}

    def d(n, a):
        return 0.0 if a == 0 else disc[n][min(a, 3) - 1]

    def prob(context, word):
        n = len(context) + 1
        extensions = {g: a for g, a in by_order[n].items() if g[:-1] == context}
        total = sum(extensions.values())
        lower = 1.0 / len(vocab) if n == 1 else prob(context[1:], word)
        if total == 0:
            return lower
        a = extensions.get((*context, word), 0)
        gamma = sum(d(n, x) for x in extensions.values()) / total
        return max(a - d(n, a), 0.0) / total + gamma * lower

    return prob, sorted(vocab)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_arpa_matches_reference_kneser_ney(tmp_path, order):
    sentences = random_sentences(order)
    write_arpa(tmp_path / "lm.arpa", train_kneser_ney(sentences, order))
    arpa = read_arpa(tmp_path / "lm.arpa")
    prob, vocab = reference_kneser_ney(sentences, order)
    contexts = [()] + [g for n in range(1, order) for g in arpa.ngrams[n - 1] if g[-1] != EOS]
    contexts += [("f", "f", "f")[: order - 1], ("a", "zzz")[: order - 1]]
    assert len(contexts) > 5 * (order - 1)
    for context in contexts:
        for word in vocab:
            expected = np.log10(prob(tuple(context)[len(context) - min(len(context), order - 1):], word))
            assert arpa.log10_prob(context, word) == pytest.approx(expected, abs=2e-6), (context, word)


@pytest.mark.parametrize("order", [2, 3, 5])
def test_every_context_distribution_sums_to_one(tmp_path, order):
    write_arpa(tmp_path / "lm.arpa", train_kneser_ney(random_sentences(10 + order, 80), order))
    arpa = read_arpa(tmp_path / "lm.arpa")
    vocab = [g[0] for g in arpa.ngrams[0] if g[0] != BOS]  # includes </s> and <unk>
    assert EOS in vocab and UNK in vocab
    contexts = [()] + [g for n in range(1, order) for g in arpa.ngrams[n - 1] if g[-1] != EOS]
    contexts.append(("never", "seen"))
    for context in contexts:
        total = sum(10 ** arpa.log10_prob(context, w) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-5), context


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kenlm_scores_sentences_like_the_arpa_backoff_rule(tmp_path, order):
    sentences = random_sentences(20 + order)
    path = tmp_path / "lm.arpa"
    write_arpa(path, train_kneser_ney(sentences, order))
    arpa = read_arpa(path)
    lm = WordLM(path)
    tests = sentences[:15] + [["a", "unknownword", "b"], ["f", "e", "d", "c", "b", "a"], []]
    for words in tests:
        assert lm.model.score(" ".join(words), bos=True, eos=True) == pytest.approx(
            arpa.log10_sentence(words), abs=1e-4)
    # WordLM chains states word by word and converts to natural log.
    state, total = 0, 0.0
    for word in tests[0]:
        lnp, state = lm.score(state, word)
        total += lnp
    total += lm.end_score(state)
    assert total == pytest.approx(arpa.log10_sentence(tests[0]) * np.log(10), abs=1e-3)


def test_discounts_follow_the_counts_of_counts_and_fall_back():
    counts = np.array([1] * 10 + [2] * 4 + [3] * 2 + [4])
    y = 10 / (10 + 2 * 4)
    assert discounts(counts) == pytest.approx((1 - 2 * y * 4 / 10, 2 - 3 * y * 2 / 4, 3 - 4 * y * 1 / 2))
    assert discounts(np.array([1, 1, 2])) == (0.5, 1.0, 1.5)  # no 3s or 4s: lmplz's fallback


def test_cli_normalizes_text_like_transcripts(tmp_path, capsys):
    text = tmp_path / "lm-text.txt"
    text.write_text("THE CAT'S HAT, IS RED!\n\nthe  dog's hat\nTHE CAT IS RED\n")
    out = tmp_path / "out" / "lm.arpa"
    main([str(text), str(out), "--order", "3"])
    assert "order 3, 3 sentences" in capsys.readouterr().out
    words = arpa_words(out)
    assert sorted(words) == ["cat", "cat's", "dog's", "hat", "is", "red", "the"]
    assert next(iter(LmText(text))) == ["the", "cat's", "hat", "is", "red"]
    assert len(read_arpa(out).ngrams) == 3


def test_bad_inputs_fail_with_one_line_messages(tmp_path):
    with pytest.raises(ValueError, match="order must be 2..6"):
        train_kneser_ney([["a"]], order=1)
    with pytest.raises(ValueError, match="no sentences"):
        train_kneser_ney([], order=3)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        LmText(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match="missing.arpa"):
        WordLM(tmp_path / "missing.arpa")
    lm = tmp_path / "lm.arpa"
    tuned_path(lm).write_text("{not json")
    with pytest.raises(ValueError, match="lm.tuned.json: not valid JSON"):
        read_tuned(lm)
    tuned_path(lm).write_text(json.dumps({"alpha": 0.7, "beta": 1.5}))
    assert read_tuned(lm)["alpha"] == 0.7
