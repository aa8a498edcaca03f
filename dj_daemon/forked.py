"""The child's side of the supervisor's fork: let go of what is the supervisor's, then run a worker.

Nothing that holds a socket crosses the fork in use: the child closes the
supervisor's file descriptors it inherited (the loop's pipe, the wake pipes
of its workers), puts the supervisor's signals back to their defaults, and
forgets the supervisor's connections without closing them (the supervisor
goes on using them), before it opens a store of its own. Only then does it
take the signals the supervisor blocked across the fork (see
``Supervisor._spawn``).
"""
from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from typing import Callable

from . import journal, titles, turns
from .config import Config, usable_cpus
from .metrics import Metrics
from .pools import Pool
from .reports import Board
from .store import open_store
from .worker import Worker

log = logging.getLogger("dj_daemon.supervisor")


@dataclass(frozen=True)
class Inherited:
    """What a forked worker holds of its supervisor's and lets go of: the signals the supervisor
    handles, the file descriptors to close, and what to forget (each a call, in this order)."""

    signals: tuple[int, ...]
    fds: tuple[int, ...]
    forget: tuple[Callable[[], None], ...]

    def drop(self) -> None:
        """A signal here must neither wake the supervisor (through its pipe) nor run its handlers."""
        signal.set_wakeup_fd(-1)
        for signum in self.signals:
            signal.signal(signum, signal.SIG_DFL)
        for fd in self.fds:
            os.close(fd)
        for forget in self.forget:
            forget()


def run_worker(number: int, pool: Pool, config: Config, inherited: Inherited, *, board: Board, wake_fd: int,
               mask: set[signal.Signals], parent_pid: int, metrics: Metrics, journal_dir: str,
               workers: int) -> int:
    """In the forked child: take worker ``number``'s title, drop what is the supervisor's, then run
    a worker on ``pool``'s queues until it stops; returns its exit code. ``mask``: the signal
    mask from before the fork; ``workers``: how many the supervisor runs (see ``turns``).

    Its journal is held (``journal.claim``) before anything else, for as long as the
    process lives: that hold is what tells this host it is alive, whatever its pid."""
    titles.worker(number, pool.label())
    inherited.drop()
    held = hold_journal(journal_dir, f"{config.hostname}:{os.getpid()}") is not None
    config = config.replace(queues=pool.queues) if pool.queues else config
    with Worker(config, open_store(config), board=board, wake_fd=wake_fd, parent_pid=parent_pid,
                metrics=metrics, turns=turns.for_daemon(journal_dir, workers, usable_cpus())) as worker:
        worker.install_signal_handlers(daemon=True)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what came meanwhile is delivered now
        board.started()
        worker.register(journal_dir if held else None)
        worker.run()
    worker.store.dispose()
    return 0


def hold_journal(folder: str, name: str) -> int | None:
    """In the forked child: hold its journal for the rest of its life (the descriptor, returned,
    is never closed); None if it cannot, and then its worker deletes each job as it ends."""
    try:
        fd = journal.claim(folder, name)
    except OSError as exc:
        log.error("worker %s: cannot keep its journal in %s (%s); deleting each job as it ends",
                  name, folder, exc.strerror)
        return None
    if fd is None:  # a process its dead namesake forked without exec still holds it
        log.error("worker %s: another process holds its journal %s; deleting each job as it ends",
                  name, journal.path_of(folder, name))
    return fd
