"""Each daemon worker's journal of the jobs it finished: what a crash of the whole daemon must not forget.

A worker deletes its finished jobs' rows with its next reservation (one commit
for both: most of a busy queue's speed), so between two reservations a batch
of finished jobs still looks unfinished in the database. A worker therefore
appends ``<pid> ok <id>`` to a file of its own in ``journal_dir`` as soon as a
job returns: one ``write(2)``, no fsync, since the page cache outlives any
process crash (kill -9 of every process, the OOM killer, a segfault).
Whoever frees a dead worker's rows on this host (its supervisor, or the next
one to start) reads the journal first and deletes the finished jobs instead
of running them again (see ``Store.worker_gone``). After each commit that
deletes its finished jobs the worker empties its journal, which so never
holds more than a batch.

Only the loss of the host's memory (power cut, kernel panic) loses journals:
then at most one batch per worker of finished jobs runs again, once another
supervisor frees them (docs/reliability.md).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable
from urllib.parse import quote, unquote

SUFFIX = ".journal"


def folder_of(journal_dir: str, sentinel_dir: str) -> str:
    """The configured ``journal_dir``, or by default ``journal`` beside the sentinel files."""
    return journal_dir or os.path.join(sentinel_dir, "journal")


def path_of(folder: str, worker: str) -> str:
    """The journal of worker ``host:pid`` (quoted: a host name is not a file name)."""
    return os.path.join(folder, quote(worker, safe=":") + SUFFIX)


def prepare(folder: str) -> None:
    """Create the folder (owner only) and prove we can write in it; ``OSError`` if not."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    probe = os.path.join(folder, f".probe-{os.getpid()}")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    os.unlink(probe)


class Journal:
    """The writing end, in a worker: append lines; empty it once what it lists is committed."""

    def __init__(self, folder: str, worker: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        self._fd = os.open(path_of(folder, worker), flags, 0o600)

    def write(self, data: bytes) -> None:
        os.write(self._fd, data)

    def clear(self) -> None:
        """Everything written so far is in the database now (O_APPEND writes start over at 0)."""
        os.ftruncate(self._fd, 0)

    def close(self) -> None:
        os.close(self._fd)


def read(folder: str, worker: str) -> set[int] | None:
    """The jobs a dead worker's journal lists as finished; None when it kept none (then nothing is known)."""
    try:
        text = Path(path_of(folder, worker)).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    # a torn last line (the write it belongs to never finished) has no id yet
    return {int(words[2]) for words in map(str.split, text.splitlines())
            if len(words) == 3 and words[1] == "ok" and words[2].isdigit()}


def remove(folder: str, worker: str) -> None:
    """Forget a dead worker's journal, once its rows are settled in the database."""
    try:
        os.unlink(path_of(folder, worker))
    except FileNotFoundError:
        pass


def dead_workers(folder: str, hostname: str, alive: Callable[[int], bool]) -> list[str]:
    """``host:pid`` of this host's workers that left a journal here and are gone."""
    try:
        names = [unquote(n[:-len(SUFFIX)]) for n in os.listdir(folder) if n.endswith(SUFFIX)]
    except FileNotFoundError:
        return []
    return sorted(name for name in names if (pid := pid_of(name, hostname)) is not None and not alive(pid))


def pid_of(worker: str, hostname: str) -> int | None:
    """The pid in ``hostname:pid``; None for a name of another host or of another form."""
    host, _, pid = worker.rpartition(":")
    return int(pid) if host == hostname and pid.isdigit() else None
