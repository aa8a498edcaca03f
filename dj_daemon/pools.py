"""Worker pools: which queues each group of workers takes, as delayed_job's ``--pool``, and
when a pool may fork again after its workers died (``Respawns``).

``"zenodo:1"`` is one worker on queue zenodo, ``"mail,sms:2"`` two workers on
mail and sms, ``"*:2"`` two workers on every queue. Without pools, the
config's ``workers`` take the config's ``queues``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable

from .cancel import KILL_REASON
from .config import Config
from .errors import ConfigError
from .reports import Slot

log = logging.getLogger("dj_daemon.supervisor")
BACKOFF_MAX = 30.0
EARLY_DEATH = 10.0      # a worker that dies sooner than this counts towards backoff


@dataclass(frozen=True)
class Pool:
    """``size`` workers taking ``queues`` (empty: the config's queues)."""

    queues: tuple[str, ...]
    size: int

    def label(self) -> str:
        return ",".join(self.queues) or "*"


def parse_pool(spec: str) -> Pool:
    """One ``queues:count`` spec; a missing count means one worker."""
    names, _, count = spec.strip().rpartition(":") if ":" in spec else (spec.strip(), "", "1")
    try:
        size = int(count)
    except ValueError:
        raise ConfigError(f"pool {spec!r}: worker count {count!r} is not a number") from None
    if size < 1:
        raise ConfigError(f"pool {spec!r}: worker count must be at least 1")
    queues = tuple(q.strip() for q in names.split(",") if q.strip() and q.strip() != "*")
    if not names.strip():
        raise ConfigError(f"pool {spec!r}: name the queues, or * for all")
    return Pool(queues, size)


def pools_of(config: Config) -> list[Pool]:
    """The pools to run: the config's ``pools``, else ``workers`` on the config's queues."""
    if config.pools:
        return [parse_pool(spec) for spec in config.pools]
    return [Pool(config.queues, config.workers)]


def pools_text(pools: Iterable[Pool]) -> str:
    """``2 worker(s) on mail, 1 worker(s) on *``: what the supervisor runs, for its log."""
    return ", ".join(f"{p.size} worker(s) on {p.label()}" for p in pools)


class Respawns:
    """When each pool may fork its missing workers: at once, or after a doubling delay (up to
    ``BACKOFF_MAX``) while its workers keep dying young. A crash loop (a bad config, a database
    a worker cannot reach) backs off here instead of forking as fast as the loop turns; a
    reload starts afresh with a new ``Respawns`` for the new pools."""

    def __init__(self, pools: list[Pool]) -> None:
        self.pools = pools
        self.failures = [0] * len(pools)
        self.next_spawn = [0.0] * len(pools)

    def due(self, pool: int, now: float) -> bool:
        """Whether pool ``pool`` may fork now."""
        return now >= self.next_spawn[pool]

    def healthy(self, pool: int) -> None:
        """The pool works (a worker finished a job, or outlived ``EARLY_DEATH``): whatever killed
        workers before is over. A worker of pools replaced by a reload names none of these."""
        if pool < len(self.failures):
            self.failures[pool] = 0

    def note_survivors(self, slots: Iterable[Slot], now: float) -> None:
        """Workers (of the current pools) up longer than ``EARLY_DEATH``: their pool is healthy again."""
        for slot in slots:
            if now - slot.started > EARLY_DEATH:
                self.healthy(slot.pool)

    def plan(self, slot: Slot, abnormal: bool, lived: float) -> None:
        """Respawn a worker that ended (``abnormal``: by a signal or an error code, after ``lived``
        seconds) at once, or after a doubling delay while workers keep dying young."""
        # a worker that fails before finishing any job is likely to fail again: back off;
        # one killed while working (kill -9, OOM) is replaced at once
        early_death = (abnormal and lived < EARLY_DEATH and slot.done == 0
                       and not slot.kill_reason.startswith(KILL_REASON))
        self.failures[slot.pool] = self.failures[slot.pool] + 1 if early_death else 0
        delay = min(0.5 * 2 ** (self.failures[slot.pool] - 1), BACKOFF_MAX) if early_death else 0.0
        self.next_spawn[slot.pool] = time.monotonic() + delay
        if delay:
            log.warning("pool %s: worker died young %d times in a row; respawning in %.1fs",
                        self.pools[slot.pool].label(), self.failures[slot.pool], delay)

    def waiting(self, now: float) -> str:
        """``; pool mail: 3 worker(s) died young, respawning in 4s`` for each pool backing off
        (for STATUS=); empty when none is."""
        text = ""
        for index, pool in enumerate(self.pools):
            if self.next_spawn[index] > now:
                text += (f"; pool {pool.label()}: {self.failures[index]} worker(s) died young, "
                         f"respawning in {self.next_spawn[index] - now:.0f}s")
        return text
