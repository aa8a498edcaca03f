"""The Flask app: ``create_app(config)`` builds it, ``serve`` runs it under waitress.

One store per app, shared by the server's threads (a pool of connections).
The page acts on the host it runs on: drain and restart write and remove
this host's sentinel files, as ``long_jobs`` does there.
"""
from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, render_template
from werkzeug.exceptions import HTTPException

from dj_daemon import display
from dj_daemon.config import Config
from dj_daemon.errors import ConfigError, DatabaseError, DJError, UnknownJobError
from dj_daemon.store import Store, open_store

from . import access, actions, views
from .counts import SlowCounts

log = logging.getLogger("long_jobs.web")


@dataclass
class Site:
    """What every request of one app uses."""

    config: Config
    store: Store
    access: access.Access
    counts: SlowCounts


def site() -> Site:
    return current_app.extensions["long_jobs"]


def create_app(config: Config, store: Store | None = None, secret_key: bytes | None = None) -> Flask:
    """The page's WSGI app on ``config``'s database (``store`` if given), to serve or to mount.

    ``secret_key`` signs the session cookie that holds the CSRF token; a fresh
    random one by default, so forms of an earlier run of the page are refused.
    """
    app = Flask(__name__)
    app.secret_key = secret_key or os.urandom(32)
    app.config.update(SESSION_COOKIE_NAME="long_jobs_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict", MAX_CONTENT_LENGTH=64 * 1024)
    store = store or open_store(config)
    app.extensions["long_jobs"] = Site(config, store, access.Access.from_config(config), SlowCounts(store))
    app.before_request(lambda: site().access.check_request())
    shown_time = functools.partial(display.when, shown_in=display.zone(config.display_timezone))
    app.context_processor(lambda: {"csrf_token": access.csrf_token, "site": site(),
                                   "read_only": site().access.read_only, "shown_time": shown_time})
    views.register(app)
    actions.register(app)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DJError, _dj_error)
    return app


def _http_error(exc: HTTPException) -> Any:
    if exc.response is not None:  # 401 with its WWW-Authenticate header
        return exc.response
    return render_template("error.html", code=exc.code, message=exc.description), exc.code


def _dj_error(exc: DJError) -> Any:
    """An unknown id is 404; any other refusal of the library (bad state, database down) 409 or 503."""
    code = 404 if isinstance(exc, UnknownJobError) and str(exc).startswith("no ") else 409
    code = 503 if isinstance(exc, DatabaseError) else code
    return render_template("error.html", code=code, message=str(exc).splitlines()[0]), code


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8080`` for IPv6) to its parts, or a one-line ``ConfigError``."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"web_bind must be HOST:PORT (for example 127.0.0.1:8080), not {bind!r}")
    return host, int(port)


def serve(config: Config, bind: str | None = None, threads: int = 4) -> None:
    """Run the page under waitress until interrupted, on ``bind`` (default ``config.web_bind``)."""
    import waitress

    from dj_daemon import log as logs

    host, port = parse_bind(bind or config.web_bind)
    logs.setup(config.log_level, filename=config.log_file, log_format=config.log_format, hostname=config.hostname,
               timezone_name=config.display_timezone)
    for name in ("long_jobs", "waitress"):  # the action log and the server's, with the daemon's format
        logging.getLogger(name).handlers = logging.getLogger("dj_daemon").handlers
        logging.getLogger(name).setLevel(config.log_level.upper())
        logging.getLogger(name).propagate = False  # waitress sets up the root logger too
    app = create_app(config)
    if not site_of(app).access.password and host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("serving on %s:%d with no password: anyone who reaches it can act on the jobs", host, port)
    log.info("long_jobs web on http://%s:%d/ (database %s%s)", host, port, config.safe_url,
             ", read-only" if config.web_read_only else "")
    waitress.serve(app, host=host, port=port, threads=threads, ident="long_jobs")


def site_of(app: Flask) -> Site:
    return app.extensions["long_jobs"]
