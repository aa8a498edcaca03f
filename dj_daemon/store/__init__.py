"""The queue store: one face over every dialect.

Callers see one ``Store``, composed of a module per concern, each a mixin on
``Database`` (the engine and its transactions, retried on MySQL deadlocks and
lock-wait timeouts; see ``database``):
- ``queue``: a job's way, ``insert``, ``reserve``, ``complete``, ``release``,
  ``reschedule``, ``give_up``, ``destroy_failed``, and the idle poll ``has_ready``;
- ``registry``: the workers' heartbeat rows, and ``worker_gone``, which settles
  the jobs of a worker that ended;
- ``admin``: the operators' ``get``/``jobs``/``retry``/``delete``/``clear`` and
  the bounded ``counts`` and ``queue_depths``;
- ``states`` and ``tracked``: tracked jobs for ``long_jobs`` and the web page;
  ``cancels``: cancelling a job, waiting or running.
The dialect modules (``sqlite``, ``mysql``, ``postgresql``) supply what differs;
``open_store`` picks one from the URL.
"""
from __future__ import annotations

from types import ModuleType

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ..config import Config, mask_url
from ..errors import DatabaseError
from . import cancels, failover, mysql, postgresql, sqlite, states, tracked
from .admin import AdminVerbs
from .common import Filters
from .counting import COUNT_CAP, Counts, Depths
from .queue import QueueVerbs, Reserved
from .registry import WorkerRegistry

__all__ = ["Store", "Filters", "Reserved", "open_store", "Counts", "Depths", "COUNT_CAP"]
DIALECTS: dict[str, ModuleType] = {"sqlite": sqlite, "mysql": mysql, "mariadb": mysql, "postgresql": postgresql}


def open_store(config: Config, timeout: float | None = None) -> "Store":
    """A store on ``config.url``; a bad URL or missing driver is a one-line ``DatabaseError``.

    With ``timeout`` (seconds), no wait on the database lasts longer: connecting, a
    statement's answer, a lock another writer holds (each as the dialect can bound it,
    see its ``engine_options``), and no transaction is tried again once that long has
    passed since its first try. Without it, the drivers' own generous limits apply.
    """
    try:
        url = make_url(config.url)
        dialect = DIALECTS.get(url.get_backend_name())
        if dialect is None:
            raise DatabaseError(f"unsupported database {url.get_backend_name()!r} in {mask_url(config.url)}")
        engine = failover.create((url, *config.failover_urls), getattr(dialect, "connect", None),
                                 **dialect.engine_options(timeout))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"cannot use database {mask_url(config.url)}: {exc}") from None
    dialect.prepare(engine, timeout)
    return Store(engine, dialect, config.safe_url, timeout=timeout)


class Store(QueueVerbs, WorkerRegistry, AdminVerbs, states.TrackedVerbs, tracked.TrackedPages, cancels.CancelVerbs):
    """The work queue in one database; safe to use from one process at a time."""
