"""Where bytes come from: plain files and members of (nested) zip archives, walked safely.

A *location* is a file path, or ``archive.zip::member`` (``::`` again for a zip inside a zip).
``open_source`` opens any location for reading; ``walk_sources`` lists every file under a root,
reading archives in place (nothing is extracted to disk) and refusing hostile members.
"""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from radpipe.errors import ReadError

SEPARATOR = "::"


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what an archive may expand to before radpipe refuses it.

    Every bound is checked on the sizes the archive declares, before anything is decompressed,
    and totals count every nested archive together (a zip of zips gets one budget, not one
    per inner zip). Python's zip reader never inflates a member past its declared size.

    Attributes
    ----------
    max_total_bytes : int
        Sum of the members' uncompressed sizes, nested archives included (default 20 GiB).
    max_members : int
        Number of members, nested archives included (default 200,000).
    max_depth : int
        Nesting of zips inside zips.
    max_member_bytes : int
        Uncompressed size of one member (default 2 GiB).
    max_ratio : float
        Uncompressed / compressed size of a member over 1 MiB (default 200; DICOM and NIfTI
        compress 2–20×, a zip bomb a thousand times).
    """

    max_total_bytes: int = 20 * 1024**3
    max_members: int = 200_000
    max_depth: int = 3
    max_member_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0


@dataclass
class _Budget:
    """What is left of an archive tree's limits while it is listed."""

    bytes_left: int
    members_left: int


@dataclass(frozen=True)
class Source:
    """One file to read: its location, size in bytes and modification time (ns)."""

    location: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Problem:
    """Something under the root that could not be scanned, and why."""

    location: str
    reason: str


