"""Bad input to the corpus programs, through their real entry points.

Two matrices, one per command: `corpora.download.main(argv)` against a local HTTP server (only
127.0.0.1) and `corpora.synth.__main__.main(argv)` on tiny corpora. Every row is one input (the
state of the data folder plus the command line) and the outcome the user must get:

- "error": `main` exits with ONE line `error: ...` naming the path (or URL) at fault, no traceback;
- "usage": argparse rejects the option: exit status 2, its last stderr line names the option;
- "ok": the command succeeds (exit status 0) and the row's `check` holds.

Each row runs in a fresh folder; the test snapshots it before and after, and nothing may appear,
disappear or change outside the paths the row names in `changes` (an error row names none, or only
the downloads folder its archive was fetched into). The working folder must stay empty.

Below the matrices, `corpus_folder`'s safety rules are tested directly (no synthesis).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from corpora import download as dl
from corpora.synth import corpus_folder
from corpora.synth.__main__ import main as synth_main
from test_download import Handler, closed_port, file_member, link_member, make_tar_gz

# ---------------------------------------------------------------------------------- harness


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder` (links not followed): kind, size, mtime and content hash, or
    link target."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            st = path.lstat()
            if path.is_symlink():
                entries[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[rel] = ("dir",)
            else:
                entries[rel] = ("file", st.st_size, st.st_mtime_ns,
                                hashlib.md5(path.read_bytes()).hexdigest())
    return entries


def changed_outside(before: dict, after: dict, allowed: tuple[str, ...]) -> list[str]:
    """Paths that changed and lie outside every `allowed` path (prefix match on whole names); the
    folders above an allowed path may appear, to hold it."""
    def inside(rel: str) -> bool:
        return any(rel == a or rel.startswith(a + "/") for a in allowed) or (
            after.get(rel) == ("dir",) and any(a.startswith(rel + "/") for a in allowed))
    return sorted(rel for rel in set(before) | set(after)
                  if before.get(rel) != after.get(rel) and not inside(rel))


def run_main(main: Callable, argv: list[str], capsys) -> tuple[object, str, str, object]:
    """(status, exit message or None, stdout, stderr) of one call of `main(argv)`."""
    try:
        status, message = main(argv), None
    except SystemExit as e:
        status, message = e.code, e.code
    out, err = capsys.readouterr()
    return status, message, out, err


def assert_outcome(outcome: str, expect: list[str], status, message, out: str, err: str) -> None:
    assert "Traceback" not in out + err
    if outcome == "error":
        assert isinstance(message, str), f"expected an error exit, got status {status!r} ({err!r})"
        assert message.startswith("error: ") and "\n" not in message, message
        for part in expect:
            assert part in message, f"{part!r} not in {message!r}"
    elif outcome == "usage":
        assert status == 2
        last = err.strip().splitlines()[-1]
        assert "error:" in last, err
        for part in expect:
            assert part in last, f"{part!r} not in {last!r}"
    else:
        assert status in (0, None), f"expected success, got {status!r} ({message!r}, {err!r})"
        for part in expect:
            assert part in out + err, f"{part!r} not in the output {out + err!r}"


# ------------------------------------------------------------------------ download matrix

README = b"LibriSpeech ASR corpus (test copy)\n"
FLAC = b"fLaC" + bytes(range(256)) * 8
TRANS = b"1272-128104-0000 MISTER QUILTER IS THE APOSTLE\n"
DEV_CLEAN = make_tar_gz([
    file_member("LibriSpeech/README.TXT", README),
    file_member("LibriSpeech/dev-clean/1272/128104/1272-128104.trans.txt", TRANS),
    file_member("LibriSpeech/dev-clean/1272/128104/1272-128104-0000.flac", FLAC)])
# Speech Commands archives have no top folder (and start their names with "./").
SPEECH = make_tar_gz([
    file_member("./testing_list.txt", b"yes/0a7c2a8d_nohash_0.wav\n"),
    file_member("./validation_list.txt", b""),
    file_member("./yes/0a7c2a8d_nohash_0.wav", b"RIFF" + bytes(64)),
    file_member("./_background_noise_/white_noise.wav", b"RIFF" + bytes(64))])
FLAC_PATH = "data/LibriSpeech/dev-clean/1272/128104/1272-128104-0000.flac"
DEV_MARKER = "data/.dev-clean.tar.gz.extracted"


def sneaky(*members) -> bytes:
    """dev-clean with extra (bad) members after the good ones."""
    return make_tar_gz([file_member("LibriSpeech/README.TXT", README),
                        file_member("LibriSpeech/dev-clean/1272/128104/1272-128104-0000.flac",
                                    FLAC), *members])


@pytest.fixture
def mirror(monkeypatch):
    """A local server holding dev-clean and Speech Commands v0.01; the checksums are theirs."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.requests, httpd.ignore_range, httpd.cut_after = [], False, None
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()

    def serve(dev_clean: bytes = DEV_CLEAN, md5: bytes | None = None) -> None:
        """Serve `dev_clean` as dev-clean.tar.gz, published with the md5 of `md5` (default:
        its own bytes)."""
        httpd.files = {"/resources/12/dev-clean.tar.gz": dev_clean,
                       "/sc/speech_commands_v0.01.tar.gz": SPEECH}
        monkeypatch.setitem(dl.LIBRISPEECH_MD5, "dev-clean",
                            hashlib.md5(dev_clean if md5 is None else md5).hexdigest())

    serve()
    httpd.serve = serve
    monkeypatch.setitem(dl.SPEECH_COMMANDS, "0.01", dataclasses.replace(
        dl.SPEECH_COMMANDS["0.01"], url=f"{httpd.base}/sc/speech_commands_v0.01.tar.gz",
        sha256=hashlib.sha256(SPEECH).hexdigest()))
    yield httpd
    httpd.shutdown()
    httpd.server_close()


