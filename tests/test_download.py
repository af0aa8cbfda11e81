"""The downloader against a local HTTP server (Range support, cut connections, servers that ignore
Range) and the extractor against archives that try to write outside their destination, stale
extraction markers and synthetic corpora. The command's bad-input matrix is in
tests/test_bad_input_corpora.py."""
import hashlib
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from corpora import download as dl
from corpora.synth.corpus_folder import SYNTHETIC_MARKER


def make_tar_gz(members):
    """A .tar.gz in memory from (TarInfo, bytes or None) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_member(name, data):
    return tarfile.TarInfo(name), data


def link_member(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


# Incompressible, so the archive is big enough (~64 KiB) to be cut part way.
PAYLOAD = np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8).tobytes()
ARCHIVE = make_tar_gz([file_member("LibriSpeech/README.TXT", b"readme"),
                       file_member("LibriSpeech/dev-clean/1/2/1-2-0000.flac", PAYLOAD),
                       link_member("LibriSpeech/latest", "dev-clean")])
ARCHIVE_SHA256 = hashlib.sha256(ARCHIVE).hexdigest()
ARCHIVE_MD5 = hashlib.md5(ARCHIVE).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves server.files; honours Range unless server.ignore_range; sends only
    server.cut_after bytes of the next response body, then closes the connection."""

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and not server.ignore_range:
            start = int(match[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if server.cut_after is not None:
            payload, server.cut_after = payload[:server.cut_after], None
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    # The test talks to 127.0.0.1 directly, whatever proxy the environment names.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files = {"/data/archive.tar.gz": ARCHIVE}
    httpd.requests, httpd.ignore_range, httpd.cut_after = [], False, None
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/data/archive.tar.gz"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------ download

def test_download_verifies_and_is_idempotent(server, tmp_path):
    path = dl.download(server.url, tmp_path / "dl", sha256=ARCHIVE_SHA256)
    assert path == tmp_path / "dl" / "archive.tar.gz"
    assert path.read_bytes() == ARCHIVE
    assert sorted(p.name for p in path.parent.iterdir()) == [".archive.tar.gz.verified", "archive.tar.gz"]
    assert server.requests == [("/data/archive.tar.gz", None)]

    assert dl.download(server.url, tmp_path / "dl", sha256=ARCHIVE_SHA256) == path
    assert dl.download(server.url, tmp_path / "dl", md5=ARCHIVE_MD5) == path  # hashes, no network
    assert len(server.requests) == 1


def test_download_resumes_after_a_cut_connection(server, tmp_path):
    server.cut_after = 10000
    with pytest.raises(dl.DownloadError, match="interrupted at 10000 of .* run again to resume$"):
        dl.download(server.url, tmp_path, md5=ARCHIVE_MD5, attempts=1)
    assert (tmp_path / "archive.tar.gz.part").stat().st_size == 10000
    assert not (tmp_path / "archive.tar.gz").exists()

    path = dl.download(server.url, tmp_path, md5=ARCHIVE_MD5)
    assert path.read_bytes() == ARCHIVE
    assert [r for _, r in server.requests] == [None, "bytes=10000-"]
    assert not (tmp_path / "archive.tar.gz.part").exists()


def test_download_retries_within_one_call(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl.time, "sleep", lambda seconds: None)
    server.cut_after = 5000
    assert dl.download(server.url, tmp_path, sha256=ARCHIVE_SHA256).read_bytes() == ARCHIVE
    assert [r for _, r in server.requests] == [None, "bytes=5000-"]


def test_server_ignoring_range_restarts_the_file_cleanly(server, tmp_path):
    (tmp_path / "archive.tar.gz.part").write_bytes(b"stale bytes from some other file")
    server.ignore_range = True
    assert dl.download(server.url, tmp_path, sha256=ARCHIVE_SHA256).read_bytes() == ARCHIVE
    assert server.requests[0][1] == "bytes=32-"


def test_complete_part_file_is_finished_without_a_body(server, tmp_path):
    (tmp_path / "archive.tar.gz.part").write_bytes(ARCHIVE)  # crashed just before the rename
    assert dl.download(server.url, tmp_path, sha256=ARCHIVE_SHA256).read_bytes() == ARCHIVE
    assert [r for _, r in server.requests] == [f"bytes={len(ARCHIVE)}-"]


def test_checksum_mismatch_names_file_and_digests_and_keeps_nothing_usable(server, tmp_path):
    wrong = "0" * 32
    with pytest.raises(dl.ChecksumMismatch) as err:
        dl.download(server.url, tmp_path, md5=wrong)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'archive.tar.gz'}: md5 mismatch, expected {wrong}, "
                              f"got {ARCHIVE_MD5}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.tar.gz.corrupt"]
    # The next call downloads afresh.
    assert dl.download(server.url, tmp_path, md5=ARCHIVE_MD5).read_bytes() == ARCHIVE
    assert len(server.requests) == 2


