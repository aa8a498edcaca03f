"""The databases under test: an SQLite file in a temp dir, a MariaDB and a PostgreSQL database of our own.

Each knows its SQLAlchemy URL, how to start from an empty queue, how to open
a raw DB-API connection (for the reference loops and the pollers), how to
count the queue and how to load prepared rows fast (multi-row INSERTs).
"""
from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dj_daemon.schema import metadata

MYSQL_SERVER = os.environ.get("BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
#: A database on the PostgreSQL server to connect to while creating the bench's own
POSTGRESQL_SERVER = os.environ.get("BENCH_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


class Backend:
    name = ""
    url = ""
    paramstyle = "?"
    analyze = "ANALYZE TABLE {table}"

    def reset(self) -> None:
        """An empty schema: the tables dropped and created again by dj_daemon's own ``create_all``."""
        engine = create_engine(self.url)
        try:
            metadata.drop_all(engine)
            metadata.create_all(engine)
        finally:
            engine.dispose()

    def raw(self, autocommit: bool = True) -> Any:
        raise NotImplementedError

    def count(self, conn: Any) -> int:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM delayed_jobs")
        (n,) = cur.fetchone()
        cur.close()
        return int(n)

    def load(self, rows: list[dict[str, Any]], chunk: int = 1000, table: str = "delayed_jobs") -> None:
        """Insert rows (dicts of one shape) into ``table`` with multi-row INSERTs of ``chunk`` rows, one commit each."""
        if not rows:
            return
        columns = list(rows[0])
        conn = self.raw()
        try:
            cur = conn.cursor()
            if self.name == "sqlite":
                cur.execute("BEGIN")
            for start in range(0, len(rows), chunk):
                part = rows[start:start + chunk]
                one = "(" + ", ".join([self.paramstyle] * len(columns)) + ")"
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * len(part))
                cur.execute(sql, [self.value(row[c]) for row in part for c in columns])
            if self.name == "sqlite":
                cur.execute("COMMIT")
            else:
                conn.commit()
                # Fresh statistics before the timing starts: on a just-filled table InnoDB's were
                # stale (0 rows) for about a second, and the ceiling's SELECT sorted the whole
                # table for each batch meanwhile (9 ms at 20,000 rows), so that its runs differed
                # by a third depending on when the statistics caught up.
                cur.execute(self.analyze.format(table=table))
                if cur.description:
                    cur.fetchall()
                conn.commit()
        finally:
            conn.close()

    def value(self, value: Any) -> Any:
        return value

    def settle(self, table: str = "delayed_jobs") -> None:
        """Do now what a bulk load left the server to do in the background, so that what is timed
        next costs what the stored rows cost, not what their load does meanwhile: MariaDB went on
        writing the pages of 2M loaded rows for 18 s (``Innodb_buffer_pool_pages_dirty`` 4,368 to
        398 at ``innodb_io_capacity`` 200), the pickups' commits flushing their log beside it."""
        conn = self.raw(autocommit=True)  # VACUUM runs outside a transaction only
        try:
            cur = conn.cursor()
            for statement in self.settling:
                cur.execute(statement.format(table=table))
                if cur.description:
                    cur.fetchall()
        finally:
            conn.close()

    #: what ``settle`` runs
    settling: tuple[str, ...] = ()

    def sibling(self) -> "Backend":
        """A second database of this kind, empty, to time beside this one (close it afterwards)."""
        raise NotImplementedError

    def close(self) -> None:
        """Drop whatever this backend created."""


class SQLite(Backend):
    name = "sqlite"
    paramstyle = "?"
    settling = ("PRAGMA wal_checkpoint(TRUNCATE)",)  # the load's pages, from the WAL into the file

    def __init__(self, folder: Path, stem: str = "queue") -> None:
        self.folder = folder
        self.stem = stem
        self.serial = 0
        self.path = folder / f"{stem}.sqlite3"
        self.url = f"sqlite:///{self.path}"

    def reset(self) -> None:
        """A new file for each run (the old one deleted), in WAL mode as the store sets it."""
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.serial += 1
        self.path = self.folder / f"{self.stem}-{self.serial}.sqlite3"
        self.url = f"sqlite:///{self.path}"
        super().reset()

    def value(self, value: Any) -> Any:
        """Datetimes as SQLAlchemy stores them on SQLite (always with microseconds)."""
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value

    def sibling(self) -> "SQLite":
        return SQLite(self.folder, stem=f"{self.stem}-sibling")

    def raw(self, autocommit: bool = True) -> sqlite3.Connection:
        """Autocommit (no implicit BEGIN) whatever ``autocommit`` says, WAL and synchronous=NORMAL,
        as dj_daemon's store connects."""
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def close(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


class MariaDB(Backend):
    name = "mariadb"
    paramstyle = "%s"
    #: InnoDB writes the table's dirty pages (and stops purging it) for an export, synchronously
    settling = ("FLUSH TABLES {table} FOR EXPORT", "UNLOCK TABLES")

    def __init__(self, server: str = MYSQL_SERVER) -> None:
        self.server = server
        self.database = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {self.database}"))
        admin.dispose()
        self.url = make_url(server).set(database=self.database).render_as_string(hide_password=False)

    def sibling(self) -> "MariaDB":
        return MariaDB(self.server)

    def raw(self, database: bool = True, autocommit: bool = True) -> Any:
        import pymysql

        u = make_url(self.url)
        return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                               password=u.password or "", database=self.database if database else None,
                               autocommit=autocommit)

    def close(self) -> None:
        admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {self.database}"))
        admin.dispose()


class PostgreSQL(Backend):
    """A database of our own on ``BENCH_POSTGRESQL_URL``'s server."""

    name = "postgresql"
    paramstyle = "%s"
    analyze = "ANALYZE {table}"
    #: what autovacuum would do soon after a load of this size, then the dirty buffers written
    settling = ("VACUUM {table}", "CHECKPOINT")

    def __init__(self, server: str = POSTGRESQL_SERVER) -> None:
        self.server = server
        self.database = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._admin(f"CREATE DATABASE {self.database}")
        self.url = make_url(server).set(database=self.database).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(sql))
        admin.dispose()

    def sibling(self) -> "PostgreSQL":
        return PostgreSQL(self.server)

    def raw(self, autocommit: bool = False) -> Any:
        import psycopg

        return psycopg.connect(make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False),
                               autocommit=autocommit)

    def close(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")

    def transactions(self) -> int:
        """Commits and rollbacks on our database so far, read from the server's ``postgres`` database
        (so that reading them counts none). A backend reports its own within about a second of going
        idle, a burst's later ones within 10 s: read over windows of 20 s or more."""
        engine = create_engine(self.server, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                             "WHERE datname = :db"), {"db": self.database}).scalar())
        finally:
            engine.dispose()


def server_status(conn: Any, names: Iterable[str] = ("Questions", "Com_select", "Com_commit", "Com_update",
                                                       "Com_delete", "Com_insert", "Com_begin",
                                                       "Com_admin_commands", "Com_set_option")) -> dict[str, int]:
    """Global counters in one statement (which itself counts as one ``Questions`` and one ``Com_show_status``)."""
    cur = conn.cursor()
    wanted = ", ".join(f"'{n}'" for n in names)
    cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({wanted})")
    values = {name: int(value) for name, value in cur.fetchall()}
    cur.close()
    return values


def now_naive() -> datetime:
    from dj_daemon.job import utcnow

    return utcnow()
