"""Downloading and unpacking the public corpora: resumable, checksum-verified, safe to re-run.

    python -m corpora.download librispeech [DEST] [--subsets dev-clean ...] [--lm-text] [--mirror URL]
    python -m corpora.download speech_commands [DEST] [--version 0.01|0.02]
    python -m corpora.download librispeech_lm [DEST] [--models 3-gram.pruned.1e-7 ...] [--text] [--vocab] [--mirror URL]

Archives go to DEST/downloads/ (DEST defaults to `data`); LibriSpeech unpacks into DEST/LibriSpeech/,
Speech Commands into DEST/speech_commands/ (its archives have no top folder). An interrupted
download continues where it stopped (HTTP Range) on the next run; a finished, verified archive or an
unpacked one is never fetched again. An unpacked archive leaves a marker DEST/.NAME.extracted
listing what it put there; when any of that is gone, the next run unpacks it again (from the kept
archive, else downloading it anew). Archives are unpacked member by member into a staging folder
and refused whole if any member would land outside the destination (absolute paths, `..`, links
pointing out of it, from the staging folder or from their final place, device files).

librispeech_lm fetches OpenSLR resource 11 (LibriSpeech's prebuilt ARPA LMs, gzipped; default
only the pruned 3-gram 3-gram.pruned.1e-7.arpa.gz, ~34 MB) into DEST/LibriSpeech-LM/, kept as
published (no unpacking: asr.lm.WordLM reads X.arpa.gz itself). Its md5sum.txt is fetched first
and every file is checked against it; a file it does not list is refused.

Nothing is ever unpacked into a synthetic corpus (a folder holding corpora.synth's `.synthetic`
marker, e.g. data/LibriSpeech made by ./run.sh data): its speaker ids collide with real ones, and
remaking it would delete the download. Pass another DEST (data/real) or delete it first.
Errors are one line, `error: ...`, exit status 1.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from corpora.synth.corpus_folder import SYNTHETIC_MARKER

NO_NETWORK_HINT = "no network? Make the synthetic corpus instead with ./run.sh data"
USER_AGENT = "speech-corpus-downloader/1.0 (python urllib)"
CHUNK_BYTES = 1 << 20
# tarfile's extraction filters (and their errors) exist from Python 3.11.4 on.
_FILTER_ERRORS = getattr(tarfile, "FilterError", ())


class DownloadError(RuntimeError):
    """A download that could not be completed; the message is one line saying what to do."""


class HostUnreachable(DownloadError):
    """No connection to the server at all (no network, wrong host, refused)."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the published archive."""


class UnsafeArchive(ValueError):
    """An archive member would be written outside the destination, or is a device file."""


class SyntheticDestination(ValueError):
    """The archive would land in a synthetic corpus (a folder holding corpora.synth's marker)."""


@dataclass(frozen=True)
class Archive:
    """One published file and its published checksum(s) (None where the publisher gives none).

    unpacks_to: paths (relative to the folder it unpacks into) the archive is known to create;
    they vouch for an extraction marker written before markers listed the archive's members.
    """

    url: str
    md5: str | None = None
    sha256: str | None = None
    unpacks_to: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return _file_name(self.url)


LIBRISPEECH_URL = "https://www.openslr.org/resources/12"
# From https://www.openslr.org/resources/12/md5sum.txt.
LIBRISPEECH_MD5 = {
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
}
LIBRISPEECH_DEFAULT_SUBSETS = ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other")
# `librispeech --lm-text` fetches it without a checksum; `librispeech_lm --text` checks it
# against resource 11's md5sum.txt.
LIBRISPEECH_LM_TEXT = Archive("https://www.openslr.org/resources/11/librispeech-lm-norm.txt.gz")
LIBRISPEECH_LM_URL = "https://www.openslr.org/resources/11"
LIBRISPEECH_LM_FOLDER = "LibriSpeech-LM"
LIBRISPEECH_LM_SUMS = "md5sum.txt"
# Prebuilt ARPA models of resource 11, each published as NAME.arpa.gz.
LIBRISPEECH_LM_MODELS = ("3-gram.pruned.1e-7", "3-gram.pruned.3e-7", "3-gram", "4-gram")
LIBRISPEECH_LM_DEFAULT_MODELS = ("3-gram.pruned.1e-7",)
LIBRISPEECH_LM_VOCAB = "librispeech-vocab.txt"
# SHA-256 as pinned by torchaudio's SPEECHCOMMANDS dataset (Google publishes none).
SPEECH_COMMANDS = {
    "0.01": Archive("http://download.tensorflow.org/data/speech_commands_v0.01.tar.gz",
                    sha256="743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
                    unpacks_to=("testing_list.txt", "_background_noise_")),
    "0.02": Archive("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                    sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
                    unpacks_to=("testing_list.txt", "_background_noise_")),
}


