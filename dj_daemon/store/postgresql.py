"""PostgreSQL: SKIP LOCKED at READ COMMITTED, its default; LISTEN/NOTIFY for wake-ups.

An insert into ``delayed_jobs`` notifies ``CHANNEL`` through a statement
trigger (``NOTIFY_DDL``), so every enqueuing path (the driver's cursor, a
caller's transaction, the Django backend, another program) notifies in its
own transaction, and PostgreSQL delivers the notification at commit, never
for a rolled-back insert. Its payload is the earliest ``run_at`` of the
statement's rows in Unix seconds, so a listener can tell "ready now" from
"ready at". Identical notifications of one transaction are folded into one,
and a bulk insert notifies once. A row whose lock is freed notifies as well
(a row trigger), as it is ready again. The daemon installs the triggers when
it starts listening (``Listener``), so tables created before it get them too.
"""
from __future__ import annotations

import functools
import math
import re
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, select, update
from sqlalchemy.engine import Connection, Dialect, Engine

from ..job import Job
from ..schema import delayed_jobs

from . import common
from .common import RESERVED, Bound, Filters

#: One locking read reserves (``common.reserve_locking``); no two-step read measured here.
LOCK_BY_ID = False
#: psycopg sends BEGIN and COMMIT as round trips of their own. Where one statement is the whole
#: transaction, the store runs it in autocommit, one round trip where they are three: an
#: enqueue's INSERT (``driver.Cursors``; many rows go in a transaction opened by ``BEGIN``),
#: a read (``Store._read``: at READ COMMITTED each statement has its own snapshot in a
#: transaction too) and the reservation (``reserve_at_once``).
AUTOCOMMIT = True
BEGIN = "BEGIN"
#: Undefined table, unknown database, bad password, bad authorization, no privilege: no wait fixes these
#: (``Store._error``).
PERMANENT_STATES = frozenset({"42P01", "3D000", "28P01", "28000", "42501"})
#: The same refused at connect, where psycopg's error carries no SQLSTATE, only libpq's text.
PERMANENT_AT_CONNECT = re.compile(r'FATAL: +(database "[^"]*" does not exist|password authentication failed'
                                  r'|role "[^"]*" does not exist|no pg_hba\.conf entry)')


#: The longest wait for an answer where no ``timeout`` is given (workers, the CLIs, applications):
#: PyMySQL's read timeout on MySQL (``mysql.engine_options``), beyond any statement of the store.
ANSWER_WAIT_S = 120.0
#: The share of ``timeout`` a statement may run on the server: its cancel (which keeps the
#: connection, and stops the statement) comes before the client's deadline when the server lives.
SERVER_SHARE = 0.8


def engine_options(timeout: float | None = None) -> dict[str, Any]:
    """``timeout`` (the supervisor's) bounds connecting, each statement on the server, and a peer
    gone silent (TCP keepalives, unacknowledged data). Every wait for the server's answer is
    bounded on the client too, by ``timeout`` or ``ANSWER_WAIT_S`` (``driver``): libpq has no
    read timeout, and a server process frozen while its host still answers TCP trips none of
    the others."""
    options: dict[str, Any] = {"pool_reset_on_return": None, "module": driver(timeout or ANSWER_WAIT_S)}
    if timeout is None:
        return {**options, "connect_args": {"connect_timeout": 10}}
    seconds, ms = max(2, math.ceil(timeout)), round(timeout * 1000)  # libpq: whole seconds, at least 2
    on_server = f"-c statement_timeout={round(ms * SERVER_SHARE)}"
    return {**options,
            "connect_args": {"connect_timeout": seconds, "options": on_server,
                             "tcp_user_timeout": ms, "keepalives": 1, "keepalives_idle": seconds,
                             "keepalives_interval": 1, "keepalives_count": 2}}


@functools.cache
def driver(bound: float) -> Any:
    """psycopg as SQLAlchemy's DB-API module (``create_engine(module=...)``), except that its
    connections are ``answering_connection()``'s, waiting at most ``bound`` seconds for an answer."""
    import psycopg

    connection = answering_connection()

    class Driver:
        def __getattr__(self, name: str) -> Any:
            return getattr(psycopg, name)

        def connect(self, *args: Any, **kwargs: Any) -> Any:
            conn = connection.connect(*args, **kwargs)
            conn.bound = bound
            return conn

    return Driver()


