"""A prebuilt, gzipped ARPA (OpenSLR resource 11's X.arpa.gz) as the word LM: WordLM loads it as
is or through a decompressed sibling, the decoder's word list reads it, it shares X.tuned.json
with X.arpa, and asr.evaluate --lm gives the same table for the .gz, fetched by corpora.download
from a local resource-11 mirror, as for the plain ARPA."""
import gzip
import hashlib
import os
import shutil
import threading
from http.server import ThreadingHTTPServer

import numpy as np
import pytest

from asr import evaluate
from asr.decode import BeamSearchDecoder, DecoderConfig
from asr.lm import WordLM, arpa_words, decompressed_arpa, read_arpa, train_kneser_ney, tuned_path, write_arpa
from corpora import download as dl
from test_download import Handler
from test_transcribe import tiny_checkpoint

WORDS = ["cat", "dog", "sun", "red", "big", "top"]  # tone_corpus's words


@pytest.fixture
def arpas(tmp_path):
    """(plain, gzipped) copies of one tiny ARPA, in separate folders so that a decompressed
    sibling of the .gz is never the plain one."""
    rng = np.random.default_rng(0)
    plain = tmp_path / "plain" / "words.arpa"
    write_arpa(plain, train_kneser_ney([list(rng.choice(WORDS, 3)) for _ in range(50)], order=3))
    packed = tmp_path / "gz" / "words.arpa.gz"
    packed.parent.mkdir()
    with open(plain, "rb") as f, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(f, out)
    return plain, packed


def sentence_score(lm: WordLM, words: list[str]) -> float:
    state, total = 0, 0.0
    for word in words:
        lnp, state = lm.score(state, word)
        total += lnp
    return total + lm.end_score(state)


SENTENCES = [["cat", "dog", "sun"], ["top", "unknownword", "red"], []]


def test_wordlm_reads_a_gzipped_arpa_like_the_plain_one(arpas):
    plain, packed = arpas
    a, b = WordLM(plain), WordLM(packed)
    assert b.path == packed and b.order == a.order == 3
    assert [sentence_score(b, s) for s in SENTENCES] == pytest.approx([sentence_score(a, s) for s in SENTENCES])
    assert ("cat" in b) and ("unknownword" not in b)
    # The word list the decoder takes from an ARPA, and the full read, see through the gzip too.
    assert arpa_words(packed) == arpa_words(plain) and sorted(arpa_words(packed)) == sorted(WORDS)
    assert read_arpa(packed) == read_arpa(plain)
    chars = ["<blank>", *"abcdefghijklmnopqrstuvwxyz' "]
    decoders = [BeamSearchDecoder(chars, DecoderConfig(beam_width=4, lm=str(p))) for p in (plain, packed)]
    assert len(decoders[1]._word_of_hash) == len(WORDS)
    assert decoders[1]._word_of_hash == decoders[0]._word_of_hash


def test_a_kenlm_without_gzip_support_gets_a_decompressed_sibling_reused_while_newer(arpas, monkeypatch):
    import kenlm

    real_model = kenlm.Model

    def no_gzip(path, *args, **kwargs):  # what kenlm built without zlib does with a .gz
        if path.endswith(".gz"):
            raise OSError(f"Cannot read model '{path}' (gzip support was not compiled in)")
        return real_model(path, *args, **kwargs)

    monkeypatch.setattr(kenlm, "Model", no_gzip)
    plain, packed = arpas
    sibling = packed.with_name("words.arpa")
    lm = WordLM(packed)
    assert lm.path == packed and lm.loaded_path == sibling
    assert sibling.read_bytes() == plain.read_bytes()
    assert sorted(p.name for p in packed.parent.iterdir()) == ["words.arpa", "words.arpa.gz"]  # no temp left
    assert [sentence_score(lm, s) for s in SENTENCES] == pytest.approx(
        [sentence_score(WordLM(plain), s) for s in SENTENCES])

    made = sibling.stat().st_mtime_ns
    WordLM(packed)  # newer than the .gz: reused as it is
    assert sibling.stat().st_mtime_ns == made
    later = made + 10**9
    os.utime(packed, ns=(later, later))  # the .gz replaced (e.g. downloaded again): decompressed anew
    assert decompressed_arpa(packed) == sibling and sibling.stat().st_mtime_ns > made


