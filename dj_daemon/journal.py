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

A journal is also how this host tells a live worker from a dead one of the same
name. Its worker holds an exclusive ``flock`` on it for as long as it lives
(``claim``; the kernel lets go when it dies, even by SIGKILL), so a journal no
one holds is a dead worker's, whatever process its pid names now (``gone``):
pids wrap within minutes on a busy host (``pid_max`` 32768), and a dead
worker's pid may be any other process's, or a new worker's of this daemon,
which then bears the dead one's name. A journal so held is one record longer
than its notes (``HELD_SIZE``): one written by an older version, whose worker
never held it, is judged by its pid alone, as then.
"""
from __future__ import annotations

import fcntl
import mmap
import os
import time
from pathlib import Path
from urllib.parse import quote, unquote

from .processes import alive

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
#: The file's size when its worker holds it (see the module docstring): a blank record more,
#: which no reader takes for a note
HELD_SIZE = SIZE + RECORD
#: Seconds a claim waits for a hold that may be brief: ``gone`` looking, a releaser settling
CLAIM_PATIENCE = 0.5


class Journal:
    """The writing end, in a worker: note finished jobs; forget them once their rows are deleted."""

    def __init__(self, folder: str, worker: str) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path_of(folder, worker), flags, 0o600)
        try:
            os.posix_fallocate(fd, 0, HELD_SIZE)
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
    if not data:  # claimed, not yet kept (``claim``)
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


def claim(folder: str, worker: str, patience: float = CLAIM_PATIENCE) -> int | None:
    """Hold ``worker``'s journal file (made if missing, empty) for as long as the returned
    descriptor stays open; None if another process holds it still after ``patience`` seconds.
    ``OSError`` if the file cannot be made. A file removed or replaced while this waited for
    it is not the journal any longer: the one at its path now is claimed instead."""
    path = path_of(folder, worker)
    give_up = time.monotonic() + patience
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= give_up:
                return None
            time.sleep(0.005)
            continue
        if _is_at(fd, path):
            return fd
        os.close(fd)


def _is_at(fd: int, path: str) -> bool:
    """Whether the open file ``fd`` is the one at ``path`` now."""
    try:
        there = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def held(folder: str, worker: str) -> bool | None:
    """Whether a live process holds ``worker``'s journal (see ``claim``); None when no journal
    here can tell: none, one this process may not read, or one whose worker never held it."""
    try:
        fd = os.open(path_of(folder, worker), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size != HELD_SIZE:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def gone(folder: str, worker: str, hostname: str) -> bool | None:
    """Whether ``worker``, of this host, is dead: its journal held by no one, or where that
    cannot tell, its pid not running. None for a name of another host or without a pid."""
    pid = pid_of(worker, hostname)
    if pid is None:
        return None
    holding = held(folder, worker)
    return not holding if holding is not None else not alive(pid)


def dead_workers(folder: str, hostname: str) -> list[str]:
    """``host:pid`` of this host's workers that left a journal here and are gone."""
    try:
        names = [unquote(n[:-len(SUFFIX)]) for n in os.listdir(folder) if n.endswith(SUFFIX)]
    except FileNotFoundError:
        return []
    return sorted(name for name in names if gone(folder, name, hostname))


def pid_of(worker: str, hostname: str) -> int | None:
    """The pid in ``hostname:pid``; None for a name of another host or of another form."""
    host, _, pid = worker.rpartition(":")
    return int(pid) if host == hostname and pid.isdigit() else None
