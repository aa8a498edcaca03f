"""Each daemon worker's journal of the jobs it finished: what a crash of the whole daemon must not forget.

A worker deletes its finished jobs' rows with its next reservation (one commit
for both: most of a busy queue's speed), so between two reservations a batch
of finished jobs still looks unfinished in the database. A worker therefore
notes each job in a file of its own in ``journal_dir`` as soon as it returns.
The file is mapped into the worker's memory (``MAP_SHARED``): a note is a
store into the page cache, no system call, and the page cache outlives any
process crash (kill -9 of every process, the OOM killer, a segfault).
Whoever frees a dead worker's rows on this host (its supervisor, or the next
one to start) reads the journal first and deletes the finished jobs instead
of running them again (see ``Store.worker_gone``). After each commit that
deletes its finished jobs, the worker zeroes what it wrote.

A note is a fixed-size record, ``K``, the id in 20 digits, a newline, at a
multiple of its size: a record cut by a kill mid-copy lacks its first or its
last byte and is ignored, and zeroing on each commit leaves no older record
for a cut one to blend with. The blocks are allocated when the file is made,
so a full disk refuses the journal then, not with a SIGBUS later.

Only the loss of the host's memory (power cut, kernel panic) loses journals:
then at most one batch per worker of finished jobs runs again, once another
supervisor frees them (docs/reliability.md).
"""
from __future__ import annotations

import mmap
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


RECORD = 22                       #: bytes of a note: K, 20 digits, newline
CAPACITY = 4096                   #: notes a journal holds (``batch_size`` is at most 1000)
SIZE = RECORD * CAPACITY


class Journal:
    """The writing end, in a worker: note finished jobs; forget them once their rows are deleted."""

    def __init__(self, folder: str, worker: str) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path_of(folder, worker), flags, 0o600)
        try:
            os.posix_fallocate(fd, 0, SIZE)
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self._end = 0

    def note(self, job_id: int) -> bool:
        """Note a finished job; False when the journal is full (commit, then ``clear``)."""
        end = self._end + RECORD
        if end > SIZE:
            return False
        self._map[self._end:end] = b"K%20d\n" % job_id
        self._end = end
        return True

    def clear(self) -> None:
        """Everything noted is in the database now."""
        self._map[:self._end] = bytes(self._end)
        self._end = 0

    def close(self) -> None:
        self._map.close()


def read(folder: str, worker: str) -> set[int] | None:
    """The jobs a dead worker's journal lists as finished; None when it kept none (then nothing is known)."""
    try:
        data = Path(path_of(folder, worker)).read_bytes()
    except FileNotFoundError:
        return None
    records = (data[at:at + RECORD] for at in range(0, len(data) - RECORD + 1, RECORD))
    return {int(record[1:-1]) for record in records
            if record[:1] == b"K" and record[-1:] == b"\n" and record[1:-1].strip().isdigit()}


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