class DCase:
    """A download row's world: tmp/data is DEST; the server is the mirror."""

    def __init__(self, tmp: Path, server) -> None:
        self.tmp, self.server, self.dest = tmp, server, tmp / "data"
        self.mirror = f"{server.base}/resources/12"

    def libri(self, *extra: str) -> list[str]:
        return ["librispeech", str(self.dest), "--subsets", "dev-clean", "--mirror", self.mirror,
                *extra]

    def speech(self, *extra: str) -> list[str]:
        return ["speech_commands", str(self.dest), *extra]

    def fetched(self, *extra: str) -> None:
        """dev-clean downloaded and unpacked once, as a finished earlier run leaves it."""
        assert dl.main(self.libri(*extra)) == 0
        self.server.requests.clear()

    def p(self, rel: str) -> Path:
        return self.tmp / rel


def nothing(case: DCase) -> None:
    pass


def legacy_marker(case: DCase) -> None:
    """A marker as written before markers listed the archive's members."""
    case.fetched()
    case.p(DEV_MARKER).write_text("dev-clean.tar.gz 1234\n")


def present(rel: str) -> Callable[[DCase], None]:
    def check(case: DCase) -> None:
        assert case.p(rel).is_file(), f"{rel} is missing"
    return check


def unpacked(case: DCase, requests: int) -> None:
    """The subset is all there, fetched with `requests` HTTP requests."""
    assert case.p(FLAC_PATH).read_bytes() == FLAC
    assert case.p("data/LibriSpeech/README.TXT").read_bytes() == README
    assert case.p(DEV_MARKER).is_file()
    assert len(case.server.requests) == requests, case.server.requests


@dataclass
class DRow:
    id: str
    setup: Callable[[DCase], object]
    argv: Callable[[DCase], list[str]]
    outcome: str
    expect: Callable[[DCase], list[str]] = lambda case: []
    changes: tuple[str, ...] = ()
    check: Callable[[DCase], None] = lambda case: None


def _in_the_way(case: DCase) -> None:
    (case.dest / "LibriSpeech" / "README.TXT").mkdir(parents=True)
    (case.dest / "LibriSpeech" / "README.TXT" / "mine.txt").write_text("my notes\n")