def librispeech_archive(subset: str, base_url: str = LIBRISPEECH_URL) -> Archive:
    """The archive of one LibriSpeech subset, from openslr or a mirror with the same paths."""
    if subset not in LIBRISPEECH_MD5:
        raise ValueError(f"unknown LibriSpeech subset {subset!r}; expected one of "
                         f"{', '.join(LIBRISPEECH_MD5)}")
    return Archive(f"{base_url.rstrip('/')}/{subset}.tar.gz", md5=LIBRISPEECH_MD5[subset],
                   unpacks_to=(f"LibriSpeech/{subset}",))


# ---------------------------------------------------------------------------------------------
# download


def _file_name(url: str) -> str:
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", ".."):
        raise ValueError(f"{url}: the URL names no file")
    return name


class _Interrupted(Exception):
    """The transfer stopped part way; the .part file keeps what arrived."""


def download(url: str, dest_dir: str | os.PathLike, *, sha256: str | None = None,
             md5: str | None = None, attempts: int = 3, timeout: float = 60.0) -> Path:
    """Download `url` into `dest_dir` (file name from the URL) and return the file's path.

    Bytes arrive in NAME.part, resumed with an HTTP Range request after an interruption (up to
    `attempts` tries per call, and again on the next call); a server that ignores Range restarts
    the file cleanly. The finished file is checked against `sha256` or `md5` when given: a mismatch
    moves it to NAME.corrupt and raises ChecksumMismatch naming both digests. A file already there
    and verified is returned without touching the network (a `.NAME.verified` stamp spares
    re-hashing it). Raises HostUnreachable (one line, with a hint) when the server cannot be reached.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / _file_name(url)
    part = final.with_name(final.name + ".part")
    expected = ("sha256", sha256.lower()) if sha256 else ("md5", md5.lower()) if md5 else None
    if final.exists():
        _verify(final, final, expected)
        return final
    for attempt in range(1, attempts + 1):
        try:
            _fetch(url, part, timeout)
            break
        except _Interrupted as e:
            if attempt == attempts:
                raise DownloadError(f"{e}; kept {part}, run again to resume") from None
            time.sleep(min(2.0 ** (attempt - 1), 30.0))
    _verify(part, final, expected)
    os.replace(part, final)
    _write_stamp(final, expected)
    return final


def _fetch(url: str, part: Path, timeout: float) -> None:
    """Bring `part` up to the full file, resuming from its current size."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # Nothing left to send: either .part is already whole or it is longer than the file.
            total = _range_total(e.headers.get("Content-Range", ""))
            if total == offset:
                return
            part.unlink()
            raise _Interrupted(f"{part} is longer than {url}; starting over") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        host = urllib.parse.urlsplit(url).netloc
        raise HostUnreachable(f"cannot reach {host} ({text}): {NO_NETWORK_HINT}") from None

    with response:
        if offset and response.status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                part.unlink()
                raise _Interrupted(f"{url}: server sent bytes from {start}, asked from {offset}; "
                                   f"starting over")
            mode = "ab"
        else:  # 200: the server sent the whole file (it ignored Range, or we asked for none)
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        total = offset + length if length is not None else None
        received = 0
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=part.name[:-len(".part")]) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as e:
                    raise _Interrupted(f"download of {url} interrupted at {offset + received} of "
                                       f"{total or '?'} bytes ({str(e) or type(e).__name__})") from None
                if not chunk:
                    break
                f.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if length is not None and received < length:
        raise _Interrupted(f"download of {url} interrupted at {offset + received} of {total} bytes "
                           f"(connection closed)")


def _range_start(content_range: str) -> int | None:
    match = re.match(r"bytes\s+(\d+)-\d+/", content_range)
    return int(match[1]) if match else None


