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

When none answers, the error is one line naming every server tried and
why, with no password (hosts and ports only).
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

#: The URLs each failover engine was made over, so that ``sibling`` can make another like it.
_URLS: "weakref.WeakKeyDictionary[Engine, tuple[URL, ...]]" = weakref.WeakKeyDictionary()


def create(urls: Sequence[str | URL], **options: Any) -> Engine:
    """An engine on ``urls[0]`` whose new connections go to the first of ``urls`` that answers."""
    parsed = tuple(make_url(url) for url in urls)
    engine = create_engine(parsed[0], **options)
    if len(parsed) > 1:
        event.listen(engine, "do_connect", _first_answering(parsed, dict(options.get("connect_args", {}))))
        _URLS[engine] = parsed
    return engine


def sibling(engine: Engine, **options: Any) -> Engine:
    """Another engine over the same URLs as ``engine``, with other ``options`` (the idle poll's)."""
    return create(_URLS.get(engine, (engine.url,)), **options)


def where(url: URL) -> str:
    """A server as the error names it: host and port, never the user or password."""
    return f"{url.host or 'localhost'}:{url.port}" if url.port else url.host or url.render_as_string()


def _first_answering(urls: tuple[URL, ...], connect_args: dict[str, Any]) -> Callable[..., Any]:
    def connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        failures: list[tuple[str, Exception]] = []
        for url in urls:
            args, params = dialect.create_connect_args(url)
            params.update(connect_args)
            try:
                return dialect.connect(*args, **params)
            except dialect.loaded_dbapi.Error as exc:
                failures.append((where(url), exc))
        raise _none_answered(failures)
    return connect


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
