"""delayed_job's "special smarts for active record objects", for SQLAlchemy ORM.

An ORM instance in a job's arguments (or as the receiver of ``delay(obj)``)
is stored as its class and primary key, and loaded fresh when the job runs,
through the session factory the application registers. The session is
committed when the job succeeds and rolled back when it fails.
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import DeserializationError, EnqueueError

RECORD_KEY = "__dj_record__"


def _state(obj: Any) -> Any:
    from sqlalchemy import inspect

    if isinstance(obj, type):
        return None
    state = inspect(obj, raiseerr=False)
    return state if getattr(state, "mapper", None) is not None else None


def is_record(obj: Any) -> bool:
    """True for an instance of an SQLAlchemy-mapped class."""
    return _state(obj) is not None


def is_record_class(cls: Any) -> bool:
    """True for an SQLAlchemy-mapped class: the only kind a stored record reference may name."""
    from sqlalchemy import inspect

    return isinstance(cls, type) and getattr(inspect(cls, raiseerr=False), "mapper", None) is not None


def reference(obj: Any) -> dict[str, Any]:
    """``{"__dj_record__": "pkg.mod:Class", "pk": [...]}`` for a persistent instance."""
    identity = _state(obj).identity
    if identity is None:
        raise EnqueueError(f"{type(obj).__name__} has no primary key yet: flush or commit it before enqueueing")
    cls = type(obj)
    return {RECORD_KEY: f"{cls.__module__}:{cls.__qualname__}", "pk": list(identity)}


class RecordLoader:
    """Loads records for one job in one session, opened only if the job needs one."""

    def __init__(self, session_factory: Callable[[], Any] | None) -> None:
        self._factory = session_factory
        self._session: Any = None

    def __call__(self, cls: type, pk: list[Any]) -> Any:
        if self._factory is None:
            raise DeserializationError(
                f"job needs a {cls.__name__} record but no session_factory is configured")
        if self._session is None:
            self._session = self._factory()
        key = pk[0] if len(pk) == 1 else tuple(pk)
        record = self._session.get(cls, key)
        if record is None:
            raise DeserializationError(f"{cls.__name__} record with primary key {pk} no longer exists")
        return record

    def finish(self, success: bool) -> None:
        """Commit after a successful job, roll back otherwise; always close."""
        if self._session is None:
            return
        try:
            if success:
                self._session.commit()
            else:
                self._session.rollback()
        finally:
            self._session.close()
            self._session = None
