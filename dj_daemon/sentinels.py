"""The drain sentinel files of one host: ``defer_jobs.txt`` and ``hold-submissions.txt``.

They live in ``sentinel_dir``, read by the workers before each reservation
and written by ``long_jobs drain``/``restart``. Only their existence counts;
their content says who wrote them and when, for people.
"""
from __future__ import annotations

import getpass
import os
from datetime import datetime, timezone
from pathlib import Path

from .errors import DJError
from .tracking import Gate

DEFER_FILE = "defer_jobs.txt"
HOLD_FILE = "hold-submissions.txt"
FILES = {Gate.DEFER: DEFER_FILE, Gate.HOLD: HOLD_FILE}


class SentinelError(DJError):
    """The sentinel folder is missing or not writable."""


def closed_gates(folder: str) -> frozenset[Gate]:
    """The gates whose sentinel file exists now."""
    return frozenset(gate for gate, name in FILES.items() if os.path.exists(os.path.join(folder, name)))


def present(folder: str) -> dict[str, datetime]:
    """Each existing sentinel file with the UTC time it was written."""
    found = {}
    for name in FILES.values():
        try:
            found[name] = datetime.fromtimestamp(os.stat(os.path.join(folder, name)).st_mtime, timezone.utc)
        except FileNotFoundError:
            pass
    return found


def check_folder(folder: str, writable: bool) -> Path:
    """The folder, or a one-line ``SentinelError`` saying what is wrong with it."""
    path = Path(folder)
    if not path.is_dir():
        raise SentinelError(f"sentinel_dir {folder} does not exist (create it, or set [long_jobs] sentinel_dir)")
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise SentinelError(f"sentinel_dir {folder} is not writable by {getpass.getuser()}")
    return path


def touch(folder: str, host: str) -> list[str]:
    """Write both files (keeping an existing one's time); returns the names newly written."""
    path = check_folder(folder, writable=True)
    written = []
    for name in FILES.values():
        target = path / name
        if not target.exists():
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            try:
                target.write_text(f"drained by {getpass.getuser()} on {host} at {stamp}\n", encoding="utf-8")
            except OSError as exc:
                raise SentinelError(f"cannot write {target}: {exc.strerror}") from None
            written.append(name)
    return written


def remove(folder: str) -> list[str]:
    """Remove both files; returns the names that existed."""
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