def _synthetic(folder: str) -> Callable[[DCase], None]:
    def setup(case: DCase) -> None:
        corpus = case.p(folder)
        corpus.mkdir(parents=True)
        (corpus / corpus_folder.SYNTHETIC_MARKER).write_text("made by python -m corpora.synth\n")
        (corpus / "SPEAKERS.TXT").write_text("; synthetic\n")
    return setup


def _serving(archive: bytes, **kw) -> Callable[[DCase], None]:
    return lambda case: case.server.serve(archive, **kw)


def _secret_beside_dest(case: DCase) -> None:
    """What a link into the staging folder would reach once the archive sits in DEST: a folder
    named like the staging folder, one level above DEST."""
    secret = case.tmp / ".dev-clean.tar.gz.partial" / "LibriSpeech"
    secret.mkdir(parents=True)
    (secret / "README.TXT").write_text("not part of any corpus\n")
    up_and_into_staging = "../../../.dev-clean.tar.gz.partial/LibriSpeech/README.TXT"
    case.server.serve(sneaky(link_member("LibriSpeech/dev-clean/sneaky", up_and_into_staging)))


def _then(*steps: Callable[[DCase], object]) -> Callable[[DCase], None]:
    def setup(case: DCase) -> None:
        for step in steps:
            step(case)
    return setup


def _rm(rel: str) -> Callable[[DCase], None]:
    def step(case: DCase) -> None:
        path = case.p(rel)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return step