def test_a_broken_gzip_is_a_one_line_error_naming_it(tmp_path, arpas):
    packed = arpas[1]
    truncated = tmp_path / "cut.arpa.gz"
    truncated.write_bytes(packed.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"^\S*cut.arpa.gz: corrupt or truncated gzip file \(.*\)$"):
        WordLM(truncated)
    with pytest.raises(ValueError, match=r"cut.arpa.gz: corrupt or truncated gzip file"):
        read_arpa(truncated)  # (arpa_words stops after the unigrams, before this cut)
    garbage = tmp_path / "text.arpa.gz"
    garbage.write_bytes(gzip.compress(b"not an arpa file\n"))
    with pytest.raises(ValueError, match=r"^\S*text.arpa.gz: not a gzipped ARPA language model$"):
        WordLM(garbage)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["cut.arpa.gz", "text.arpa.gz"]


def test_the_gz_and_its_plain_text_share_one_tuned_file(tmp_path):
    assert tuned_path(tmp_path / "3-gram.pruned.1e-7.arpa.gz") == tmp_path / "3-gram.pruned.1e-7.tuned.json"
    assert tuned_path(tmp_path / "3-gram.pruned.1e-7.arpa") == tmp_path / "3-gram.pruned.1e-7.tuned.json"
    assert tuned_path(tmp_path / "lm.arpa") == tmp_path / "lm.tuned.json"  # ours, as before


@pytest.fixture
def mirror(monkeypatch):
    """A local HTTP server (127.0.0.1 only) standing in for openslr; files set by the test."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests, httpd.ignore_range, httpd.cut_after = {}, [], False, None
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def table(capsys) -> list[list[str]]:
    """asr.evaluate's table rows without the timing column."""
    lines = capsys.readouterr().out.splitlines()[2:]
    return [[cell.strip() for cell in line.split("|")[1:-2]] for line in lines]


def test_evaluate_with_the_downloaded_gz_gives_the_plain_arpas_table(tmp_path, tone_corpus, arpas, mirror,
                                                                      capsys):
    plain, packed = arpas
    body = packed.read_bytes()
    mirror.files = {"/resources/11/3-gram.pruned.1e-7.arpa.gz": body,
                    "/resources/11/md5sum.txt": f"{hashlib.md5(body).hexdigest()}  3-gram.pruned.1e-7.arpa.gz\n".encode()}
    base = f"http://127.0.0.1:{mirror.server_address[1]}/resources/11"
    assert dl.main(["librispeech_lm", str(tmp_path / "data"), "--mirror", base]) == 0
    fetched = tmp_path / "data" / "LibriSpeech-LM" / "3-gram.pruned.1e-7.arpa.gz"
    assert fetched.read_bytes() == body
    capsys.readouterr()

    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint, data_root=tone_corpus)
    tables = []
    for lm in (plain, fetched):
        tuned_path(lm).write_text('{"alpha": 0.25, "beta": 2.0}')
        evaluate.main([str(checkpoint), "--split", "test-clean", "--beam", "4", "--lm", str(lm), "--workers", "1"])
        tables.append(table(capsys))
    assert tables[0] == tables[1]
    assert [row[1] for row in tables[1]] == ["greedy", "beam 4", "beam 4 + LM (alpha 0.25, beta 2)", "(acoustic model)"]


def test_an_upper_case_lm_is_queried_with_the_decoders_lower_case_words(tmp_path):
    """OpenSLR's LibriSpeech LMs are upper case; the decoder's words are lower case."""
    rng = np.random.default_rng(0)
    words = ["the", "cat", "and", "a", "dog", "of", "sun"]
    sentences = [list(rng.choice(words, 4)) for _ in range(60)]
    lower, upper = tmp_path / "lower.arpa", tmp_path / "upper.arpa"
    write_arpa(lower, train_kneser_ney(sentences, order=3))
    write_arpa(upper, train_kneser_ney([[w.upper() for w in s] for s in sentences], order=3))
    lm_lower, lm_upper = WordLM(lower), WordLM(upper)
    assert not lm_lower.upper_case and lm_upper.upper_case
    assert "cat" in lm_upper and "zebra" not in lm_upper
    state_l = state_u = 0
    for word in ["the", "cat", "and", "zebra", "dog"]:
        (score_l, state_l), (score_u, state_u) = lm_lower.score(state_l, word), lm_upper.score(state_u, word)
        assert score_u == pytest.approx(score_l, abs=1e-5)
    # The beam search's word list (open-word completion) is lower case too.
    decoder = BeamSearchDecoder(["<blank>", *"abcdefghijklmnopqrstuvwxyz' "], DecoderConfig(beam_width=4, lm=str(upper)))
    assert set(decoder._word_of_hash.values()) == set(words)
