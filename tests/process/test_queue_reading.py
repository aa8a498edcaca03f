"""The supervisor's queue reading (STATUS=): taken every ``STATUS_EVERY`` seconds whatever it
found, and past the counting cap it says "10000+ queued", not a number it did not count."""
from __future__ import annotations

from datetime import timedelta

from dj_daemon.job import utcnow
from dj_daemon.store import COUNT_CAP, Store
from dj_daemon.supervisor import STATUS_EVERY
from tests.process.daemon import wait_for
from tests.store.test_stored_rows import stored


def queued_of(message: str) -> str:
    return message.rsplit(", ", 1)[-1].split(" queued")[0]


def test_status_says_at_least_past_the_cap_and_reads_at_a_fixed_interval(store: Store, start_daemon) -> None:
    stored(store, COUNT_CAP + 1, utcnow() - timedelta(minutes=1))  # due, in the default queue
    daemon = start_daemon("-n", "1", "--queues", "elsewhere")  # serves another queue: they stay due
    daemon.wait_ready()
    wait_for(lambda: any(queued_of(m) == f"{COUNT_CAP}+" for m in daemon.sent("STATUS=")),
             what="STATUS with 10000+ queued", timeout=4 * STATUS_EVERY)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM delayed_jobs WHERE id > 5")
    wait_for(lambda: queued_of(daemon.sent("STATUS=")[-1]) == "5", what="the next reading", timeout=3 * STATUS_EVERY)