REFUSED = "nothing was extracted"
DOWNLOAD_ROWS = [
    # -- the happy paths, for contrast
    DRow("fresh", nothing, DCase.libri, "ok", lambda c: ["LibriSpeech ready"], ("data",),
         lambda c: unpacked(c, 1)),
    DRow("rerun-when-all-there", DCase.fetched, DCase.libri, "ok", check=lambda c: unpacked(c, 0)),
    DRow("speech-commands-fresh", nothing, DCase.speech, "ok", changes=("data",),
         check=present("data/speech_commands/yes/0a7c2a8d_nohash_0.wav")),
    # -- #3: a marker whose files are gone is stale: unpack again (kept archive, else download)
    DRow("stale-marker-subset-deleted-archive-kept", _then(DCase.fetched,
                                                           _rm("data/LibriSpeech/dev-clean")),
         DCase.libri, "ok", lambda c: ["dev-clean.tar.gz was unpacked into", "is gone",
                                       "LibriSpeech ready"],
         changes=("data/LibriSpeech", DEV_MARKER),
         check=lambda c: unpacked(c, 0)),
    DRow("stale-marker-corpus-deleted-archive-deleted",
         _then(lambda c: c.fetched("--delete-archives"), _rm("data/LibriSpeech")),
         lambda c: c.libri("--delete-archives"), "ok", changes=("data",),
         check=lambda c: unpacked(c, 1)),
    DRow("stale-marker-one-file-missing", _then(DCase.fetched, _rm(FLAC_PATH)), DCase.libri,
         "ok", changes=("data/LibriSpeech", DEV_MARKER), check=lambda c: unpacked(c, 0)),
    DRow("stale-marker-subset-emptied",
         _then(DCase.fetched, _rm("data/LibriSpeech/dev-clean"),
               lambda c: c.p("data/LibriSpeech/dev-clean").mkdir()),
         DCase.libri, "ok", changes=("data/LibriSpeech", DEV_MARKER),
         check=lambda c: unpacked(c, 0)),
    DRow("legacy-marker-subset-present", legacy_marker, DCase.libri, "ok",
         check=lambda c: unpacked(c, 0)),
    DRow("legacy-marker-subset-deleted", _then(legacy_marker, _rm("data/LibriSpeech/dev-clean")),
         DCase.libri, "ok", changes=("data/LibriSpeech", DEV_MARKER),
         check=lambda c: unpacked(c, 0)),
    DRow("garbage-marker-subset-deleted",
         _then(DCase.fetched, _rm("data/LibriSpeech/dev-clean"),
               lambda c: c.p(DEV_MARKER).write_bytes(b"\xff\x00{not json")),
         DCase.libri, "ok", changes=("data/LibriSpeech", DEV_MARKER),
         check=lambda c: unpacked(c, 0)),
    DRow("speech-commands-stale-marker",
         _then(lambda c: dl.main(c.speech()), _rm("data/speech_commands/yes")),
         DCase.speech, "ok", changes=("data/speech_commands",),
         check=present("data/speech_commands/yes/0a7c2a8d_nohash_0.wav")),
    # -- #4: never into a synthetic corpus
    DRow("into-synthetic-librispeech", _synthetic("data/LibriSpeech"), DCase.libri, "error",
         lambda c: [str(c.dest / "LibriSpeech"), "synthetic", "another DEST",
                    str(c.dest / "real")],
         check=lambda c: not c.server.requests or pytest.fail(f"requests {c.server.requests}")),
    DRow("into-synthetic-speech-commands", _synthetic("data/speech_commands"), DCase.speech,
         "error", lambda c: [str(c.dest / "speech_commands"), "synthetic", "another DEST"]),
    DRow("dest-inside-synthetic-corpus", _synthetic("data/LibriSpeech"),
         lambda c: ["librispeech", str(c.dest / "LibriSpeech"), "--subsets", "dev-clean",
                    "--mirror", c.mirror], "error",
         lambda c: [str(c.dest / "LibriSpeech"), "synthetic"]),
    # -- #12: links into the staging folder point outside DEST once moved
    DRow("symlink-into-staging", _secret_beside_dest, DCase.libri, "error",
         lambda c: ["'LibriSpeech/dev-clean/sneaky'", "links outside the destination", REFUSED],
         ("data/downloads",)),
    DRow("hardlink-into-staging",
         _serving(sneaky(link_member("LibriSpeech/hard",
                                     "../.dev-clean.tar.gz.partial/LibriSpeech/README.TXT",
                                     kind=dl.tarfile.LNKTYPE))),
         DCase.libri, "error", lambda c: ["'LibriSpeech/hard'", "links outside", REFUSED],
         ("data/downloads",)),
    DRow("symlink-out-by-dotdot", _serving(sneaky(link_member("LibriSpeech/up", "../../x"))),
         DCase.libri, "error", lambda c: ["'LibriSpeech/up'", "links outside", REFUSED],
         ("data/downloads",)),
    DRow("member-into-staging-by-name",
         _serving(sneaky(file_member("../.dev-clean.tar.gz.partial/evil", b"x"))), DCase.libri,
         "error", lambda c: ["escapes the destination", REFUSED], ("data/downloads",)),
    DRow("member-escapes", _serving(sneaky(file_member("../evil", b"x"))), DCase.libri, "error",
         lambda c: ["'../evil'", "escapes the destination", REFUSED], ("data/downloads",)),
    # -- further bad input
    DRow("folder-in-the-way-of-a-file", _in_the_way, DCase.libri, "error",
         lambda c: [str(c.dest / "LibriSpeech" / "README.TXT"), "in the way"],
         ("data/downloads",)),
    DRow("checksum-mismatch", _serving(DEV_CLEAN, md5=b"another archive"), DCase.libri, "error",
         lambda c: [str(c.dest / "downloads" / "dev-clean.tar.gz"), "md5 mismatch"],
         ("data/downloads",)),
    DRow("not-a-tar-archive", _serving(b"<html>not found</html>"), DCase.libri, "error",
         lambda c: [str(c.dest / "downloads" / "dev-clean.tar.gz"), "not a readable tar"],
         ("data/downloads",)),
    DRow("host-unreachable", nothing,
         lambda c: ["librispeech", str(c.dest), "--subsets", "dev-clean", "--mirror",
                    f"http://127.0.0.1:{closed_port()}/x"],
         "error", lambda c: ["cannot reach 127.0.0.1", "./run.sh data"], ("data",)),
    DRow("http-404", nothing, lambda c: c.libri()[:-1] + [f"{c.server.base}/nowhere"], "error",
         lambda c: ["/nowhere/dev-clean.tar.gz", "HTTP 404"], ("data",)),
    DRow("mirror-without-scheme", nothing, lambda c: c.libri()[:-1] + ["127.0.0.1/mirror"],
         "error", lambda c: ["127.0.0.1/mirror", "http"]),
    DRow("dest-is-a-file", lambda c: c.dest.write_text("not a folder\n"), DCase.libri, "error",
         lambda c: [str(c.dest)]),
    DRow("speech-commands-other-version-there",
         lambda c: (c.dest / "speech_commands").mkdir(parents=True) or dl.extraction_marker(
             "speech_commands_v0.02.tar.gz", c.dest / "speech_commands").write_text("x"),
         DCase.speech, "error",
         lambda c: [str(c.dest / "speech_commands"), "speech_commands_v0.02.tar.gz"]),
    DRow("unknown-subset", nothing, lambda c: ["librispeech", str(c.dest), "--subsets", "dev"],
         "usage", lambda c: ["--subsets", "'dev'"]),
    DRow("unknown-speech-commands-version", nothing, lambda c: c.speech("--version", "0.03"),
         "usage", lambda c: ["--version", "'0.03'"]),
]