def test_corrupted_finished_file_is_caught_on_the_next_call(server, tmp_path):
    path = dl.download(server.url, tmp_path, sha256=ARCHIVE_SHA256)
    path.write_bytes(ARCHIVE[:-1] + b"!")  # changes size and mtime: the stamp no longer vouches
    with pytest.raises(dl.ChecksumMismatch, match="sha256 mismatch"):
        dl.download(server.url, tmp_path, sha256=ARCHIVE_SHA256)
    assert not path.exists()


def test_http_error_is_one_line(server, tmp_path):
    with pytest.raises(dl.DownloadError, match=r"/missing.tar.gz: HTTP 404 .*$"):
        dl.download(server.url.replace("archive", "missing"), tmp_path)


def test_unreachable_host_is_one_line_with_the_synthetic_hint(tmp_path):
    port = closed_port()
    with pytest.raises(dl.HostUnreachable) as err:
        dl.download(f"http://127.0.0.1:{port}/x.tar.gz", tmp_path)
    assert str(err.value) == (f"cannot reach 127.0.0.1:{port} (Connection refused): no network? "
                              f"Make the synthetic corpus instead with ./run.sh data")


def test_cli_without_network_prints_one_line_and_exits_1(tmp_path):
    mirror = f"http://127.0.0.1:{closed_port()}/resources/12"
    result = subprocess.run(
        [sys.executable, "-m", "corpora.download", "librispeech", str(tmp_path), "--subsets",
         "dev-clean", "--mirror", mirror], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "."})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: cannot reach {mirror.split('/')[2]} (Connection refused): no network? "
        f"Make the synthetic corpus instead with ./run.sh data"]


def test_cli_refuses_to_mix_speech_commands_versions(tmp_path, capsys):
    target = tmp_path / "speech_commands"
    target.mkdir()
    dl.extraction_marker("speech_commands_v0.01.tar.gz", target).write_text("done")
    with pytest.raises(SystemExit) as exit_info:
        dl.main(["speech_commands", str(tmp_path), "--version", "0.02"])
    assert exit_info.value.code == (f"error: {target} already holds speech_commands_v0.01.tar.gz; "
                                    f"pass another DEST to keep the versions apart")


def test_fetch_unpacks_and_skips_everything_once_unpacked(server, tmp_path):
    archive = dl.Archive(server.url, sha256=ARCHIVE_SHA256)
    out = dl.fetch(archive, tmp_path / "downloads", tmp_path, delete_archive=True)
    assert out == tmp_path
    assert (tmp_path / "LibriSpeech/dev-clean/1/2/1-2-0000.flac").read_bytes() == PAYLOAD
    assert not (tmp_path / "downloads" / "archive.tar.gz").exists()
    dl.fetch(archive, tmp_path / "downloads", tmp_path, delete_archive=True)
    assert len(server.requests) == 1


# ------------------------------------------------------------------------------------- extract

def test_extract_merges_into_existing_folders_and_runs_once(tmp_path):
    other = make_tar_gz([file_member("LibriSpeech/README.TXT", b"readme v2"),
                         file_member("LibriSpeech/test-clean/3/4/3-4-0000.flac", b"flac")])
    (tmp_path / "a.tar.gz").write_bytes(ARCHIVE)
    (tmp_path / "b.tar.gz").write_bytes(other)
    dest = tmp_path / "data"
    dl.extract(tmp_path / "a.tar.gz", dest)
    dl.extract(tmp_path / "b.tar.gz", dest)
    root = dest / "LibriSpeech"
    assert (root / "dev-clean/1/2/1-2-0000.flac").read_bytes() == PAYLOAD
    assert (root / "test-clean/3/4/3-4-0000.flac").read_bytes() == b"flac"
    assert (root / "README.TXT").read_bytes() == b"readme v2"
    assert (root / "latest").is_symlink() and (root / "latest" / "1").is_dir()
    assert sorted(p.name for p in dest.iterdir()) == [
        ".a.tar.gz.extracted", ".b.tar.gz.extracted", "LibriSpeech"]

    (root / "README.TXT").write_bytes(b"my edit")
    dl.extract(tmp_path / "a.tar.gz", dest)  # all its members there: nothing is unpacked again
    assert (root / "README.TXT").read_bytes() == b"my edit"