@functools.cache
def answering_connection() -> type:
    """A psycopg ``Connection`` that gives up on an answer after ``bound`` seconds.

    psycopg runs libpq non-blocking and waits for the socket in ``Connection.wait``, polling it
    every 0.1 s: given a ``timeout``, the same wait ends with ``_WaitTimeout``. Past the
    deadline the connection is mid-protocol (a statement sent, its answer owed), so it is
    closed on the spot, as psycopg closes one whose cancel went unanswered: SQLAlchemy sees it
    broken (``is_disconnect``), invalidates it, and the store treats the error as a lost
    connection (``Store.transaction``: retried within its ``timeout``, then one ``DatabaseError``).
    The deadline costs no round trip and no system call: the wait reads the monotonic clock."""
    import psycopg
    from psycopg import errors

    expired = errors._WaitTimeout  # psycopg's, for an expired ``timeout`` (3.3.6+): without it no store opens

    class AnsweringConnection(psycopg.Connection):  # type: ignore[type-arg]
        bound: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if timeout is not None or self.bound is None:  # psycopg's own bounded waits (cancel, notifies)
                return super().wait(gen, interval, timeout)
            try:
                return super().wait(gen, interval, self.bound)
            except expired:
                self.pgconn.finish()
                raise psycopg.OperationalError(f"no answer from the server in {self.bound:g} s") from None

    return AnsweringConnection


def prepare(engine: Engine, timeout: float | None = None) -> None:
    """Nothing to install."""


def permanent(error: BaseException) -> bool:
    """Whether the driver's ``error`` is one that waiting cannot fix."""
    return getattr(error, "sqlstate", None) in PERMANENT_STATES or bool(PERMANENT_AT_CONNECT.search(str(error)))


def supports_skip_locked(engine: Engine) -> bool:
    return True


def bulk_insert(dialect: Dialect) -> None:
    """No statement of its own for many rows: the driver's executemany serves."""
    return None


@functools.lru_cache(maxsize=64)
def reservation(filters: Filters, due: Bound) -> Select:
    """``common.reserve_locking``'s two statements and ``common.cut_batch`` in one, so that it
    needs no transaction of its own: the ready rows locked (``FOR UPDATE SKIP LOCKED``), those
    before the first tracked one stamped ``:worker``'s, and every locked row returned in the
    reservation's order with ``mine`` saying which were stamped. A tracked row first is
    stamped by nobody here (``reserve_at_once``)."""
    locked = common.ready_rows(filters, True, due).cte("locked")
    numbered = select(locked, func.row_number().over(order_by=(locked.c.priority, locked.c.run_at, locked.c.id))
                      .label("place")).cte("numbered")
    cut = (select(func.coalesce(func.min(numbered.c.place), bindparam("limit", type_=Integer) + 1).label("at"))
           .where(numbered.c.strand.is_not(None)).cte("cut"))
    stamped = (update(delayed_jobs).where(delayed_jobs.c.id == numbered.c.id, numbered.c.place < cut.c.at)
               .values(locked_at=bindparam("now"), locked_by=bindparam("worker"), updated_at=bindparam("now"))
               .returning(delayed_jobs.c.id).cte("stamped"))
    return (select(*(numbered.c[column.name] for column in RESERVED), stamped.c.id.is_not(None).label("mine"))
            .select_from(numbered.outerjoin(stamped, stamped.c.id == numbered.c.id)).order_by(numbered.c.place))


def reserve_at_once(conn: Connection, worker: str, filters: Filters, now: datetime, limit: int,
                    due: common.Due) -> list[Job] | None:
    """Lock up to ``limit`` ready jobs for ``worker`` in one statement, run by ``conn`` in
    autocommit: one round trip and one commit, where a transaction (``Store.reserve``) costs
    four (BEGIN, the locking read, the stamp, COMMIT). None when the first ready job is a
    tracked one: it goes alone, with its state, through ``Store.reserve``'s transaction."""
    rows = conn.execute(reservation(filters, due.clause(conn)),
                        common.params(filters, now, limit=limit, worker=worker)).all()
    if rows and not rows[0].mine:
        return None
    return [common.reserved_job(row[:-1], worker, now) for row in rows if row.mine]


