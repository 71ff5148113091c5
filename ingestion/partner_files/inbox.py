"""The inbox as untrusted ground: what lies in it, and reading a dropped file without trusting it.

Anyone who can write to a partner folder decides what the pipeline finds there, so nothing in the
inbox is taken at its word:
- entries are looked at with `lstat`, never followed: a symlink is refused (it could point at a
  file only the pipeline may read, which would then be copied into the lake), and so are FIFOs
  (opening one blocks until a writer appears, holding the inbox lock), sockets and devices;
- a regular file is opened with O_NOFOLLOW | O_NONBLOCK and checked again on the open descriptor
  (`fstat`), so swapping the file for a link or a FIFO between the listing and the open is caught;
  a file with more than one hard link is refused as well (a hard link is a symlink's twin);
- at most `max_bytes` are read; a larger file is refused without being read;
- file names are shown escaped (undecodable bytes, control characters) wherever they are written
  as text, and folder names the pipeline derives from them are short and made of safe characters.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

INBOX_ROOT_PARTNER = "_inbox_root"  # files dropped outside any partner folder
_READ_CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class InboxEntry:
    """One thing found in the inbox, described by lstat (never by what a link points at)."""

    partner: str
    path: Path
    kind: str  # regular | directory | symlink | fifo | socket | block_device | char_device | unknown
    stat: os.stat_result


class Refused(Exception):
    """An inbox entry the pipeline will not read; `code` and `message` say why."""

    def __init__(self, code: str, message: str, st: os.stat_result, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stat = st
        self.details: dict[str, object] = dict(details)


def entry_kind(st: os.stat_result) -> str:
    mode = st.st_mode
    for test, kind in (
        (stat.S_ISREG, "regular"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISBLK, "block_device"),
        (stat.S_ISCHR, "char_device"),
    ):
        if test(mode):
            return kind
    return "unknown"


def list_entries(inbox: Path) -> list[InboxEntry]:
    """Every entry dropped in the inbox, oldest first; dot names are uploads in progress.

    Top-level directories that are real directories are partner folders; anything else at the top
    level (a file, a link, a FIFO) belongs to no partner. Entries that vanish while listing are skipped.
    """
    found: list[InboxEntry] = []
    for top in _scan(inbox):
        if top.kind == "directory":
            found.extend(InboxEntry(top.path.name, e.path, e.kind, e.stat) for e in _scan(top.path))
        else:
            found.append(InboxEntry(INBOX_ROOT_PARTNER, top.path, top.kind, top.stat))
    return sorted(found, key=lambda e: (e.stat.st_mtime, e.path.name))


@dataclass(frozen=True)
class _Scanned:
    path: Path
    kind: str
    stat: os.stat_result = field(repr=False)


def _scan(folder: Path) -> list[_Scanned]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if name.startswith("."):
            continue
        path = folder / name
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        out.append(_Scanned(path, entry_kind(st), st))
    return out


def read_regular(path: Path, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file, read through a descriptor that is checked to be one.

    Raises Refused for a link, a non-regular file, a hard-linked file or a file over `max_bytes`.
    """
    before = path.lstat()
    kind = entry_kind(before)
    if kind != "regular":
        raise refusal_for(kind, path, before)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # it became a symlink after the listing
            raise refusal_for("symlink", path, path.lstat()) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refusal_for(entry_kind(st), path, st)
        if st.st_nlink > 1:
            raise Refused(
                "hard_link",
                f"the file has {st.st_nlink} hard links: it is another file's twin, not a delivery; "
                "upload a copy instead",
                st,
            )
        if st.st_size > max_bytes:
            raise _too_large(st.st_size, max_bytes, st)
        chunks: list[bytes] = []
        total = 0
        while True:  # read to the end, but never more than the limit (the file may still grow)
            chunk = os.read(fd, min(_READ_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(total, max_bytes, st)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def refusal_for(kind: str, path: Path, st: os.stat_result) -> Refused:
    """Why an entry that is not a regular file is not read."""
    if kind == "symlink":
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return Refused(
            "symlink",
            "a symbolic link, not a file: links are never followed (upload the file itself)",
            st,
            link_target=display_name(target),
        )
    what = {
        "fifo": "a named pipe (FIFO)",
        "socket": "a socket",
        "block_device": "a block device",
        "char_device": "a character device",
        "directory": "a directory",
    }.get(kind, "not a regular file")
    return Refused("not_regular", f"{what}, not a regular file: only regular files are read", st, kind=kind)


def _too_large(size: int, max_bytes: int, st: os.stat_result) -> Refused:
    return Refused(
        "too_large",
        f"the file is {size:,} bytes, more than the {max_bytes:,} accepted (PARTNER_FILES_MAX_BYTES); "
        "it was not read: split it or raise the limit",
        st,
        bytes=size,
        max_bytes=max_bytes,
    )


def entry_identity(partner: str, path: Path, st: os.stat_result | None) -> str:
    """A stable id for an entry whose content is not read (it stands in for the content's sha256)."""
    parts = [partner, os.fsencode(path.name).hex()]
    if st is not None:
        parts += [str(st.st_dev), str(st.st_ino), str(st.st_size), str(st.st_mtime_ns)]
    return hashlib.sha256("\0".join(["unread-entry", *parts]).encode()).hexdigest()


def display_name(name: str) -> str:
    """The name as text safe for logs, JSON, SQLite and reports: bad bytes and control characters escaped."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def name_problem(name: str, max_bytes: int) -> str | None:
    """Why a file name is not accepted (too long, not UTF-8, control characters), or None."""
    raw = os.fsencode(name)
    if len(raw) > max_bytes:
        return (
            f"the file name is {len(raw)} bytes long, more than the {max_bytes} accepted (PARTNER_FILES_MAX_NAME_BYTES)"
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the file name is not valid UTF-8"
    if not name.isprintable():
        return "the file name contains control characters (line breaks, tabs, escapes)"
    return None


def safe_component(name: str, limit: int = 80) -> str:
    """A file or folder name of [A-Za-z0-9._-] only, at most `limit` characters, never hidden or empty."""
    cleaned = _UNSAFE.sub("_", display_name(name)).lstrip(".-")[:limit]
    return cleaned or "file"


def safe_extension(file_name: str) -> str:
    """The lower-case extension with its dot when it is short and plain (`.csv`), else ''."""
    if "." not in file_name:
        return ""
    ext = file_name.rsplit(".", 1)[-1].lower()
    return f".{ext}" if re.fullmatch(r"[a-z0-9]{1,10}", ext, re.ASCII) else ""
