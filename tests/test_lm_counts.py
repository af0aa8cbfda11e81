"""The LM on large text: streamed (and gzipped) input, chunked counting, vocabulary limits, count
cutoffs and the memory refusal, each against a plain reference."""
import gzip
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import kenlm
import numpy as np
import pytest

from asr.lm import (BOS, EOS, UNK, WordLM, estimate_kneser_ney, main, read_arpa, train_kneser_ney, write_arpa)
from asr.lm_counts import (BYTES_PER_NGRAM, LmText, count_ngrams, projected_distinct, read_vocab, top_words,
                           unique_rows)

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["a", "b", "c", "d", "e", "f", "g", "h"]


def random_sentences(seed: int, count: int = 200) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    p = np.array([0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04])
    return [list(rng.choice(WORDS, size=rng.integers(1, 9), p=p)) for _ in range(count)]


def counted(counts) -> Counter:
    """NgramCounts as {word tuple: count} (unigrams with count 0 left out)."""
    table = Counter()
    for rows, numbers in zip(counts.rows, counts.counts):
        for row, number in zip(rows.tolist(), numbers.tolist()):
            if number:
                table[tuple(counts.vocab[i] for i in row)] = number
    return table


def reference_counts(sentences, order: int) -> Counter:
    table = Counter()
    for words in sentences:
        tokens = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(tokens) - n + 1):
                table[tuple(tokens[i:i + n])] += 1
    return table


def arpa_table(path) -> dict:
    return {gram: value for order in read_arpa(path).ngrams for gram, value in order.items()}


def assert_distributions_sum_to_one(path) -> None:
    arpa = read_arpa(path)
    vocab = [g[0] for g in arpa.ngrams[0] if g[0] != BOS]
    contexts = [()] + [g for n in range(1, arpa.order) for g in arpa.ngrams[n - 1] if g[-1] != EOS]
    contexts += [("never", "seen"), ("a", "zzz")]
    for context in contexts:
        assert sum(10 ** arpa.log10_prob(context, w) for w in vocab) == pytest.approx(1.0, abs=1e-5), context


@pytest.mark.parametrize("order", [2, 3, 5])
def test_counting_in_small_chunks_gives_the_plain_counts(order):
    sentences = random_sentences(order)
    expected = reference_counts(sentences, order)
    for chunk_tokens in (7, 100, 1 << 22):
        counts = count_ngrams(sentences, order, chunk_tokens=chunk_tokens)
        assert counted(counts) == expected, chunk_tokens
        assert counts.sentences == len(sentences) and counts.tokens == sum(len(s) + 1 for s in sentences)
        for rows in counts.rows:  # sorted and distinct: what RowIndex's binary search needs
            assert [tuple(r) for r in rows.tolist()] == sorted({tuple(r) for r in rows.tolist()})


def test_unique_rows_packs_ids_where_they_fit_and_lexsorts_otherwise():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 5, size=(500, 4)).astype(np.int32)
    counts = rng.integers(1, 4, size=500)
    packed = unique_rows(rows, counts, vocab_size=5)  # 4 x 3 bits
    lexsorted = unique_rows(rows, counts, vocab_size=1 << 20)  # 4 x 20 bits > 63: np.lexsort
    expected = Counter()
    for row, c in zip(map(tuple, rows.tolist()), counts.tolist()):
        expected[row] += c
    for unique, summed in (packed, lexsorted):
        assert [tuple(r) for r in unique.tolist()] == sorted(expected)
        assert summed.tolist() == [expected[r] for r in sorted(expected)]


def test_a_gzipped_text_gives_the_same_arpa_as_the_plain_one(tmp_path, capsys):
    text = "".join(" ".join(s).upper() + "\n" for s in random_sentences(1, 300))
    (tmp_path / "lm.txt").write_text(text)
    with gzip.open(tmp_path / "lm.txt.gz", "wt") as f:
        f.write(text)
    main([str(tmp_path / "lm.txt"), str(tmp_path / "plain.arpa")])
    main([str(tmp_path / "lm.txt.gz"), str(tmp_path / "gz.arpa")])
    assert (tmp_path / "plain.arpa").read_bytes() == (tmp_path / "gz.arpa").read_bytes()
    assert "300 sentences" in capsys.readouterr().out
    (tmp_path / "broken.txt.gz").write_bytes(gzip.compress(text.encode())[:200])
    with pytest.raises(SystemExit, match=r"broken.txt.gz: corrupt or truncated gzip file"):
        main([str(tmp_path / "broken.txt.gz"), str(tmp_path / "broken.arpa")])
    assert not (tmp_path / "broken.arpa").exists()


