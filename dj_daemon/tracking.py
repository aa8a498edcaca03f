"""Tracked long jobs: their application-level states and gates, as pure values.

A job (a decorated function or a perform-object's class) is tracked when it
declares ``track``: the name of the argument (or attribute) holding its
identifier, e.g. a dataset id, or a callable computing it from the call's
arguments. Its ``gate`` says which drain sentinel parks it:

- ``defer``: while ``defer_jobs.txt`` exists, its turn parks it as ``deferred``
  (e.g. replication copies, safe to run later anywhere);
- ``hold``: while ``hold-submissions.txt`` exists, it is parked as
  ``rejected_shutting_down`` on this host (e.g. submissions);
- ``none``: tracked, never parked.

Tracked jobs of the same class and identifier form a *strand*: they run one
at a time, in enqueue order.
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from enum import Enum
from typing import Any


class State(str, Enum):
    ENQUEUED = "enqueued"                              #: waiting in the work queue (also between retries)
    RUNNING = "running"                                #: locked by a worker, performing
    COMPLETED = "completed"                            #: succeeded; the queue row is gone
    ERROR = "error"                                    #: failed for good, or reset after its worker died
    DEFERRED = "deferred"                              #: parked by defer_jobs.txt; `long_jobs restart` re-enqueues
    REJECTED_SHUTTING_DOWN = "rejected_shutting_down"  #: parked by hold-submissions.txt on a host
    CANCELLED = "cancelled"                            #: cancelled (``jobs cancel``); the queue row is gone


PARKED = (State.DEFERRED, State.REJECTED_SHUTTING_DOWN)


class Gate(str, Enum):
    NONE = "none"
    DEFER = "defer"
    HOLD = "hold"


#: What each gate's sentinel turns a job into when its turn comes.
PARKS_AS = {Gate.DEFER: State.DEFERRED, Gate.HOLD: State.REJECTED_SHUTTING_DOWN}


def parked_state(gate: str, closed: frozenset[Gate]) -> State | None:
    """The state a job with ``gate`` is parked in while the ``closed`` gates' sentinels exist."""
    chosen = Gate(gate)
    return PARKS_AS.get(chosen) if chosen in closed else None


@dataclass(frozen=True)
class Tracking:
    """What the states table records about a tracked job."""

    job_class: str
    identifier: str
    gate: str = Gate.NONE.value

    @property
    def strand(self) -> str:
        """The ordering key: jobs sharing it run one at a time, in enqueue order (fits 255 chars)."""
        key = f"{self.job_class}#{self.identifier}"
        return key if len(key) <= 255 else f"{key[:200]}#{hashlib.sha256(key.encode()).hexdigest()}"


def tracking_of(owner: Any, job_class: str, args: tuple, kwargs: dict) -> Tracking | None:
    """The tracking a job's owner declares (``track`` and ``gate``), or None when untracked."""
    spec = getattr(owner, "track", None)
    if spec is None:
        return None
    gate = Gate(getattr(owner, "gate", None) or Gate.NONE).value
    if callable(spec):
        identifier = spec(*args, **kwargs)
    elif hasattr(owner, "perform") and not args and not kwargs:
        identifier = getattr(owner, spec)
    else:
        function = getattr(owner, "func", owner)
        identifier = inspect.signature(function).bind(*args, **kwargs).arguments[spec]
    return Tracking(job_class, str(identifier), gate)