@pytest.mark.parametrize("row", DOWNLOAD_ROWS, ids=[row.id for row in DOWNLOAD_ROWS])
def test_download_bad_input_matrix(row: DRow, mirror, tmp_path, monkeypatch, capsys):
    case = DCase(tmp_path / "case", mirror)
    case.tmp.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # anything written relative to the working folder would land here
    row.setup(case)
    capsys.readouterr()
    before = snapshot(case.tmp)
    status, message, out, err = run_main(dl.main, row.argv(case), capsys)
    assert_outcome(row.outcome, row.expect(case), status, message, out, err)
    assert changed_outside(before, snapshot(case.tmp), row.changes) == []
    assert list(cwd.iterdir()) == []
    if case.dest.is_dir():
        assert not list(case.dest.glob(".*.partial")), "a staging folder was left behind"
    row.check(case)


# --------------------------------------------------------------------------- synth matrix

TINY = ["--scale", "0.001", "--processes", "1"]


@pytest.fixture(scope="module")
def tiny_librispeech(tmp_path_factory) -> Path:
    """A tiny synthetic LibriSpeech made by the command itself (rows work on copies)."""
    root = tmp_path_factory.mktemp("synth")
    synth_main(["--root", str(root), "--only", "librispeech", *TINY])
    return root / "LibriSpeech"


class SCase:
    """A synth row's world: tmp/data is --root."""

    def __init__(self, tmp: Path, tiny: Path) -> None:
        self.tmp, self.tiny, self.root = tmp, tiny, tmp / "data"

    def argv(self, *corpora: str, extra: tuple[str, ...] = ()) -> list[str]:
        return ["--root", str(self.root), "--only", *corpora, *TINY, *extra]

    def synthetic(self) -> Path:
        """A copy of the tiny synthetic LibriSpeech at data/LibriSpeech."""
        shutil.copytree(self.tiny, self.root / "LibriSpeech", symlinks=True)
        return self.root / "LibriSpeech"

    def real(self, corpus_dir: str) -> Path:
        """A non-synthetic corpus (no .synthetic marker), e.g. a real download."""
        folder = self.root / corpus_dir
        (folder / "sub").mkdir(parents=True)
        (folder / "README.TXT").write_text("the real thing\n")
        (folder / "sub" / "0001.flac").write_bytes(b"fLaC real audio")
        return folder


def _merged_download(case: SCase) -> None:
    """The synthetic corpus with a real subset merged in, as the old downloader left it."""
    corpus = case.synthetic()
    (corpus / "README.TXT").write_text("LibriSpeech ASR corpus\n")
    chapter = corpus / "test-clean" / "260" / "123286"
    chapter.mkdir(parents=True)
    (chapter / "260-123286-0000.flac").write_bytes(b"fLaC real audio")