def test_a_vocabulary_limit_turns_other_words_into_unk(tmp_path):
    sentences = random_sentences(2, 300)
    keep = top_words(sentences, 4)
    frequencies = Counter(w for s in sentences for w in s)
    assert keep == [w for w, _ in frequencies.most_common(4)]
    limited = estimate_kneser_ney(count_ngrams(sentences, 3, vocab=keep))
    # The same as counting a text where those words were written <unk>.
    mapped = [[w if w in keep else UNK for w in s] for s in sentences]
    write_arpa(tmp_path / "limited.arpa", limited)
    write_arpa(tmp_path / "mapped.arpa", train_kneser_ney(mapped, 3))
    assert arpa_table(tmp_path / "limited.arpa") == arpa_table(tmp_path / "mapped.arpa")
    assert sorted(g[0] for g in read_arpa(tmp_path / "limited.arpa").ngrams[0]) == sorted([BOS, EOS, UNK, *keep])
    assert_distributions_sum_to_one(tmp_path / "limited.arpa")


def test_a_vocabulary_file_lists_its_words_even_unseen_ones(tmp_path, capsys):
    (tmp_path / "vocab.txt").write_text("A\nB\nC\nNEVERSEEN\n\n")
    assert read_vocab(tmp_path / "vocab.txt") == ["a", "b", "c", "neverseen"]
    (tmp_path / "lm.txt").write_text("".join(" ".join(s) + "\n" for s in random_sentences(3, 300)))
    main([str(tmp_path / "lm.txt"), str(tmp_path / "lm.arpa"), "--vocab", str(tmp_path / "vocab.txt")])
    assert "vocabulary 4" in capsys.readouterr().out
    arpa = read_arpa(tmp_path / "lm.arpa")
    assert ("neverseen",) in arpa.ngrams[0] and ("d",) not in arpa.ngrams[0]
    assert arpa.ngrams[0][(UNK,)][0] > arpa.ngrams[0][("neverseen",)][0]  # d..h are <unk> now
    assert_distributions_sum_to_one(tmp_path / "lm.arpa")
    (tmp_path / "empty.txt").write_text("\n!!\n")
    with pytest.raises(SystemExit, match="empty.txt: no words in the vocabulary file"):
        main([str(tmp_path / "lm.txt"), str(tmp_path / "x.arpa"), "--vocab", str(tmp_path / "empty.txt")])


@pytest.mark.parametrize("cutoffs", [[0, 1], [1, 1], [2, 2], [1, 2, 3]])
def test_count_cutoffs_keep_a_normalized_model_kenlm_reads_alike(tmp_path, cutoffs):
    order = len(cutoffs) + 1
    sentences = random_sentences(4, 400)
    counts = count_ngrams(sentences, order)
    full, pruned = estimate_kneser_ney(counts), estimate_kneser_ney(counts, cutoffs)
    write_arpa(tmp_path / "full.arpa", full)
    write_arpa(tmp_path / "pruned.arpa", pruned)
    assert sum(map(len, pruned.ngrams)) < sum(map(len, full.ngrams))
    raw = reference_counts(sentences, order)
    full_table, table = arpa_table(tmp_path / "full.arpa"), arpa_table(tmp_path / "pruned.arpa")
    needed = {g[:-1] for g in table if len(g) > 1} | {g[1:] for g in table if len(g) > 1}
    for gram, (log10p, _) in table.items():
        # Listed: seen more often than its cutoff, or the prefix/suffix of a listed longer n-gram.
        assert len(gram) == 1 or raw[gram] > cutoffs[len(gram) - 2] or gram in needed, gram
        assert log10p == full_table[gram][0]  # the full counts' probability, unchanged
    dropped = [g for g in full_table if g not in table]
    assert dropped and all(raw[g] <= cutoffs[len(g) - 2] for g in dropped)
    assert_distributions_sum_to_one(tmp_path / "pruned.arpa")
    arpa, lm = read_arpa(tmp_path / "pruned.arpa"), WordLM(tmp_path / "pruned.arpa")
    for words in sentences[:20] + [["h", "zzz", "a"]]:
        assert lm.model.score(" ".join(words), bos=True, eos=True) == pytest.approx(arpa.log10_sentence(words),
                                                                                    abs=1e-4)


