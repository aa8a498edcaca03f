"""Concurrency limits per key (Solid Queue's limits_concurrency, GoodJob's perform_limit): at most
``concurrency_limit`` jobs of one ``concurrency_key`` run at once, in enqueue order, the others
waiting without holding other jobs back; tracked strands are the case of limit one. On SQLite,
MariaDB and PostgreSQL, through the store, then with two daemons of distinct host names."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from dj_daemon.api import Queue, job
from dj_daemon.concurrency import MAX_LIMIT
from dj_daemon.errors import EnqueueError
from dj_daemon.job import utcnow
from dj_daemon.schema import delayed_jobs as dj
from dj_daemon.store import Filters
from tests.peers import jobs
from tests.process.daemon import wait_for


def reserve(store, worker: str):
    """The one job ``worker`` reserves now (a keyed job is reserved alone), or None."""
    got = store.reserve(worker, Filters(), limit=10).jobs
    return got[0].id if len(got) == 1 else (None if not got else got)


def test_at_most_the_limit_run_and_the_next_starts_when_one_ends(config, store) -> None:
    queue = Queue(config, store)
    keyed = [queue.enqueue(jobs.noop, n, concurrency_key="k", concurrency_limit=2) for n in range(4)]
    assert reserve(store, "h:1") == keyed[0]
    assert reserve(store, "h:2") == keyed[1]
    assert reserve(store, "h:3") is None  # two of "k" run: the third waits
    plain = queue.enqueue(jobs.noop, 9)
    assert reserve(store, "h:3") == plain  # ... without holding other jobs back
    running = [j for j in store.jobs() if j.id == keyed[0]]
    # the first ends (its row goes in its worker's next reservation, which takes the third)
    assert [j.id for j in store.reserve("h:1", Filters(), finished=running).jobs] == [keyed[2]]
    assert reserve(store, "h:4") is None


def test_keys_are_limited_apart_and_order_is_kept_within_a_key(config, store) -> None:
    queue = Queue(config, store)
    a = [queue.enqueue(jobs.noop, n, concurrency_key="a") for n in range(2)]
    b = [queue.enqueue(jobs.noop, n, concurrency_key="b", priority=-5) for n in range(2)]
    assert reserve(store, "h:1") == b[0]  # priority first, as ever
    assert reserve(store, "h:2") == a[0]
    assert reserve(store, "h:3") is None


def test_a_failed_elder_frees_its_place_and_a_retrying_one_keeps_it(config, store) -> None:
    queue = Queue(config, store)
    first, second, third = (queue.enqueue(jobs.noop, n, concurrency_key="k") for n in range(3))
    got = store.reserve("h:1", Filters()).jobs[0]
    store.reschedule(got, 1, "boom", utcnow() - timedelta(seconds=1))  # due again at once
    assert reserve(store, "h:2") == first  # between attempts it keeps its turn
    got = [j for j in store.jobs() if j.id == first][0]
    store.reschedule(got, 25, "boom", None)  # failed for good
    assert reserve(store, "h:3") == second


def test_the_limit_is_counted_up_to_its_greatest(config, store) -> None:
    """With MAX_LIMIT jobs running, the next of the key waits: the bounded count is exact there."""
    queue = Queue(config, store)
    ids = queue.enqueue_many(queue.prepare(jobs.noop, n, concurrency_key="wide", concurrency_limit=MAX_LIMIT)
                             for n in range(MAX_LIMIT + 1))
    assert ids == MAX_LIMIT + 1
    taken = [reserve(store, f"h:{n}") for n in range(MAX_LIMIT + 1)]
    assert None not in taken[:MAX_LIMIT] and taken[MAX_LIMIT] is None


def test_a_key_computed_from_the_arguments_and_tracked_strands_stay_apart(config, store, tmp_path) -> None:
    queue = Queue(config, store)
    limited = [queue.enqueue_call(jobs.limited_call, (7, "p", 0)) for _ in range(3)]
    other = queue.enqueue_call(jobs.limited_call, (8, "p", 0))
    tracked = queue.enqueue_call(jobs.cooperative, ("account:7", "p"))  # a strand of its own
    got = [reserve(store, f"h:{n}") for n in range(6)]
    assert got == [limited[0], limited[1], other, tracked, None, None]
    with store.engine.connect() as conn:
        stored = dict(conn.execute(select(dj.c.id, dj.c.strand_limit)).all())
    assert stored[limited[0]] == 2 and stored[tracked] is None


@pytest.mark.parametrize("options, message", [
    ({"concurrency_key": "k", "concurrency_limit": 0}, "concurrency_limit must be an integer from 1 to 100, not 0"),
    ({"concurrency_key": "k", "concurrency_limit": MAX_LIMIT + 1}, "from 1 to 100, not 101"),
    ({"concurrency_key": "k", "concurrency_limit": True}, "not True"),
    ({"concurrency_key": "k", "concurrency_limit": "2"}, "not '2'"),
    ({"concurrency_limit": 2}, "concurrency_limit needs a concurrency_key"),
    ({"concurrency_key": ""}, "concurrency_key must be non-empty text"),
    ({"concurrency_key": 5}, "concurrency_key must be non-empty text (or a callable of the arguments giving it), not int"),
])
def test_bad_options_are_refused_in_one_line(config, store, options, message) -> None:
    with pytest.raises(EnqueueError) as refused:
        Queue(config, store).enqueue(jobs.noop, 1, **options)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert store.jobs() == []


def test_a_tracked_job_takes_no_key() -> None:
    with pytest.raises(EnqueueError, match="concurrency_key cannot be combined with track"):
        job(track="token", concurrency_key="k")(jobs.noop)
    with pytest.raises(EnqueueError, match="from 1 to 100"):
        job(concurrency_key="k", concurrency_limit=0)(jobs.noop)


def test_db_init_adds_the_column_to_an_older_table_and_check_names_it(config, store, subprocess_env) -> None:
    import subprocess

    from tests.conftest import bin_path
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE delayed_jobs DROP COLUMN strand_limit"))
    checked = subprocess.run([bin_path("delayed_job"), "check"], env=subprocess_env, capture_output=True, text=True)
    assert checked.returncode == 1 and checked.stderr.count("\n") == 1, checked
    assert "missing column delayed_jobs.strand_limit" in checked.stderr and "delayed_job db init" in checked.stderr
    refused = subprocess.run([bin_path("delayed_job"), "enqueue", "tests.peers.jobs:noop"], env=subprocess_env,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "add the columns of this version with `delayed_job db init`" in refused.stderr
    init = subprocess.run([bin_path("delayed_job"), "db", "init"], env=subprocess_env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    job_id = Queue(config, store).enqueue(jobs.noop, 1, concurrency_key="k", concurrency_limit=3)
    with store.engine.connect() as conn:
        assert conn.execute(select(dj.c.strand_limit)).scalar_one() == 3
    shown = subprocess.run([bin_path("delayed_job"), "jobs", "show", str(job_id)], env=subprocess_env,
                           capture_output=True, text=True)
    assert "    strand: @k (at most 3 at once, in id order)" in shown.stdout, shown


def test_two_daemons_never_run_more_than_the_limit(config, store, start_daemon, tmp_path) -> None:
    """Two daemons of two host names, four workers each, sixteen jobs of one account limited to
    two: the jobs count themselves, and never more than two ran at once, nor fewer. Half of the
    jobs are in a queue only one daemon works and half in the other's, so both take part."""
    path = str(tmp_path / "running")
    queue = Queue(config, store)
    for n in range(16):
        queue.enqueue_call(jobs.limited_call, (1, path, 0.4), queue="ab"[n % 2])
    daemons = [start_daemon("-n", "4", env={"DJ_HOSTNAME": f"host-{name}", "DJ_QUEUES": name}) for name in "ab"]
    for daemon in daemons:
        daemon.wait_ready()
    wait_for(lambda: store.jobs() == [], timeout=90, what="the sixteen jobs done")
    assert jobs.most_at_once(path) == (2, 16)
    # a job of a strand is deleted as it ends, before its "job done" line: read the lines once all are there
    wait_for(lambda: sum(daemon.log().count("job done") for daemon in daemons) >= 16, what="16 'job done' lines")
    assert [daemon.log().count("job done") for daemon in daemons] == [8, 8]