def _legacy_synthetic(case: SCase) -> None:
    """A complete synthetic corpus from before the file list existed (no .files)."""
    corpus = case.synthetic()
    (corpus / getattr(corpus_folder, "FILES", ".files")).unlink(missing_ok=True)


def _interrupted_kspon(case: SCase) -> None:
    """A KsponSpeech folder whose synthesis stopped part way (marker, some files, no .complete)."""
    corpus = case.root / "KsponSpeech"
    (corpus / "KsponSpeech_01" / "KsponSpeech_0001").mkdir(parents=True)
    (corpus / corpus_folder.SYNTHETIC_MARKER).write_text("made by python -m corpora.synth\n")
    (corpus / "KsponSpeech_01" / "KsponSpeech_0001" / "KsponSpeech_000001.txt").write_bytes(b"x\n")
    (corpus / ".babble.npy").write_bytes(b"half a bank")


def _bad_text(case: SCase) -> None:
    case.synthetic()
    (case.tmp / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))


def _empty_text(case: SCase) -> None:
    case.synthetic()
    (case.tmp / "empty.txt").write_text("\n\n")


def made(corpus_dir: str) -> Callable[[SCase], None]:
    def check(case: SCase) -> None:
        corpus = case.root / corpus_dir
        assert (corpus / corpus_folder.MARKER).is_file()
        assert (corpus / corpus_folder.SYNTHETIC_MARKER).is_file()
    return check


@dataclass
class SRow:
    id: str
    setup: Callable[[SCase], object]
    argv: Callable[[SCase], list[str]]
    outcome: str
    expect: Callable[[SCase], list[str]] = lambda case: []
    changes: tuple[str, ...] = ()
    check: Callable[[SCase], None] = lambda case: None
    slow: bool = field(default=False)  # runs a (tiny) synthesis