def test_projection_follows_heaps_law_and_the_budget_refuses_early(tmp_path):
    assert projected_distinct([(0.1, 1000)]) == 10000  # one point: linear, the upper bound
    assert projected_distinct([(0.1, 1000), (0.4, 2000)]) == int(2000 * 2.5 ** 0.5)  # beta 0.5
    sentences = random_sentences(5, 2000)
    needed = count_ngrams(sentences, 3).distinct() * BYTES_PER_NGRAM
    read = iter(range(1, len(sentences) + 1))
    position = {"read": 0}

    def stream():
        for words in sentences:
            position["read"] = next(read)
            yield words

    # Enough for all there is to count, not for the projection to a file 8 times as long.
    with pytest.raises(MemoryError, match=r"lm.txt \(projected from \d+\.\d% of the file\): .* budget"):
        count_ngrams(stream(), 3, memory_budget=needed, chunk_tokens=500, name="lm.txt",
                     fraction=lambda: position["read"] / len(sentences) / 8)
    counts = count_ngrams(sentences, 3, memory_budget=needed, chunk_tokens=500)
    assert counted(counts) == reference_counts(sentences, 3)


def test_the_cli_refuses_with_the_numbers_before_running_out(tmp_path):
    (tmp_path / "lm.txt").write_text("".join(" ".join(s) + "\n" for s in random_sentences(6, 500)))
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "lm.txt"), str(tmp_path / "lm.arpa"), "--memory", "0.00001"])
    message = str(e.value)
    assert "\n" not in message and re.search(r"lm.txt .*: [\d,]+ distinct n-grams need ~[\d.]+ [KMG]iB", message)
    assert "--top-words N or --vocab FILE" in message and not (tmp_path / "lm.arpa").exists()
    for bad, expected in ((["--prune", "1", "1", "1"], "--prune takes at most 2 cutoffs"),
                          (["--top-words", "0"], "--top-words must be >= 1"),
                          (["--order", "1"], "--order must be 2..6")):
        with pytest.raises(SystemExit):
            main([str(tmp_path / "lm.txt"), str(tmp_path / "lm.arpa"), *bad])


def test_a_few_million_words_fit_the_memory_estimate_and_stay_normalized(tmp_path):
    """Two million words of the corpus grammar, counted in 16 chunks: the measured peak memory is
    within the estimate the refusal uses, and kenlm's distributions sum to one."""
    script = ("import numpy as np; from corpora.synth.english import sentences; "
              f"open({str(tmp_path / 'lm.txt')!r}, 'w').write(''.join(s + '\\n' for s in "
              "sentences(230_000, np.random.default_rng(7))))")
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True)
    baseline = subprocess.run([sys.executable, "-c", "import asr.lm as m; print(m.peak_memory_mib())"],
                              cwd=ROOT, check=True, capture_output=True, text=True)
    out = subprocess.run([sys.executable, "-m", "asr.lm", str(tmp_path / "lm.txt"), str(tmp_path / "lm.arpa"),
                          "--prune", "0", "1", "--chunk-tokens", str(1 << 17)],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    words = int(re.search(r"(\d+) words", out).group(1))
    assert words > 2_000_000
    peak = float(re.search(r"peak memory (\d+) MiB", out).group(1))
    counts = count_ngrams(LmText(tmp_path / "lm.txt"), 3)
    assert peak - float(baseline.stdout) < counts.distinct() * BYTES_PER_NGRAM / 2 ** 20
    model = WordLM(tmp_path / "lm.arpa").model
    vocab = [w for w in counts.vocab if w != BOS]
    rng = np.random.default_rng(0)
    random_contexts = [[counts.vocab[i] for i in rng.integers(3, len(counts.vocab), 2)] for _ in range(5)]
    for context in [[], ["the"], ["of", "the"], *random_contexts]:
        state = kenlm.State()
        model.NullContextWrite(state)
        for word in context:
            after = kenlm.State()
            model.BaseScore(state, word, after)
            state = after
        total = sum(10 ** model.BaseScore(state, w, kenlm.State()) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4), context
