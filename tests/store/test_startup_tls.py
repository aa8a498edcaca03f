"""PyMySQL's preferred TLS is set up once per process, not once per connection (issue 17).

With no TLS option, PyMySQL 1.2 offers TLS if the server has it, and built a
new default ``SSLContext`` (loading the system's CA bundle: 17-19 ms of CPU
here) for each connection to do so, whether the server had TLS or not. The
store's connections share one, built at the first TLS handshake
(``store.mysql.connect``); explicit TLS options keep their own context and
their meaning (TLS required).
"""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dj_daemon.errors import DatabaseError
from dj_daemon.store import Filters, Store, mysql, open_store
from tests.conftest import config_for, make_db_url

pymysql_connections = pytest.importorskip("pymysql.connections")


@pytest.fixture
def mysql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from make_db_url(request, "mysql", tmp_path)


@pytest.fixture
def contexts_built(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each default SSL context PyMySQL builds from now on."""
    built: list[object] = []
    create = pymysql_connections.ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> object:
        built.append(create(*args, **kwargs))
        return built[-1]
    monkeypatch.setattr(pymysql_connections.ssl, "create_default_context", counting)
    return built


def server_has_tls(url: str, tmp_path: Path) -> bool:
    store = open_store(config_for(url, tmp_path))
    try:
        return store.transaction(lambda conn: conn.execute(text("SELECT @@have_ssl")).scalar_one()) == "YES"
    finally:
        store.dispose()


def connect_often(store: Store) -> None:
    """New connections of every kind the daemon makes: pooled ones, reconnects, the idle poll's."""
    store.create_schema()
    for _ in range(3):
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        store.engine.dispose()
    store.has_ready(Filters())


@pytest.mark.parametrize("failover", [False, True], ids=["one-url", "failover"])
def test_connections_share_one_default_ssl_context(mysql_url: str, tmp_path: Path, contexts_built: list[object],
                                                   failover: bool) -> None:
    """At most one, at the first TLS handshake of the process; none with a server without TLS."""
    most = 1 if server_has_tls(mysql_url, tmp_path) else 0
    contexts_built.clear()
    config = config_for(mysql_url, tmp_path)
    if failover:
        config = config.replace(failover_urls=(mysql_url,))
    store = open_store(config)
    try:
        connect_often(store)
    finally:
        store.dispose()
    assert len(contexts_built) <= most, f"{len(contexts_built)} default SSL contexts for 5 connections"


def test_explicit_tls_options_still_require_tls(mysql_url: str, tmp_path: Path) -> None:
    """``ssl_check_hostname`` in the URL asks for TLS: used where the server has it, else refused."""
    have_tls = server_has_tls(mysql_url, tmp_path)
    url = make_url(mysql_url).update_query_dict({"ssl_check_hostname": "false"}).render_as_string(hide_password=False)
    store = open_store(config_for(url, tmp_path))
    try:
        if have_tls:
            cipher = store.transaction(lambda conn: conn.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one())
            assert cipher[1], "an explicit TLS option connected without TLS"
        else:
            with pytest.raises(DatabaseError, match="SSL is required"):
                store.transaction(lambda conn: conn.execute(text("SELECT 1")))
    finally:
        store.dispose()


def test_the_shared_context_is_pymysqls_unverified_preferred_one() -> None:
    """What a TLS handshake gets (this server may have no TLS to show it): one context, unverified."""
    make = mysql._shared_context_connection()
    one, two = (make(host="127.0.0.1", defer_connect=True) for _ in range(2))
    if not one.ssl:
        pytest.skip("this PyMySQL prefers no TLS")
    assert isinstance(one.ctx, ssl.SSLContext) and one.ctx is two.ctx
    assert one.ctx.verify_mode == ssl.CERT_NONE and not one.ctx.check_hostname