KEEPS = "not made by corpora.synth"
SYNTH_ROWS = [
    # -- #4: a corpus synthesis did not make is kept (exit 0), whatever the flags
    *[SRow(f"real-{name}-kept", lambda c, d=d: c.real(d), lambda c, n=name: c.argv(n), "ok",
           lambda c, d=d: [str(c.root / d), KEEPS, "keeping it"])
      for name, d in (("librispeech", "LibriSpeech"), ("speech_commands", "speech_commands"),
                      ("kspon", "KsponSpeech"))],
    SRow("real-librispeech-kept-with-force", lambda c: c.real("LibriSpeech"),
         lambda c: c.argv("librispeech", extra=("--force",)), "ok",
         lambda c: [str(c.root / "LibriSpeech"), "keeping it"]),
    SRow("real-librispeech-kept-with-other-seed", lambda c: c.real("LibriSpeech"),
         lambda c: c.argv("librispeech", extra=("--seed", "3")), "ok",
         lambda c: ["keeping it"]),
    SRow("symlink-to-real-corpus-kept",
         lambda c: c.root.mkdir() or (c.root / "LibriSpeech").symlink_to(c.real("../real_ls")),
         lambda c: c.argv("librispeech", extra=("--force",)), "ok", lambda c: ["keeping it"]),
    # -- #4: a synthetic folder holding files synthesis did not write is never deleted
    SRow("synthetic-with-merged-download-force", _merged_download,
         lambda c: c.argv("librispeech", extra=("--force",)), "error",
         lambda c: [str(c.root / "LibriSpeech"), "README.TXT", "did not write"]),
    SRow("synthetic-with-merged-download-new-seed", _merged_download,
         lambda c: c.argv("librispeech", extra=("--seed", "3")), "error",
         lambda c: [str(c.root / "LibriSpeech"), "did not write"]),
    SRow("legacy-synthetic-without-file-list-force", _legacy_synthetic,
         lambda c: c.argv("librispeech", extra=("--force",)), "error",
         lambda c: [str(c.root / "LibriSpeech"), "delete it yourself"]),
    SRow("legacy-synthetic-same-spec-kept", _legacy_synthetic, lambda c: c.argv("librispeech"),
         "ok", lambda c: ["kept"]),
    SRow("interrupted-synthetic-with-unpacked-files",
         lambda c: _interrupted_kspon(c) or _old_file(c.root / "KsponSpeech" / "KsponSpeech_eval"
                                                      / "eval_clean" / "KsponSpeech_E00001.pcm"),
         lambda c: c.argv("kspon"), "error",
         lambda c: [str(c.root / "KsponSpeech"), "KsponSpeech_E00001.pcm", "older than"]),
    SRow("dangling-symlink", lambda c: c.root.mkdir() or (c.root / "KsponSpeech").symlink_to(
        c.tmp / "gone"), lambda c: c.argv("kspon"), "error",
         lambda c: [str(c.root / "KsponSpeech"), "symbolic link"]),
    SRow("corpus-path-is-a-file", lambda c: c.root.mkdir() or (c.root / "KsponSpeech").write_text(
        "x"), lambda c: c.argv("kspon"), "error", lambda c: [str(c.root / "KsponSpeech")]),
    SRow("root-is-a-file", lambda c: c.root.write_text("x"), lambda c: c.argv("kspon"), "error",
         lambda c: [str(c.root)]),
    SRow("text-not-utf8-keeps-the-old-corpus", _bad_text,
         lambda c: c.argv("librispeech", extra=("--text", str(c.tmp / "latin1.txt"))), "error",
         lambda c: [str(c.tmp / "latin1.txt"), "UTF-8"]),
    SRow("text-without-sentences-keeps-the-old-corpus", _empty_text,
         lambda c: c.argv("librispeech", extra=("--text", str(c.tmp / "empty.txt"))), "error",
         lambda c: [str(c.tmp / "empty.txt")]),
    SRow("text-missing", nothing, lambda c: c.argv("librispeech", extra=("--text", "nope.txt")),
         "usage", lambda c: ["--text", "nope.txt"]),
    SRow("scale-zero", nothing, lambda c: ["--root", str(c.root), "--scale", "0"], "usage",
         lambda c: ["--scale"]),
    SRow("unknown-corpus", nothing, lambda c: ["--root", str(c.root), "--only", "timit"], "usage",
         lambda c: ["--only", "'timit'"]),
    # -- what synthesis may replace: its own, complete or interrupted, and empty folders
    SRow("synthetic-same-spec-kept", SCase.synthetic, lambda c: c.argv("librispeech"), "ok",
         lambda c: ["complete for this spec, kept"]),
    SRow("synthetic-force-remade", SCase.synthetic,
         lambda c: c.argv("librispeech", extra=("--force",)), "ok", changes=("data/LibriSpeech",),
         check=made("LibriSpeech"), slow=True),
    SRow("interrupted-synthetic-remade", _interrupted_kspon, lambda c: c.argv("kspon"), "ok",
         changes=("data/KsponSpeech",), check=made("KsponSpeech"), slow=True),
    SRow("empty-folder-used", lambda c: (c.root / "KsponSpeech").mkdir(parents=True),
         lambda c: c.argv("kspon"), "ok", changes=("data/KsponSpeech",),
         check=made("KsponSpeech"), slow=True),
]


@pytest.mark.parametrize("row", SYNTH_ROWS, ids=[row.id for row in SYNTH_ROWS])
def test_synth_bad_input_matrix(row: SRow, tiny_librispeech, tmp_path, monkeypatch, capsys):
    case = SCase(tmp_path / "case", tiny_librispeech)
    case.tmp.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    row.setup(case)
    before = snapshot(case.tmp)
    status, message, out, err = run_main(synth_main, row.argv(case), capsys)
    assert_outcome(row.outcome, row.expect(case), status, message, out, err)
    assert changed_outside(before, snapshot(case.tmp), row.changes) == []
    assert list(cwd.iterdir()) == []
    row.check(case)