def due_scan() -> common.Due:
    """The stored priorities as an array: the btree reads one range per value, in order."""
    return common.StoredPriorities(as_array=True)


#: The channel an insert into ``delayed_jobs`` notifies (per database, as PostgreSQL scopes it).
CHANNEL = "dj_daemon_jobs"
#: The triggers and their functions. An insert notifies once per statement (``NOW()``-scheduled
#: rows are "due"; a statement that inserts no row notifies nothing). A row whose lock is freed
#: (a reschedule, a dead worker's jobs released, a restart's hold lifted, a batch given back)
#: notifies too, or the idle workers would find it at the safety poll only: its ``run_at``, or
#: the transaction's time if that is later, so that a statement freeing many due rows sends one.
#: The ``WHEN`` condition is evaluated inline for each updated row; a reservation's stamp (no
#: lock to a lock) and a completion (a DELETE) run no function.
NOTIFY_DDL = (
    f"""CREATE OR REPLACE FUNCTION {CHANNEL}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE due double precision;
    BEGIN
      SELECT extract(epoch FROM min(run_at)) INTO due FROM new_jobs;
      IF due IS NOT NULL THEN PERFORM pg_notify('{CHANNEL}', due::text); END IF;
      RETURN NULL;
    END $$""",
    f"DROP TRIGGER IF EXISTS {CHANNEL}_notify ON {delayed_jobs.name}",
    f"""CREATE TRIGGER {CHANNEL}_notify AFTER INSERT ON {delayed_jobs.name}
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION {CHANNEL}_notify()""",
    f"""CREATE OR REPLACE FUNCTION {CHANNEL}_freed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('{CHANNEL}', extract(epoch FROM greatest(NEW.run_at, now() AT TIME ZONE 'UTC'))::text);
      RETURN NULL;
    END $$""",
    f"DROP TRIGGER IF EXISTS {CHANNEL}_freed ON {delayed_jobs.name}",
    f"""CREATE TRIGGER {CHANNEL}_freed AFTER UPDATE OF locked_by ON {delayed_jobs.name} FOR EACH ROW
    WHEN (OLD.locked_by IS NOT NULL AND NEW.locked_by IS NULL AND NEW.failed_at IS NULL)
    EXECUTE FUNCTION {CHANNEL}_freed()""",
)
#: Whether both triggers are there (on the ``delayed_jobs`` of the search path).
HAS_TRIGGER = (f"SELECT 1 FROM pg_trigger WHERE tgname IN ('{CHANNEL}_notify', '{CHANNEL}_freed') "
               f"AND tgrelid = to_regclass('{delayed_jobs.name}') HAVING count(*) = 2")

class Listener:
    """One connection of its own that LISTENs on ``CHANNEL``, outside the pool.

    The caller selects on ``fileno()`` and, when it is readable, calls
    ``take()``; a lost connection raises from ``take`` and the caller opens
    a new ``Listener`` later. Opening installs the triggers if one is missing
    (under an advisory lock, so that two daemons starting together do not
    both create it).
    """

    def __init__(self, engine: Engine) -> None:
        raw = engine.raw_connection()
        self.conn: Any = raw.driver_connection
        raw.detach()  # ours for good: never back to the pool, never reset by it
        try:
            self.conn.rollback()
            self.conn.autocommit = True
            with self.conn.transaction():
                self.conn.execute(f"SELECT pg_advisory_xact_lock(hashtext('{CHANNEL}'))")
                if self.conn.execute(HAS_TRIGGER).fetchone() is None:
                    for statement in NOTIFY_DDL:
                        self.conn.execute(statement)
            self.conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return int(self.conn.fileno())

    def take(self) -> list[float]:
        """The due times (Unix seconds) of the notifications that arrived; empty if none did.
        A lost connection raises ``ConnectionError`` with libpq's message."""
        import psycopg

        pgconn = self.conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.Error as exc:
            raise ConnectionError(str(exc).strip() or type(exc).__name__) from exc
        due = []
        while (note := pgconn.notifies()) is not None:
            try:
                due.append(float(note.extra.decode()))
            except ValueError:
                due.append(0.0)  # a NOTIFY of someone else's on our channel: look now
        return due

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # a connection already gone has nothing to close
            pass
