"""The supervisor's ear on the database: wake-ups for jobs enqueued from any host.

Where the store can listen (PostgreSQL's LISTEN/NOTIFY, see
``store.postgresql``), every enqueue's commit reaches the supervisor, from this
host or another, and the idle workers are woken at once: the poll is then only
a safety net, run every ``SAFETY_POLL`` seconds (or ``poll_interval`` if that
is longer), and while no worker is busy the queue reading for STATUS= follows
it (``reading_every``): an idle daemon polls twice per ``SAFETY_POLL``, 0.2
statements/s (docs/performance.md, "Pickup in two round trips"). A lost
connection falls back to the ``poll_interval`` poll until a new one listens,
tried again every ``RETRY`` seconds. Elsewhere (SQLite, MariaDB) there is
nothing to hear and the poll stays as it was.
"""
from __future__ import annotations

import logging
import time

from .errors import DatabaseError
from .store import Store
from .store.driver import keep_unclosed

log = logging.getLogger("dj_daemon.listen")
#: Seconds between safety polls while listening: jobs that neither an insert nor a freed lock
#: announced (a failed job retried by an operator, a notification sent while the listener was
#: reconnecting) wait at most this long. 0.1 queries/s idle, and
#: as many queue readings (``reading_every``).
SAFETY_POLL = 10.0
#: Seconds between attempts to listen again after a failure.
RETRY = 5.0


class Ear:
    """Opens, reads and reopens the store's listener; ``None`` wherever the store has none."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.listener = None
        self.possible = True   # False once the store says it has no listener (not PostgreSQL)
        self.failed = False
        self.next_try = 0.0

    def keep_up(self, now: float) -> None:
        """Listen, if the store can and we do not yet; a failure is logged once, tried again later."""
        if self.listener is not None or not self.possible or now < self.next_try:
            return
        try:
            self.listener = self.store.listen()
        except DatabaseError as exc:
            self.next_try, self.possible = now + RETRY, not exc.permanent  # permanent: no right to, say
            if not self.failed:
                log.warning("not listening for new jobs, polling every poll_interval: %s", exc)
            self.failed = True
            return
        self.possible = self.listener is not None
        if self.listener is not None and self.failed:
            log.info("listening for new jobs again")
        self.failed = False

    def fds(self) -> list[int]:
        return [self.listener.fileno()] if self.listener is not None else []

    def poll_interval(self, configured: float) -> float:
        """How long the supervisor's idle poll waits: long while listening, as configured otherwise."""
        return max(configured, SAFETY_POLL) if self.listener is not None else configured

    def reading_every(self, configured: float, idle: bool) -> float:
        """Seconds between queue readings (STATUS=, the metrics): while listening with every worker
        idle, the safety poll's, as only what no insert announces can have made a job due
        meanwhile; ``configured`` otherwise. An idle daemon polls twice per ``SAFETY_POLL``."""
        return self.poll_interval(configured) if idle else configured

    def heard(self) -> list[float]:
        """The due times (Unix seconds) of the jobs announced since the last call."""
        if self.listener is None:
            return []
        try:
            return self.listener.take()
        except ConnectionError as exc:
            log.warning("lost the connection listening for new jobs (%s); polling until it is back",
                        str(exc).splitlines()[0])
            self.close()
            self.failed, self.next_try = True, time.monotonic() + RETRY
            return [0.0]  # something may have come meanwhile: look once

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def forget_in_child(self) -> None:
        """In a forked worker: keep the connection unclosed (the supervisor still uses it)."""
        keep_unclosed(self.listener)
        self.listener = None