def test_marker_lists_the_members_and_a_stale_one_unpacks_again(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(ARCHIVE)
    dest = tmp_path / "data"
    dl.extract(tmp_path / "a.tar.gz", dest)
    marker = dl.extraction_marker("a.tar.gz", dest)
    record = json.loads(marker.read_text())
    assert record["archive"] == "a.tar.gz" and record["size"] == len(ARCHIVE)
    assert record["members"] == ["LibriSpeech/README.TXT",
                                 "LibriSpeech/dev-clean/1/2/1-2-0000.flac", "LibriSpeech/latest"]
    assert dl.extraction_intact("a.tar.gz", dest)

    shutil.rmtree(dest / "LibriSpeech" / "dev-clean")  # the subset deleted, the marker left
    assert not dl.extraction_intact("a.tar.gz", dest)
    dl.extract(tmp_path / "a.tar.gz", dest)
    assert (dest / "LibriSpeech/dev-clean/1/2/1-2-0000.flac").read_bytes() == PAYLOAD
    assert dl.extraction_intact("a.tar.gz", dest)


def test_an_old_marker_is_checked_against_what_the_archive_is_known_to_create(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(ARCHIVE)
    dest = tmp_path / "data"
    dl.extract(tmp_path / "a.tar.gz", dest)
    marker = dl.extraction_marker("a.tar.gz", dest)
    marker.write_text("a.tar.gz 65838\n")  # as written before markers listed members
    assert dl.extraction_intact("a.tar.gz", dest, ("LibriSpeech/dev-clean",))
    assert dl.extraction_intact("a.tar.gz", dest)  # nothing to check it by: taken at its word
    shutil.rmtree(dest / "LibriSpeech" / "dev-clean")
    (dest / "LibriSpeech" / "dev-clean").mkdir()  # emptied
    assert not dl.extraction_intact("a.tar.gz", dest, ("LibriSpeech/dev-clean",))
    dl.extract(tmp_path / "a.tar.gz", dest, unpacks_to=("LibriSpeech/dev-clean",))
    assert (dest / "LibriSpeech/dev-clean/1/2/1-2-0000.flac").read_bytes() == PAYLOAD
    assert "members" in json.loads(marker.read_text())


def test_extract_never_unpacks_into_a_synthetic_corpus(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(ARCHIVE)
    synthetic = tmp_path / "data" / "LibriSpeech"
    synthetic.mkdir(parents=True)
    (synthetic / SYNTHETIC_MARKER).write_text("made by python -m corpora.synth\n")
    with pytest.raises(dl.SyntheticDestination) as err:
        dl.extract(tmp_path / "a.tar.gz", tmp_path / "data")
    assert str(err.value).startswith(f"{synthetic} holds a synthetic corpus")
    assert str(err.value).endswith("; nothing was extracted")
    assert sorted(p.name for p in (tmp_path / "data").rglob("*")) == [SYNTHETIC_MARKER,
                                                                      "LibriSpeech"]
    # Nor below one: DEST inside the synthetic corpus.
    with pytest.raises(dl.SyntheticDestination, match=f"^{synthetic} holds"):
        dl.extract(tmp_path / "a.tar.gz", synthetic / "real")
    assert not (synthetic / "real" / "LibriSpeech").exists()


def test_extract_checks_every_move_before_moving_anything(tmp_path):
    # "README.TXT" sorts first and merges fine; the folder at "zz" blocks a later file.
    (tmp_path / "a.tar.gz").write_bytes(make_tar_gz([file_member("top/README.TXT", b"new"),
                                                     file_member("top/zz", b"file")]))
    dest = tmp_path / "data"
    (dest / "top" / "zz").mkdir(parents=True)
    (dest / "top" / "README.TXT").write_bytes(b"old")
    with pytest.raises(FileExistsError, match=f"^{dest / 'top' / 'zz'}: a folder is in the way"):
        dl.extract(tmp_path / "a.tar.gz", dest)
    assert (dest / "top" / "README.TXT").read_bytes() == b"old"
    assert sorted(p.name for p in dest.iterdir()) == ["top"]


def _device_member():
    info = tarfile.TarInfo("dev/null-ish")
    info.type = tarfile.CHRTYPE
    return info, None


@pytest.mark.parametrize("bad_member, why", [
    (file_member("../evil", b"x"), "escapes the destination"),
    (file_member("ok/../../../evil", b"x"), "escapes the destination"),
    (file_member("/tmp/evil_absolute_member", b"x"), "has an absolute path"),
    (link_member("link", "../../evil"), "links outside the destination"),
    (link_member("link", "/etc/passwd"), "links to the absolute path"),
    (link_member("hard", "../evil", kind=tarfile.LNKTYPE), "links outside the destination"),
    # Inside the staging folder while unpacking, outside the destination once moved there.
    (file_member("../.bad.tar.gz.partial/evil", b"x"), "escapes the destination"),
    (link_member("link", "../.bad.tar.gz.partial/ok/first.txt"), "links outside the destination"),
    (link_member("ok/link", "../../.bad.tar.gz.partial/ok/first.txt"),
     "links outside the destination"),
    (link_member("hard", "../.bad.tar.gz.partial/ok/first.txt", kind=tarfile.LNKTYPE),
     "links outside the destination"),
    (_device_member(), "is a device file"),
])
def test_extract_refuses_unsafe_archives_and_writes_nothing(tmp_path, bad_member, why):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(make_tar_gz([file_member("ok/first.txt", b"fine"), bad_member]))
    dest = tmp_path / "sub" / "dest"
    with pytest.raises(dl.UnsafeArchive) as err:
        dl.extract(archive, dest)
    message = str(err.value)
    assert message.startswith(f"{archive}: refusing to unpack, member {bad_member[0].name!r} {why}")
    assert message.endswith("; nothing was extracted")
    assert list(dest.iterdir()) == []  # no file, no staging folder, no marker
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["bad.tar.gz", "dest", "sub"]


def test_extract_refuses_a_link_that_escapes_through_an_earlier_symlink(tmp_path):
    # "here" -> "." is harmless alone, but makes "here/up" -> "../evil" resolve one level above
    # the destination, which the names alone do not show.
    archive = tmp_path / "sneaky.tar.gz"
    archive.write_bytes(make_tar_gz([link_member("here", "."), link_member("here/up", "../evil")]))
    with pytest.raises(dl.UnsafeArchive, match="'here/up' links outside the destination"):
        dl.extract(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_extract_of_a_truncated_archive_is_one_line_and_leaves_nothing(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(ARCHIVE[:len(ARCHIVE) // 2])
    with pytest.raises(ValueError, match=f"^{archive}: not a readable tar archive"):
        dl.extract(archive, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


# ------------------------------------------------------------------- LibriSpeech LM (openslr 11)

LM_FILES = {"3-gram.pruned.1e-7.arpa.gz": PAYLOAD, "4-gram.arpa.gz": PAYLOAD[:3000],
            "librispeech-vocab.txt": b"A\nABBEY\n", "librispeech-lm-norm.txt.gz": b"\x1f\x8b text"}


def md5sum_txt(files: dict[str, bytes]) -> bytes:
    """An md5sum listing as openslr publishes it (`DIGEST  NAME`)."""
    return "".join(f"{hashlib.md5(body).hexdigest()}  {name}\n" for name, body in files.items()).encode()


@pytest.fixture
def resource11(server):
    """The server as a resource-11 mirror: small fake files and their correct md5sum.txt."""
    server.files = {f"/resources/11/{name}": body for name, body in LM_FILES.items()}
    server.files["/resources/11/md5sum.txt"] = md5sum_txt(LM_FILES)
    server.mirror = server.url.split("/data/")[0] + "/resources/11"
    return server


def test_librispeech_lm_fetches_the_pruned_3gram_checked_and_only_once(resource11, tmp_path, capsys):
    argv = ["librispeech_lm", str(tmp_path), "--mirror", resource11.mirror]
    assert dl.main(argv) == 0
    target = tmp_path / "LibriSpeech-LM"
    model = target / "3-gram.pruned.1e-7.arpa.gz"
    assert model.read_bytes() == PAYLOAD
    assert sorted(p.name for p in target.iterdir()) == [
        ".3-gram.pruned.1e-7.arpa.gz.verified", "3-gram.pruned.1e-7.arpa.gz", "md5sum.txt"]
    assert [p for p, _ in resource11.requests] == ["/resources/11/md5sum.txt",
                                                   "/resources/11/3-gram.pruned.1e-7.arpa.gz"]
    assert capsys.readouterr().out.splitlines()[-1] == f"ready: {model}"
    assert dl.main(argv) == 0  # everything verified: no network
    assert len(resource11.requests) == 2


def test_librispeech_lm_fetches_other_models_the_vocab_and_the_text(resource11, tmp_path):
    assert dl.main(["librispeech_lm", str(tmp_path), "--models", "4-gram", "--vocab", "--text",
                    "--mirror", resource11.mirror]) == 0
    target = tmp_path / "LibriSpeech-LM"
    for name in ("4-gram.arpa.gz", "librispeech-vocab.txt", "librispeech-lm-norm.txt.gz"):
        assert (target / name).read_bytes() == LM_FILES[name]  # kept as published, not unpacked
    assert not (target / "3-gram.pruned.1e-7.arpa.gz").exists()
    with pytest.raises(SystemExit, match="^error: nothing to fetch"):
        dl.main(["librispeech_lm", str(tmp_path), "--models", "--mirror", resource11.mirror])


def test_librispeech_lm_refuses_a_file_whose_md5_is_wrong_or_unlisted(resource11, tmp_path):
    listed = dict(LM_FILES, **{"3-gram.pruned.1e-7.arpa.gz": b"other bytes"})
    resource11.files["/resources/11/md5sum.txt"] = md5sum_txt(listed)
    target = tmp_path / "LibriSpeech-LM"
    with pytest.raises(SystemExit) as exit_info:
        dl.main(["librispeech_lm", str(tmp_path), "--mirror", resource11.mirror])
    assert re.fullmatch(rf"error: {re.escape(str(target))}/3-gram.pruned.1e-7.arpa.gz: md5 mismatch, "
                        rf"expected {hashlib.md5(b'other bytes').hexdigest()}, got \w+; moved it to "
                        rf"3-gram.pruned.1e-7.arpa.gz.corrupt, run again to download it afresh",
                        exit_info.value.code)
    assert not (target / "3-gram.pruned.1e-7.arpa.gz").exists()

    (target / "md5sum.txt").write_text(md5sum_txt({"4-gram.arpa.gz": b""}).decode())
    with pytest.raises(SystemExit) as exit_info:
        dl.main(["librispeech_lm", str(tmp_path), "--mirror", resource11.mirror])
    assert exit_info.value.code == (f"error: {target / 'md5sum.txt'} lists no md5 for "
                                    f"3-gram.pruned.1e-7.arpa.gz: refusing to fetch it unchecked "
                                    f"(delete md5sum.txt if it is stale)")


def test_librispeech_lm_resumes_an_interrupted_download(resource11, tmp_path, monkeypatch):
    target = tmp_path / "LibriSpeech-LM"
    assert dl.fetch_librispeech_lm(target, [], resource11.mirror) == []  # md5sum.txt only
    resource11.requests.clear()
    resource11.cut_after = 10000
    with pytest.raises(dl.DownloadError, match="interrupted at 10000 of .* run again to resume$"):
        dl.download(f"{resource11.mirror}/3-gram.pruned.1e-7.arpa.gz", target, attempts=1)
    assert dl.main(["librispeech_lm", str(tmp_path), "--mirror", resource11.mirror]) == 0
    assert (target / "3-gram.pruned.1e-7.arpa.gz").read_bytes() == PAYLOAD
    assert [r for _, r in resource11.requests] == [None, "bytes=10000-"]


def test_librispeech_lm_stays_out_of_a_synthetic_corpus(resource11, tmp_path):
    (tmp_path / SYNTHETIC_MARKER).write_text("")
    with pytest.raises(SystemExit, match=f"^error: {re.escape(str(tmp_path))} holds the synthetic corpus"):
        dl.main(["librispeech_lm", str(tmp_path), "--mirror", resource11.mirror])
    assert resource11.requests == []


def test_read_md5sums_takes_both_md5sum_formats_and_refuses_anything_else(tmp_path):
    sums = tmp_path / "md5sum.txt"
    sums.write_text(f"{'a' * 32}  x.arpa.gz\n\n{'B' * 32} *./y.txt\n")
    assert dl.read_md5sums(sums) == {"x.arpa.gz": "a" * 32, "y.txt": "b" * 32}
    sums.write_text("<html>not found</html>\n")
    with pytest.raises(ValueError, match=r"md5sum.txt:1: expected 'MD5  NAME'"):
        dl.read_md5sums(sums)
