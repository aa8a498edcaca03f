"""Who may see and do what: HTTP basic auth or a shared secret, read-only mode, CSRF tokens.

With ``web_password`` (or ``web_password_file``) set, every request needs it:
as basic auth (user ``web_user``, any user name when that is empty: a shared
secret), or as ``Authorization: Bearer <secret>``. A page asked for without
it gets 401 and the browser's prompt; a POST without it gets 403 and changes
nothing. Every POST also needs the CSRF token of its session's forms, and
none is taken in read-only mode. The password is compared in constant time
and never logged or shown.
"""
from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from flask import Response, abort, request, session

from dj_daemon.config import Config
from dj_daemon.errors import ConfigError

CSRF_FIELD = "csrf_token"
REALM = 'Basic realm="long_jobs", charset="UTF-8"'


@dataclass(frozen=True)
class Access:
    user: str = ""
    password: str = field(default="", repr=False)
    read_only: bool = False

    @classmethod
    def from_config(cls, config: Config) -> "Access":
        """The settings of ``[web]``; the password file is read here, by the page only."""
        password = config.web_password
        if config.web_password_file:
            try:
                password = Path(config.web_password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read web_password_file {config.web_password_file}: "
                                  f"{exc.strerror}") from None
        return cls(config.web_user, password, config.web_read_only)

    def user_of(self, header: str) -> str | None:
        """The user an ``Authorization`` header proves, or None when it proves nothing."""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return "token" if _same(value.strip(), self.password) else None
        if scheme.lower() != "basic":
            return None
        try:
            user, _, given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if not _same(given, self.password) or (self.user and not _same(user, self.user)):
            return None
        return user or "user"

    def check_request(self) -> None:
        """Before every request: credentials when a password is set, then, for a POST, the
        read-only mode and the CSRF token. Stops the request with 401 or 403."""
        if self.password:
            user = self.user_of(request.headers.get("Authorization", ""))
            if user is None:
                if request.method == "POST":
                    abort(403, "credentials needed")
                abort(Response("credentials needed\n", 401, {"WWW-Authenticate": REALM}))
            request.environ["long_jobs.user"] = user
        if request.method == "POST":
            if self.read_only:
                abort(403, "this page is read-only")
            expected = session.get(CSRF_FIELD)
            if not expected or not _same(request.form.get(CSRF_FIELD, ""), expected):
                abort(403, "missing or stale form token: reload the page and try again")


def csrf_token() -> str:
    """This session's token for its forms (made on first use)."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def who() -> str:
    """The user the request proved, or where it came from: for the action log."""
    user = request.environ.get("long_jobs.user")
    return f"{user}@{request.remote_addr}" if user else str(request.remote_addr)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