def _range_total(content_range: str) -> int | None:
    match = re.search(r"/(\d+)\s*$", content_range)
    return int(match[1]) if match else None


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file (hashlib algorithm name), with a progress bar for big files."""
    path = Path(path)
    digest = hashlib.new(algorithm)
    size = path.stat().st_size
    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"checking {path.name}", disable=size < (256 << 20)) as bar:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _stamp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.verified")


def _stamp_text(final: Path, expected: tuple[str, str]) -> str:
    stat = final.stat()
    return f"{expected[0]} {expected[1]} {stat.st_size} {stat.st_mtime_ns}\n"


def _write_stamp(final: Path, expected: tuple[str, str] | None) -> None:
    if expected is not None:
        _stamp_path(final).write_text(_stamp_text(final, expected))


def _verify(path: Path, final: Path, expected: tuple[str, str] | None) -> None:
    """Check `path` (the .part or the final file) against `expected`; on mismatch move it aside."""
    if expected is None:
        return
    stamp = _stamp_path(final)
    if path == final and stamp.exists() and stamp.read_text() == _stamp_text(final, expected):
        return
    algorithm, want = expected
    got = file_digest(path, algorithm)
    if got == want:
        if path == final:
            _write_stamp(final, expected)
        return
    corrupt = final.with_name(final.name + ".corrupt")
    os.replace(path, corrupt)
    stamp.unlink(missing_ok=True)
    raise ChecksumMismatch(f"{final}: {algorithm} mismatch, expected {want}, got {got}; moved it to "
                           f"{corrupt.name}, run again to download it afresh")


# ---------------------------------------------------------------------------------------------
# extract


def extraction_marker(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """The file saying `archive` was fully unpacked into `dest_dir`, and listing what it put there:
    JSON {"archive": name, "size": bytes, "members": [relative paths]}."""
    return Path(dest_dir) / f".{Path(archive).name}.extracted"


def _listed_members(marker: Path) -> list[str] | None:
    """The members a marker lists, or None for a marker that lists none (written before markers
    listed them: "NAME SIZE"), or that cannot be read."""
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (ValueError, OSError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    members = record.get("members") if isinstance(record, dict) else None
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        return None
    return members


def _has_content(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _first_missing(archive: str | os.PathLike, dest_dir: Path,
                   unpacks_to: tuple[str, ...]) -> Path | None:
    """The first thing `archive`'s marker in `dest_dir` promises that is not there (the marker
    itself when absent), or None when all is there. See `extraction_intact`."""
    marker = extraction_marker(archive, dest_dir)
    if not marker.is_file():
        return marker
    members = _listed_members(marker)
    if members is None:
        return next((dest_dir / rel for rel in unpacks_to if not _has_content(dest_dir / rel)),
                    None)
    return next((dest_dir / rel for rel in members if not os.path.lexists(dest_dir / rel)), None)


def extraction_intact(archive: str | os.PathLike, dest_dir: str | os.PathLike,
                      unpacks_to: tuple[str, ...] = ()) -> bool:
    """True when `archive`'s marker is in `dest_dir` and everything it promises is still there.

    A marker listing members: each is present. An older marker listing none: each of `unpacks_to`
    is a file or a non-empty folder (with no `unpacks_to`, such a marker is taken at its word).
    Without this check a deleted corpus folder would be reported ready forever.
    """
    return _first_missing(archive, Path(dest_dir), unpacks_to) is None


def synthetic_holder(path: str | os.PathLike) -> Path | None:
    """`path` or the nearest folder above it holding corpora.synth's `.synthetic` marker (None:
    neither does)."""
    path = Path(path)
    above = () if path.is_absolute() else Path.cwd().parents  # a relative path's parents end at "."
    for folder in (path, *path.parents, *above):
        if (folder / SYNTHETIC_MARKER).is_file():
            return folder
    return None


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike, *,
            unpacks_to: tuple[str, ...] = ()) -> Path:
    """Unpack a tar archive (.tar, .tar.gz, ...) into `dest_dir` safely and return `dest_dir`.

    Members stream into a staging folder inside `dest_dir`, then move into place; existing folders
    are merged, existing files replaced. The whole archive is refused (UnsafeArchive, one line,
    nothing left in `dest_dir`) when a member has an absolute path, escapes with `..`, is a link
    pointing outside `dest_dir` (from the staging folder or from its final place), or is a device
    file; and (SyntheticDestination) when it would land in a synthetic corpus. Idempotent: a marker
    listing the members skips an archive whose members are all still there (`extraction_intact`,
    `unpacks_to` as there); one whose members are not is unpacked again.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    marker = extraction_marker(archive, dest_dir)
    if extraction_intact(archive, dest_dir, unpacks_to):
        return dest_dir
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such archive")
    dest_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)  # stale: what it promised is gone
    staging = dest_dir / f".{archive.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted run
    staging.mkdir()
    # The "data" filter also drops set-uid bits and foreign ownership.
    filter_kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    members = []
    try:
        with open(archive, "rb") as raw, \
                tqdm.wrapattr(raw, "read", total=archive.stat().st_size,
                              desc=f"extracting {archive.name}") as stream, \
                tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                _refuse_unsafe(member, staging, dest_dir, archive)
                tar.extract(member, staging, **filter_kwargs)
                if os.path.normpath(member.name) != ".":
                    members.append(os.path.normpath(member.name))
        for entry in staging.iterdir():
            holder = synthetic_holder(dest_dir / entry.name)
            if holder is not None:
                raise SyntheticDestination(
                    f"{holder} holds a synthetic corpus (made by corpora.synth): refusing to "
                    f"unpack {archive.name} into it; unpack it elsewhere or delete {holder} "
                    f"first; nothing was extracted")
        _refuse_conflicts(staging, dest_dir)
        _move_contents(staging, dest_dir)
    except _FILTER_ERRORS as e:  # the "data" filter's own check, should ours ever miss one
        raise UnsafeArchive(f"{archive}: refusing to unpack ({e}); nothing was extracted") from None
    except tarfile.TarError as e:
        raise ValueError(f"{archive}: not a readable tar archive ({e})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Written whole or not at all: a half-written marker would vouch for nothing.
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"archive": archive.name, "size": archive.stat().st_size,
                               "members": members}, indent=0) + "\n", encoding="utf-8")
    os.replace(tmp, marker)
    return dest_dir