def natural_key(text: str) -> list[object]:
    """Sort key that orders ``image_2`` before ``image_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_archive_location(location: str) -> bool:
    """Whether a location names a member inside an archive."""
    return SEPARATOR in location


def is_archive_path(location: str) -> bool:
    """Whether a location is a zip archive or lies inside one (``.zip`` ending or ``::``)."""
    return SEPARATOR in location or location.lower().endswith(".zip")


def check_location(location: str) -> str:
    """What a location is: ``"file"`` or ``"folder"`` (zip archives count as folders).

    Raises
    ------
    ReadError
        If it does not exist, or is neither a regular file nor a folder (a named pipe, a
        device): radpipe never opens those, as reading one can block forever.
    """
    archive = location.split(SEPARATOR)[0]
    try:
        mode = os.stat(archive).st_mode
    except FileNotFoundError:
        raise ReadError(f"{archive}: no such file or folder") from None
    except OSError as exc:
        raise ReadError(f"{archive}: cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        return "folder"
    if not stat.S_ISREG(mode):
        raise ReadError(
            f"{archive}: not a regular file or folder (a pipe, socket or device); "
            "give a file or a folder"
        )
    if SEPARATOR not in location:
        return "folder" if archive.lower().endswith(".zip") else "file"
    inside = list_locations(location)
    if inside == [location]:
        return "file"
    return "folder"


def list_locations(location: str, *, limits: ArchiveLimits | None = None) -> list[str]:
    """Every file at or under a location: a folder, a zip archive, or a folder or member
    inside one (``study.zip::CT``), in natural order.

    Raises
    ------
    ReadError
        If nothing is there, or a member under the location was refused (unsafe path,
        encrypted, over the limits): a series is never assembled with a file left out.
    """
    archive, _, inner = location.partition(SEPARATOR)
    found: list[str] = []
    for item in walk_sources(archive, limits=limits):
        inside = (
            not inner
            or item.location == location
            or item.location.startswith(location.rstrip("/") + "/")
            or item.location.startswith(location + SEPARATOR)
        )
        if not inside:
            continue
        if isinstance(item, Problem):
            raise ReadError(f"{item.location}: {item.reason}")
        found.append(item.location)
    if not found:
        raise ReadError(f"{location}: no such file or folder in the archive")
    return sorted(found, key=natural_key)


def open_source(location: str) -> BinaryIO:
    """Open a location (file or zip member, nested or not) for binary reading.

    Zip members are read into memory (seekable); plain files are opened directly.

    Raises
    ------
    ReadError
        If the file or member does not exist or the archive is unreadable.
    """
    parts = location.split(SEPARATOR)
    try:
        if len(parts) == 1:
            return open(location, "rb")
        archive_file = _open_archive(parts[0], os.stat(parts[0]).st_mtime_ns, os.getpid())
        data = archive_file.read(parts[1])
        for member in parts[2:]:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = archive.read(member)
        return io.BytesIO(data)
    except FileNotFoundError as exc:
        raise ReadError(f"{location}: no such file") from exc
    except KeyError as exc:
        raise ReadError(f"{location}: no such member in the archive") from exc
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
        raise ReadError(f"{location}: cannot read the archive ({exc})") from exc


@functools.lru_cache(maxsize=8)
def _open_archive(path: str, mtime_ns: int, process: int) -> zipfile.ZipFile:
    """An open archive, kept for the next member (its central directory is parsed once).

    ``mtime_ns`` and ``process`` are part of the cache key: a rewritten archive is opened
    again, and a forked worker never shares the parent's file position.
    """
    del mtime_ns, process
    return zipfile.ZipFile(path)


def read_bytes(location: str) -> bytes:
    """All bytes of a location."""
    with open_source(location) as handle:
        return handle.read()


def walk_sources(
    root: str | Path, *, limits: ArchiveLimits | None = None, open_archives: bool = True
) -> Iterator[Source | Problem]:
    """Every file under ``root`` (a folder, a file or a zip archive), archives read in place.

    Folders are walked in directory order; symbolic links to folders are followed once (a link
    back to a folder already visited is reported as a loop); hidden files are skipped. Zip
    archives (files ending in .zip) are opened and their members listed; members that escape
    the archive root, encrypted members and archives beyond ``limits`` are reported as
    :class:`Problem` and the rest of the scan goes on. With ``open_archives=False`` an archive
    is one Source of its own (see :func:`archive_sources` for its members).
    """
    limits = limits or ArchiveLimits()
    start = Path(root)
    if not start.exists():
        raise ReadError(f"{start}: no such file or folder")
    if start.is_file():
        if open_archives or not str(start).lower().endswith(".zip"):
            yield from _file_sources(str(start), None, limits)
        else:
            info = start.stat()
            yield Source(str(start), info.st_size, info.st_mtime_ns)
        return
    visited: set[tuple[int, int]] = set()
    yield from _walk_folder(start, visited, limits, open_archives)


def is_archive(source: Source) -> bool:
    """Whether a Source is a zip archive on disk (not a member of one)."""
    return source.location.lower().endswith(".zip") and SEPARATOR not in source.location


def archive_sources(
    archive: Source, limits: ArchiveLimits | None = None
) -> Iterator[Source | Problem]:
    """The members of a zip archive that :func:`walk_sources` listed unopened, exactly as the
    walk with ``open_archives=True`` gives them."""
    yield from _file_sources(archive.location, None, limits or ArchiveLimits())


def _walk_folder(
    folder: Path, visited: set[tuple[int, int]], limits: ArchiveLimits, open_archives: bool
) -> Iterator[Source | Problem]:
    """Depth first in directory order, one generator for the whole tree (a re-scan of an
    unchanged tree is mostly this walk: no generator per folder or per file)."""
    stack: list[Iterator[os.DirEntry[str]]] = []
    opened = _open_folder(str(folder), visited)
    if isinstance(opened, Problem):
        yield opened
        return
    stack.append(iter(opened))
    regular, is_zip = stat.S_ISREG, str.lower
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        name = entry.name
        if name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=True):
                inner = _open_folder(entry.path, visited)
                if isinstance(inner, Problem):
                    yield inner
                else:
                    stack.append(iter(inner))
                continue
            info = entry.stat(follow_symlinks=True)
        except OSError as exc:
            yield Problem(entry.path, f"unreadable ({exc.strerror})")
            continue
        if not regular(info.st_mode):
            continue
        if open_archives and is_zip(name).endswith(".zip"):
            yield from _file_sources(entry.path, info, limits)
        else:
            yield Source(entry.path, info.st_size, info.st_mtime_ns)


def _open_folder(folder: str, visited: set[tuple[int, int]]) -> list[os.DirEntry[str]] | Problem:
    """A folder's entries in directory order, or why it cannot be walked."""
    try:
        info = os.stat(folder)
    except OSError as exc:
        return Problem(folder, f"unreadable folder ({exc.strerror})")
    key = (info.st_dev, info.st_ino)
    if key in visited:
        return Problem(folder, "symbolic link loop (folder already visited); not followed")
    visited.add(key)
    try:
        with os.scandir(folder) as scanner:
            return list(scanner)  # directory order: the catalog sorts what it shows
    except OSError as exc:
        return Problem(folder, f"unreadable folder ({exc.strerror})")


