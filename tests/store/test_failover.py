"""``failover_urls`` on real servers: a connection goes to the first URL that answers, a connection
lost with its server is replaced through the list, and when none answers the error is one line
naming every server tried, never a password."""
from __future__ import annotations

import subprocess
from typing import Iterator

import pytest
from sqlalchemy.engine import make_url

from dj_daemon.api import Queue
from dj_daemon.errors import DatabaseError
from dj_daemon.store import Filters, open_store
from tests.conftest import SERVERS, bin_path
from tests.faults.test_db_outage import Relay
from tests.store.test_permanent_errors import free_port

on_servers = pytest.mark.parametrize("db_url", SERVERS, indirect=True)
SECRET = "hunter2-failover"


def down_url(url: str) -> str:
    """``url`` on a loopback port nothing listens on, with a password that must never be shown."""
    return make_url(url).set(host="127.0.0.1", port=free_port(), password=SECRET).render_as_string(
        hide_password=False)


@pytest.fixture
def relay(config) -> Iterator[Relay]:
    url = make_url(config.url)
    relay = Relay((url.host or "127.0.0.1", url.port or {"postgresql": 5432}.get(url.get_backend_name(), 3306)))
    yield relay
    relay.close()


def through(relay: Relay, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)


@on_servers
def test_a_dead_first_url_leaves_the_work_to_the_second(config, store) -> None:
    failing_over = open_store(config.replace(url=down_url(config.url), failover_urls=(config.url,)))
    try:
        Queue(config, failing_over).enqueue("tests.jobs:noop")
        assert failing_over.has_ready(Filters())  # the idle poll's own engine fails over too
        reserved = failing_over.reserve("testhost:1", Filters(), limit=5)
        assert [job.handler for job in reserved.jobs] == [job.handler for job in store.jobs()]
    finally:
        failing_over.dispose()


@on_servers
def test_a_connection_lost_with_its_server_is_replaced_by_the_next_url(config, store, relay) -> None:
    failing_over = open_store(config.replace(url=through(relay, config.url), failover_urls=(config.url,)))
    try:
        Queue(config, failing_over).enqueue_many(Queue(config, failing_over).prepare("tests.jobs:noop")
                                                 for _ in range(2))
        first = failing_over.reserve("testhost:1", Filters())
        assert relay.accepted >= 1 and len(first.jobs) == 1  # the first server served it
        relay.cut()  # the first server is gone, with the connection in the pool
        second = failing_over.reserve("testhost:1", Filters(), finished=first.jobs)
        assert relay.refused >= 1  # tried first, refused, then the second URL
        assert len(second.jobs) == 1 and second.jobs[0].id != first.jobs[0].id
        assert [job.id for job in store.jobs()] == [second.jobs[0].id]  # the first job's completion landed
    finally:
        failing_over.dispose()


@on_servers
def test_none_answering_is_one_line_naming_each_server(config) -> None:
    urls = [down_url(config.url) for _ in range(3)]
    failing_over = open_store(config.replace(url=urls[0], failover_urls=tuple(urls[1:])))
    try:
        with pytest.raises(DatabaseError) as raised:
            failing_over.reserve("testhost:1", Filters())
    finally:
        failing_over.dispose()
    message = str(raised.value)
    assert "\n" not in message and SECRET not in message and not raised.value.permanent
    assert "none of 3 database servers answered" in message
    assert all(f"127.0.0.1:{make_url(url).port}:" in message for url in urls)


@on_servers
def test_the_cli_takes_the_list_from_the_environment(config, store, subprocess_env) -> None:
    env = {**subprocess_env, "DJ_DATABASE_URL": down_url(config.url), "DJ_DATABASE_FAILOVER_URLS": config.url}
    ok = subprocess.run([bin_path("delayed_job"), "check"], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "config ok" in ok.stdout, ok.stderr
    assert SECRET not in ok.stdout + ok.stderr

    env["DJ_DATABASE_FAILOVER_URLS"] = down_url(config.url)
    env["DJ_DATABASE_PATIENCE"] = "0"
    bad = subprocess.run([bin_path("delayed_job"), "check"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "none of 2 database servers answered" in bad.stderr.strip().splitlines()[-1]
    assert SECRET not in bad.stdout + bad.stderr


def test_failover_urls_must_use_the_url_driver(tmp_path) -> None:
    from dj_daemon.config import load_config
    from dj_daemon.errors import ConfigError

    env = {"DJ_DATABASE_URL": "mysql+pymysql://root@db1/q",
           "DJ_DATABASE_FAILOVER_URLS": f"postgresql+psycopg://dj:{SECRET}@db2/q"}
    with pytest.raises(ConfigError) as raised:
        load_config(env=env, read_default=False)
    assert "same database driver" in str(raised.value) and SECRET not in str(raised.value)
    with pytest.raises(ConfigError):
        load_config(env={"DJ_DATABASE_FAILOVER_URLS": "sqlite:///other.sqlite3"}, read_default=False)
    two = load_config(env={**env, "DJ_DATABASE_FAILOVER_URLS": f"mysql+pymysql://root:{SECRET}@db2/q, "
                                                                 "mysql+pymysql://root@db3/q"}, read_default=False)
    assert two.failover_urls == (f"mysql+pymysql://root:{SECRET}@db2/q", "mysql+pymysql://root@db3/q")
    assert SECRET not in two.safe_url and "db3" in two.safe_url