def _outside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) != root


def _refuse_unsafe(member: tarfile.TarInfo, staging: Path, final: Path, archive: Path) -> None:
    """Raise UnsafeArchive unless `member` stays inside `staging`, and its link target (if any)
    inside `final` too, where it is moved after unpacking.

    Checks both the names as written and the real paths on disk at this moment, because a symlink
    unpacked earlier can make an innocent-looking later name point elsewhere. A link target is
    also resolved from the member's final place: `../.NAME.partial/x` re-enters the staging folder
    from above, so it stays inside it now but points out of `final` once moved there.
    """
    def refuse(why: str) -> None:
        raise UnsafeArchive(f"{archive}: refusing to unpack, member {member.name!r} {why}; "
                            f"nothing was extracted")

    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name) or re.match(r"^[A-Za-z]:", name):
        refuse("has an absolute path")
    if member.isdev():  # character, block and FIFO devices
        refuse("is a device file")
    # realpath gets the joined path as written: normalizing first would fold "link/.." away
    # before the symlink is followed.
    root = os.path.realpath(staging)
    target = os.path.join(root, name)
    # From the final place lexically only: `final` may itself sit behind the user's own links.
    final_root = os.path.abspath(final)
    final_target = os.path.join(final_root, name)
    if (_outside(os.path.normpath(target), root) or _outside(os.path.realpath(target), root)
            or _outside(os.path.normpath(final_target), final_root)):
        refuse("escapes the destination")
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            refuse(f"links to the absolute path {member.linkname!r}")
        base = os.path.dirname(target) if member.issym() else root
        link = os.path.join(base, member.linkname)
        final_base = os.path.dirname(final_target) if member.issym() else final_root
        final_link = os.path.join(final_base, member.linkname)
        if (_outside(os.path.normpath(link), root) or _outside(os.path.realpath(link), root)
                or _outside(os.path.normpath(final_link), final_root)):
            refuse(f"links outside the destination ({member.linkname!r})")


def _refuse_conflicts(source: Path, dest: Path) -> None:
    """Raise FileExistsError where `_move_contents` would meet a folder in the way of a file or a
    file in the way of a folder, before anything has moved."""
    for entry in sorted(source.iterdir()):
        target = dest / entry.name
        entry_is_dir = entry.is_dir() and not entry.is_symlink()
        if entry_is_dir and target.is_dir():
            _refuse_conflicts(entry, target)
        elif target.is_dir() and not target.is_symlink():
            raise FileExistsError(f"{target}: a folder is in the way of the archive's file "
                                  f"{entry.name}; move it away and run again")
        elif entry_is_dir and os.path.lexists(target) and not target.is_symlink():
            raise FileExistsError(f"{target}: a file is in the way of the archive's folder "
                                  f"{entry.name}; move it away and run again")


