"""The drain sentinel files of one host: ``defer_jobs.txt`` and ``hold-submissions.txt``.

They live in ``sentinel_dir``, read by the workers before each reservation
and written by ``long_jobs drain``/``restart``. Only their existence counts;
their content says who wrote them and when, for people.

Any entry at a sentinel's name closes its gate: a dangling symlink, a FIFO,
a folder, or one that cannot be looked at (``lstat`` refused). Failing closed
is the safe side: a job parked by mistake comes back with ``long_jobs
restart``, a job cut off mid-run does not. Nothing here follows a link:
entries are looked at with ``lstat``, created with ``O_EXCL | O_NOFOLLOW``
and removed with ``unlink``; ``touch`` refuses to write where a sentinel is
anything but a regular file.
"""
from __future__ import annotations

import getpass
import os
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from .errors import DJError
from .tracking import Gate

DEFER_FILE = "defer_jobs.txt"
HOLD_FILE = "hold-submissions.txt"
FILES = {Gate.DEFER: DEFER_FILE, Gate.HOLD: HOLD_FILE}
KINDS = ((stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "fifo"),
         (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device"))
UNREADABLE = "path lstat cannot read"  # a folder we may not search, a link loop: counts as present


class SentinelError(DJError):
    """The sentinel folder is missing or not writable, or a sentinel is not a regular file."""


@dataclass(frozen=True)
class Sentinel:
    """One entry found at a sentinel's name: its kind and, when it could be looked at, its time."""

    name: str
    kind: str  # "file" (as drain writes it), a word of KINDS, "special file" or UNREADABLE
    since: datetime | None

    @property
    def regular(self) -> bool:
        return self.kind == "file"


def find(folder: str, name: str) -> Sentinel | None:
    """The entry at ``name`` in ``folder``, never following a link; None when there is none."""
    try:
        info = os.lstat(os.path.join(folder, name))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return Sentinel(name, UNREADABLE, None)
    kind = next((word for test, word in KINDS if test(info.st_mode)), "special file")
    return Sentinel(name, kind, datetime.fromtimestamp(info.st_mtime, timezone.utc))


def closed_gates(folder: str) -> frozenset[Gate]:
    """The gates with any entry at their sentinel's name now."""
    return frozenset(gate for gate, name in FILES.items() if find(folder, name) is not None)


def present(folder: str) -> dict[str, Sentinel]:
    """Each sentinel with an entry at its name, by name."""
    return {name: found for name in FILES.values() if (found := find(folder, name)) is not None}


def check_folder(folder: str, writable: bool) -> Path:
    """The folder, or a one-line ``SentinelError`` saying what is wrong with it."""
    path = Path(folder)
    if not path.is_dir():
        raise SentinelError(f"sentinel_dir {folder} does not exist (create it, or set [long_jobs] sentinel_dir)")
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise SentinelError(f"sentinel_dir {folder} is not writable by {getpass.getuser()}")
    return path


def _refuse(path: Path, name: str, kind: str) -> SentinelError:
    return SentinelError(f"{path / name} is a {kind}, not a regular file: refusing to write through it "
                         "(it already closes its gate; remove it, then drain again)")


def touch(folder: str, host: str, names: Iterable[str] = tuple(FILES.values())) -> list[str]:
    """Write the files ``names`` (both by default), keeping an existing one's time; returns the
    names newly written.

    Refuses before writing anything when a name to write holds something other
    than a regular file, and never writes through a link made in between.
    """
    path = check_folder(folder, writable=True)
    names = list(names)
    for found in present(folder).values():
        if found.name in names and not found.regular:
            raise _refuse(path, found.name, found.kind)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    text = f"drained by {getpass.getuser()} on {host} at {stamp}\n".encode()
    return [name for name in names if _create(path, name, text)]


def _create(path: Path, name: str, text: bytes) -> bool:
    """Create ``name`` holding ``text``; False when a regular file is there already."""
    try:
        fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        found = find(str(path), name)  # made since we looked: fine if a regular file
        if found is not None and found.regular:
            return False
        raise _refuse(path, name, found.kind if found else "changing entry") from None
    except OSError as exc:
        raise SentinelError(f"cannot write {path / name}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(text)
    return True


def remove(folder: str) -> list[str]:
    """Remove both entries, a link itself and not what it names; returns the names that existed."""
    path = check_folder(folder, writable=True)
    removed = []
    for name in FILES.values():
        try:
            (path / name).unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SentinelError(f"cannot remove {path / name}: {exc.strerror}") from None
    return removed
