"""Failover: each new connection goes to the first of the database URLs that answers, in order.

``url`` then ``failover_urls`` (config) name the same database on several
servers, such as the nodes of a Galera cluster. A connection that dies
with its server is invalidated by SQLAlchemy and the store retries its
transaction (see ``Store.transaction``); the pool's next connection comes
through here, so it lands on a server that answers. Connections are
made through SQLAlchemy's ``do_connect`` event, with each URL's own
connection arguments and the engine's ``connect_args`` (the timeouts), so
a dead server costs a refused connection (or ``connect_timeout`` if its
host is gone silent) before the next one is tried. The first URL comes
first again for every new connection: once its server is back, new
connections return to it.

A Galera node can be up and still refuse to serve: out of the primary
component (a partition), still joining, or set to ``wsrep_reject_queries``.
It accepts connections but answers statements with error 1047 ("WSREP has
not yet prepared node for application use"), all but SET, SHOW and a SELECT
of no table. So, with more than one URL on MySQL/MariaDB, a new connection
sends one ROLLBACK (a no-op on a new connection, refused by such a node)
before it is used, and a node that refuses is passed over like a dead one; and a
1047 on a connection in use counts as a lost connection, so that the store
retries its transaction on a new one, on the next node. (The enqueue path's
own driver cursor, ``driver.Cursors``, reports a 1047 to the caller instead.)

When none answers, the error is one line naming every server tried and
why, with no password (hosts and ports only).
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

#: MySQL's ER_UNKNOWN_COM_ERROR, which a Galera node that cannot serve gives to every statement.
NOT_SERVING = 1047
#: A new DB-API connection, as SQLAlchemy's ``do_connect`` event makes one (a dialect's ``connect``).
Connector = Callable[[Any, Any, Any, dict[str, Any]], Any]
#: The URLs and connector each engine was made with, so that ``sibling`` can make another like it.
_MADE: "weakref.WeakKeyDictionary[Engine, tuple[tuple[URL, ...], Connector | None]]" = weakref.WeakKeyDictionary()


def create(urls: Sequence[str | URL], connect: Connector | None = None, **options: Any) -> Engine:
    """An engine on ``urls[0]`` whose new connections go to the first of ``urls`` that answers,
    each made by ``connect`` (default: the driver's own)."""
    parsed = tuple(make_url(url) for url in urls)
    engine = create_engine(parsed[0], **options)
    if len(parsed) > 1:
        event.listen(engine, "do_connect", _first_answering(parsed, dict(options.get("connect_args", {})),
                                                            connect or _driver))
        event.listen(engine, "handle_error", _not_serving_is_gone)
    elif connect is not None:
        event.listen(engine, "do_connect", connect)
    _MADE[engine] = (parsed, connect)
    return engine


def sibling(engine: Engine, **options: Any) -> Engine:
    """Another engine over the same URLs as ``engine``, with other ``options`` (the idle poll's)."""
    urls, connect = _MADE.get(engine, ((engine.url,), None))
    return create(urls, connect, **options)


def where(url: URL) -> str:
    """A server as the error names it: host and port, never the user or password."""
    return f"{url.host or 'localhost'}:{url.port}" if url.port else url.host or url.render_as_string()


def _driver(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
    return dialect.connect(*cargs, **cparams)


def _first_answering(urls: tuple[URL, ...], connect_args: dict[str, Any], make: Connector) -> Connector:
    def connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        failures: list[tuple[str, Exception]] = []
        for url in urls:
            args, params = dialect.create_connect_args(url)
            params.update(connect_args)
            try:
                return _serving(dialect, make(dialect, conn_rec, args, params))
            except dialect.loaded_dbapi.Error as exc:
                failures.append((where(url), exc))
        raise _none_answered(failures)
    return connect


def _serving(dialect: Any, connection: Any) -> Any:
    """``connection``, once a MySQL server has accepted a statement (a Galera node that cannot
    serve raises 1047 here, and the connection is closed)."""
    if dialect.name not in ("mysql", "mariadb"):
        return connection  # PostgreSQL: libpq's target_session_attrs is the way (docs/scale-out.md)
    try:
        connection.rollback()
    except BaseException:
        connection.close()
        raise
    return connection


def _not_serving_is_gone(context: Any) -> None:
    """A 1047 on a connection in use: invalidate it, so that the store's retry reconnects."""
    args = getattr(context.original_exception, "args", ())
    if args and args[0] == NOT_SERVING:
        context.is_disconnect = True


def _none_answered(failures: list[tuple[str, Exception]]) -> Exception:
    """The last driver error's type (and MySQL error code, which says whether waiting can help),
    its message naming every server tried with the first line of its own error."""
    last = failures[-1][1]
    tried = "; ".join(f"{server}: {_first_line(exc)}" for server, exc in failures)
    message = f"none of {len(failures)} database servers answered ({tried})"
    code = last.args[0] if last.args and isinstance(last.args[0], int) else None
    try:
        return type(last)(*((code, message) if code is not None else (message,)))
    except TypeError:  # a driver error that cannot be built from a message: its own words then
        return last


def _first_line(exc: Exception) -> str:
    args = exc.args
    text = args[1] if len(args) > 1 and isinstance(args[0], int) else (args[0] if args else type(exc).__name__)
    lines = str(text).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