def _move_contents(source: Path, dest: Path) -> None:
    """Move everything in `source` into `dest`, merging folders that exist in both."""
    for entry in sorted(source.iterdir()):
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir():
            _move_contents(entry, target)
        elif target.is_dir() and not target.is_symlink():
            raise FileExistsError(f"{target}: a folder is in the way of the archive's file "
                                  f"{entry.name}")
        else:
            if target.is_symlink():
                target.unlink()
            shutil.move(str(entry), str(target))


# ---------------------------------------------------------------------------------------------
# LibriSpeech LM (openslr 11): single files, checked against the resource's own md5sum.txt


def read_md5sums(path: str | os.PathLike) -> dict[str, str]:
    """File name -> md5 from an `md5sum` listing (`DIGEST  NAME` or `DIGEST *NAME` per line)."""
    path = Path(path)
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([0-9a-fA-F]{32}) [ *](.+)", line.strip())
        if match is None:
            raise ValueError(f"{path}:{number}: expected 'MD5  NAME', got {line[:60]!r}; delete it "
                             f"to fetch it anew")
        sums[match[2].removeprefix("./")] = match[1].lower()
    return sums


def fetch_librispeech_lm(target: Path, names: list[str], base_url: str = LIBRISPEECH_LM_URL) -> list[Path]:
    """Download resource-11 files `names` into `target`, each checked against its md5sum.txt.

    md5sum.txt comes first (kept in `target`, so re-runs need no network for files already
    verified); a name it does not list raises DownloadError rather than going unchecked.
    """
    base = base_url.rstrip("/")
    sums_path = download(f"{base}/{LIBRISPEECH_LM_SUMS}", target)
    sums = read_md5sums(sums_path)
    paths = []
    for name in names:
        if name not in sums:
            raise DownloadError(f"{sums_path} lists no md5 for {name}: refusing to fetch it "
                                f"unchecked (delete {sums_path.name} if it is stale)")
        paths.append(download(f"{base}/{name}", target, md5=sums[name]))
    return paths


# ---------------------------------------------------------------------------------------------
# command line


def fetch(archive: Archive, downloads: Path, unpack_into: Path | None, *,
          delete_archive: bool = False) -> Path:
    """Download one archive into `downloads` and unpack it into `unpack_into` (None: keep packed).

    Returns the unpacked folder, or the downloaded file when not unpacking. Skips the download when
    the archive was unpacked before and all it unpacked is still there, even if the archive file
    has since been deleted; when some of it is gone, unpacks it again (downloading it anew if the
    archive is gone too).
    """
    if unpack_into is not None:
        missing = _first_missing(archive.name, Path(unpack_into), archive.unpacks_to)
        if missing is None:
            return unpack_into
        if missing != extraction_marker(archive.name, unpack_into):
            print(f"note: {archive.name} was unpacked into {unpack_into} before, but {missing} is "
                  f"gone: unpacking it again", file=sys.stderr)
    path = download(archive.url, downloads, sha256=archive.sha256, md5=archive.md5)
    if unpack_into is None:
        return path
    extract(path, unpack_into, unpacks_to=archive.unpacks_to)
    if delete_archive:
        path.unlink()
        _stamp_path(path).unlink(missing_ok=True)
    return unpack_into


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m corpora.download", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    corpora = parser.add_subparsers(dest="corpus", required=True)
    libri = corpora.add_parser("librispeech", help="LibriSpeech audio subsets (openslr 12)")
    libri.add_argument("dest", nargs="?", default="data", type=Path, help="data root (default: data)")
    libri.add_argument("--subsets", nargs="+", choices=list(LIBRISPEECH_MD5),
                       default=list(LIBRISPEECH_DEFAULT_SUBSETS), metavar="SUBSET",
                       help=f"subsets to fetch (default: {' '.join(LIBRISPEECH_DEFAULT_SUBSETS)}; "
                            f"choices: {' '.join(LIBRISPEECH_MD5)})")
    libri.add_argument("--lm-text", action="store_true",
                       help="also fetch the normalized LM training text (openslr 11, 1.5 GB gzip)")
    libri.add_argument("--mirror", default=LIBRISPEECH_URL,
                       help=f"base URL holding the subset archives (default: {LIBRISPEECH_URL})")
    speech = corpora.add_parser("speech_commands", help="Google Speech Commands")
    speech.add_argument("dest", nargs="?", default="data", type=Path, help="data root (default: data)")
    speech.add_argument("--version", choices=list(SPEECH_COMMANDS), default="0.01")
    lm = corpora.add_parser("librispeech_lm", help="LibriSpeech prebuilt ARPA LMs and LM text (openslr 11)")
    lm.add_argument("dest", nargs="?", default="data", type=Path,
                    help=f"data root (default: data); files go to DEST/{LIBRISPEECH_LM_FOLDER}")
    lm.add_argument("--models", nargs="*", choices=list(LIBRISPEECH_LM_MODELS),
                    default=list(LIBRISPEECH_LM_DEFAULT_MODELS), metavar="MODEL",
                    help=f"ARPA models to fetch as MODEL.arpa.gz (default: "
                         f"{' '.join(LIBRISPEECH_LM_DEFAULT_MODELS)}, ~34 MB; choices: "
                         f"{' '.join(LIBRISPEECH_LM_MODELS)}; none: --models alone)")
    lm.add_argument("--text", action="store_true",
                    help="also fetch the normalized LM training text (librispeech-lm-norm.txt.gz, 1.5 GB)")
    lm.add_argument("--vocab", action="store_true", help=f"also fetch {LIBRISPEECH_LM_VOCAB}")
    lm.add_argument("--mirror", default=LIBRISPEECH_LM_URL,
                    help=f"base URL holding the files and md5sum.txt (default: {LIBRISPEECH_LM_URL})")
    for sub in (libri, speech):
        sub.add_argument("--delete-archives", action="store_true",
                         help="delete each archive once unpacked")
    return parser