# ------------------------------------------------------------- corpus_folder, directly


def _marked(corpus: Path) -> Path:
    corpus.mkdir(parents=True)
    (corpus / corpus_folder.SYNTHETIC_MARKER).write_text("made by python -m corpora.synth\n")
    return corpus


def _complete(corpus: Path, files: dict[str, bytes]) -> Path:
    """A finished synthetic corpus holding `files`, marked complete by corpus_folder itself."""
    _marked(corpus)
    for rel, data in files.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_bytes(data)
    corpus_folder.mark_complete(corpus, Spec(), {"utterances": len(files)})
    return corpus


def _old_file(path: Path) -> None:
    """A file with a time from long ago, as unpacked from an archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"real")
    os.utime(path, (1_400_000_000, 1_400_000_000))


@dataclass
class Spec:
    seed: int = 0


OURS = {"a/1.flac": b"1", "a/1.trans.txt": b"t", "SPEAKERS.TXT": b"s"}


def test_mark_complete_lists_the_files_it_finds(tmp_path):
    corpus = _complete(tmp_path / "C", OURS)
    listed = (corpus / corpus_folder.FILES).read_text().splitlines()
    assert listed == sorted(OURS)  # bookkeeping files are not listed
    assert corpus_folder.is_complete(corpus, Spec())


@pytest.mark.parametrize("make, error", [
    (lambda c: c.mkdir(), "not made by corpora.synth"),
    (lambda c: c.mkdir() or (c / "x.flac").write_bytes(b"real"), "not made by corpora.synth"),
    (lambda c: c.write_text("a file"), "not a folder"),
    (lambda c: c.symlink_to(c.parent / "elsewhere"), "symbolic link"),
    (lambda c: _complete(c, OURS) and (c / "a" / "real.flac").write_bytes(b"r"),
     "a/real.flac, which corpora.synth did not write"),
    (lambda c: _complete(c, OURS) and (c / "z").symlink_to("/etc"),
     "z, which corpora.synth did not write"),
    (lambda c: _complete(c, OURS) and (c / corpus_folder.FILES).unlink(),
     "delete it yourself"),
    (lambda c: _marked(c) and _old_file(c / "a" / "real.flac"),  # interrupted, plus an old file
     "a/real.flac, which is older than the unfinished synthesis"),
])
def test_fresh_corpus_folder_never_deletes_what_it_did_not_write(tmp_path, make, error):
    corpus = tmp_path / "C"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("keep")
    make(corpus)
    before = snapshot(tmp_path)
    with pytest.raises(corpus_folder.NotOurs) as err:
        corpus_folder.fresh_corpus_folder(tmp_path, "C")
    assert str(err.value).startswith(f"{corpus}") and "\n" not in str(err.value)
    assert error in str(err.value)
    assert isinstance(err.value, ValueError)  # callers that catch ValueError still do
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("make", [
    lambda c: None,                                          # absent
    lambda c: _complete(c, OURS),                            # its own, complete
    lambda c: _complete(c, OURS) and (c / "a" / "1.flac").unlink(),  # its own, some gone
    lambda c: _marked(c) and (c / ".babble.npy").write_bytes(b"b"),  # interrupted
])
def test_fresh_corpus_folder_replaces_its_own(tmp_path, make):
    corpus = tmp_path / "C"
    make(corpus)
    assert corpus_folder.fresh_corpus_folder(tmp_path, "C") == corpus
    assert [p.name for p in corpus.iterdir()] == [corpus_folder.SYNTHETIC_MARKER]


def test_holds_foreign_corpus(tmp_path):
    assert not corpus_folder.holds_foreign_corpus(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    assert not corpus_folder.holds_foreign_corpus(tmp_path / "empty")
    assert not corpus_folder.holds_foreign_corpus(_complete(tmp_path / "ours", OURS))
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.flac").write_bytes(b"r")
    assert corpus_folder.holds_foreign_corpus(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert corpus_folder.holds_foreign_corpus(tmp_path / "link")