def _file_sources(
    path: str, info: os.stat_result | None, limits: ArchiveLimits
) -> Iterator[Source | Problem]:
    if info is None:
        try:
            info = os.stat(path)
        except OSError as exc:
            yield Problem(path, f"unreadable ({exc.strerror})")
            return
    if not stat.S_ISREG(info.st_mode):
        return
    if path.lower().endswith(".zip"):
        budget = _Budget(limits.max_total_bytes, limits.max_members)
        try:
            with zipfile.ZipFile(path) as archive:
                yield from _archive_sources(
                    archive, path, info.st_mtime_ns, limits, depth=1, budget=budget
                )
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            yield Problem(path, f"corrupt or truncated zip archive ({exc})")
        return
    yield Source(path, info.st_size, info.st_mtime_ns)


def _archive_sources(
    archive: zipfile.ZipFile,
    prefix: str,
    mtime_ns: int,
    limits: ArchiveLimits,
    *,
    depth: int,
    budget: _Budget,
) -> Iterator[Source | Problem]:
    members = [m for m in archive.infolist() if not m.is_dir()]
    total = sum(m.file_size for m in members)
    budget.members_left -= len(members)
    budget.bytes_left -= total
    if budget.members_left < 0:
        yield Problem(
            prefix,
            f"archive refused: more than {limits.max_members} members (nested archives counted "
            "together); raise ArchiveLimits.max_members / --max-members if it is genuine",
        )
        return
    if budget.bytes_left < 0:
        yield Problem(
            prefix,
            f"archive refused: expands to more than {limits.max_total_bytes} bytes (nested "
            "archives counted together); raise --max-archive-bytes if it is genuine",
        )
        return
    names = [m.filename for m in members]
    repeated = (
        {name for name in names if names.count(name) > 1} if len(set(names)) < len(names) else set()
    )
    for member in sorted(members, key=lambda m: natural_key(m.filename)):
        location = f"{prefix}{SEPARATOR}{member.filename}"
        reason = _unsafe_member(member) or _oversized_member(member, limits)
        if reason is None and member.filename in repeated:
            reason = "member refused: the archive holds several members of this name (ambiguous)"
        if reason is not None:
            yield Problem(location, reason)
            continue
        name = member.filename.rsplit("/", 1)[-1]
        if name.startswith(".") or member.filename.startswith("__MACOSX/"):
            continue
        if name.lower().endswith(".zip"):
            if depth >= limits.max_depth:
                yield Problem(location, f"nested archive deeper than {limits.max_depth}; skipped")
                continue
            try:
                with zipfile.ZipFile(io.BytesIO(archive.read(member))) as inner:
                    yield from _archive_sources(
                        inner, location, mtime_ns, limits, depth=depth + 1, budget=budget
                    )
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                yield Problem(location, f"corrupt or truncated zip archive ({exc})")
            continue
        yield Source(location, member.file_size, mtime_ns)


def _oversized_member(member: zipfile.ZipInfo, limits: ArchiveLimits) -> str | None:
    """Why a member is refused for its declared size or compression ratio, or None."""
    if member.file_size > limits.max_member_bytes:
        return (
            f"member refused: expands to {member.file_size} bytes, over the limit of "
            f"{limits.max_member_bytes} per member"
        )
    ratio = member.file_size / max(member.compress_size, 1)
    if member.file_size > 1024**2 and ratio > limits.max_ratio:
        return (
            f"member refused: compressed {ratio:.0f}× ({member.compress_size} → "
            f"{member.file_size} bytes), over the ratio limit of {limits.max_ratio:.0f} "
            "(a zip bomb?)"
        )
    return None


def _unsafe_member(member: zipfile.ZipInfo) -> str | None:
    name = member.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "member has an absolute path; refused"
    if ".." in name.split("/"):
        return "member path escapes the archive ('..'); refused"
    if member.flag_bits & 0x1:
        return "member is encrypted; refused"
    return None


class local_copy:
    """A file path for a location: the file itself, or a temporary copy of an archive member."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.temporary: Any = None

    def __enter__(self) -> Path:
        if SEPARATOR not in self.location:
            return Path(self.location)
        name = PurePosixPath(self.location.split(SEPARATOR)[-1]).name
        self.temporary = tempfile.TemporaryDirectory(prefix="radpipe-")
        path = Path(self.temporary.name) / name
        path.write_bytes(read_bytes(self.location))
        return path

    def __exit__(self, *exc: object) -> None:
        if self.temporary is not None:
            self.temporary.cleanup()