def _refuse_synthetic(target: Path, corpus: str) -> None:
    """Raise SyntheticDestination when `target`, where `corpus` unpacks, is in a synthetic
    corpus."""
    holder = synthetic_holder(target)
    if holder is not None:
        raise SyntheticDestination(
            f"{holder} holds the synthetic corpus: download to another DEST (./run.sh download "
            f"{corpus} {holder.parent / 'real'}) or delete it first")


def main(argv: list[str] | None = None) -> int:
    """Run the command; errors exit with one line `error: ...` (status 1)."""
    args = _parser().parse_args(argv)
    mirror = getattr(args, "mirror", None)
    if mirror is not None and urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "file"):
        sys.exit(f"error: --mirror {mirror}: expected an http:// or https:// URL")
    if args.dest.exists() and not args.dest.is_dir():
        sys.exit(f"error: DEST {args.dest} is not a folder")
    downloads = args.dest / "downloads"
    try:
        # Before any download: a real corpus merged into the synthetic one would be deleted with
        # it when that is remade, and their speaker ids collide.
        folder = {"librispeech": "LibriSpeech", "speech_commands": "speech_commands",
                  "librispeech_lm": LIBRISPEECH_LM_FOLDER}[args.corpus]
        _refuse_synthetic(args.dest / folder, args.corpus)
        if args.corpus == "librispeech_lm":
            names = [f"{model}.arpa.gz" for model in args.models]
            names += [LIBRISPEECH_LM_VOCAB] * args.vocab + [LIBRISPEECH_LM_TEXT.name] * args.text
            if not names:
                raise ValueError("nothing to fetch: give --models MODEL ..., --text or --vocab")
            for path in fetch_librispeech_lm(args.dest / folder, names, args.mirror):
                print(f"ready: {path}")
        elif args.corpus == "librispeech":
            for subset in args.subsets:
                fetch(librispeech_archive(subset, args.mirror), downloads, args.dest,
                      delete_archive=args.delete_archives)
            print(f"LibriSpeech ready in {args.dest / 'LibriSpeech'}: {', '.join(args.subsets)}")
            if args.lm_text:
                text = fetch(LIBRISPEECH_LM_TEXT, downloads, None)
                print(f"LM text ready: {text}")
        else:
            archive = SPEECH_COMMANDS[args.version]
            target = args.dest / "speech_commands"
            others = [a.name for v, a in SPEECH_COMMANDS.items()
                      if v != args.version and extraction_marker(a.name, target).exists()]
            if others:
                raise FileExistsError(f"{target} already holds {others[0]}; pass another DEST to "
                                      f"keep the versions apart")
            fetch(archive, downloads, target, delete_archive=args.delete_archives)
            print(f"Speech Commands v{args.version} ready in {target}")
    except (DownloadError, UnsafeArchive, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
