"""Every page through the WSGI interface (Flask's test client), on a real database of each dialect."""
from __future__ import annotations

import html
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from dj_daemon import sentinels
from dj_daemon.job import utcnow
from dj_daemon.schema import tracked_jobs
from dj_daemon.store import minutes
from dj_daemon.worker import Worker
from tests import jobs
from tests.web.conftest import NO_SUCH_PID


def work_off(config, store) -> None:
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)


def text(response) -> str:
    return response.get_data(as_text=True)


def shown(response) -> str:
    """The page as a person reads it: entities unescaped."""
    return html.unescape(text(response))


def test_overview_shows_host_state_workers_counts_and_charts(client, app, config, store, queue, tmp_path) -> None:
    side = str(tmp_path / "runs")
    queue.enqueue(jobs.replicate, side, 1)
    queue.enqueue(jobs.noop, queue="mail")
    store.register_worker(f"testhost:{NO_SUCH_PID}", "testhost", NO_SUCH_PID)
    sentinels.touch(config.sentinel_dir, config.hostname)
    minute = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=3)
    minutes.record(store, "testhost", minute, 40, 2, 7)
    minutes.record(store, "otherhost", minute, 2, 1, 3)
    app.extensions["long_jobs"].counts.refresh()
    page = client.get("/")
    body = text(page)
    assert page.status_code == 200
    assert 'id="draining"><span class="bad">yes, since' in body and 'id="holding"><span class="bad">yes' in body
    assert f"testhost:{NO_SUCH_PID}" in body and f"no: pid {NO_SUCH_PID} is not running on this host" in body
    assert '<a href="/tracked?state=enqueued">enqueued</a></th><td class="n">1<' in body
    assert '<a href="/queue?kind=waiting">waiting</a></th><td class="n">2<' in body
    assert "<td>mail</td><td class=\"n\">1</td>" in body and "<td>replication</td>" in body  # depth by queue
    assert body.count("<svg") == 2 and "(max 8.4)" in body and "(max 10)" in body  # both hosts added up
    assert "<script src" not in body and "http://" not in body.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_overview_counts_stop_at_the_cap(client, store, queue, monkeypatch, tmp_path) -> None:
    from long_jobs.web import views
    monkeypatch.setattr(views, "COUNT_CAP", 2)
    for n in range(4):
        queue.enqueue(jobs.replicate, str(tmp_path / "x"), n)
    assert '<a href="/tracked?state=enqueued">enqueued</a></th><td class="n">2+<' in text(client.get("/"))


def test_overview_never_waits_for_the_slow_counts(client, app, store, monkeypatch) -> None:
    """The first page says it is counting; the count runs in a thread, and later pages show it."""
    release, counts = threading.Event(), store.counts
    monkeypatch.setattr(store, "counts", lambda: release.wait(10) and counts())
    assert "counting the work queue" in text(client.get("/"))
    release.set()
    app.extensions["long_jobs"].counts.wait()
    body = text(client.get("/"))
    assert "counting the work queue" not in body and 'id="queue-totals"' in body


def test_tracked_list_filters_and_pages_newest_first(client, queue, monkeypatch, tmp_path) -> None:
    from long_jobs.web import views
    monkeypatch.setattr(views, "PAGE", 2)
    side = str(tmp_path / "runs")
    for n in range(3):
        queue.enqueue(jobs.replicate, side, n)
    queue.enqueue(jobs.submit, side, 1)
    first = text(client.get("/tracked"))
    assert first.index(">tests.jobs:submit<") < first.index(">2</a></td>")
    older = client.get("/tracked?before=" + first.split("before=")[1].split("&")[0].split('"')[0])
    assert '<a href="/identifier/0">0</a>' in text(older) and 'id="older"' not in text(older)
    only = text(client.get("/tracked?identifier=1&job_class=tests.jobs:submit"))
    assert only.count('href="/identifier/1"') == 1 and "tests.jobs:submit" in only
    assert "no tracked job" in text(client.get("/tracked?state=error"))
    assert "no tracked job" in text(client.get("/tracked?host=elsewhere"))
    assert client.get("/tracked?state=nonsense").status_code == 400
    assert client.get("/tracked?before=x").status_code == 400


def test_one_job_shows_masked_payload_attempts_error_and_history(client, config, store, queue, tmp_path) -> None:
    queue.enqueue(jobs.ordered_step, str(tmp_path / "x"), 7, "not-a-number", "nan")  # fails: retrying
    row = store.tracked()[0]
    secret = '{"target": "tests.jobs:ordered_step", "args": [], "kwargs": {"api_token": "s3cr3t", "n": 1}}'
    store.transaction(lambda conn: conn.execute(update(tracked_jobs).where(tracked_jobs.c.id == row["id"])
                                                .values(payload=secret)))
    work_off(config, store)
    body = shown(client.get(f"/tracked/{row['id']}"))
    assert "s3cr3t" not in body and '"api_token": "********"' in body and '"n": 1' in body
    assert "retrying (attempt 2 of 25: TypeError" in body
    assert 'id="error">Traceback' in body or "TypeError" in body.split('id="error">')[1]
    history = body.split('id="history">')[1].split("</table>")[0]
    assert history.index(">enqueued<") < history.index(">running<")
    assert client.get("/tracked/999999").status_code == 404


def test_one_identifier_lists_its_jobs_oldest_first(client, queue, tmp_path) -> None:
    side = str(tmp_path / "x")
    queue.enqueue(jobs.replicate, side, 5)
    queue.enqueue(jobs.submit, side, 5)
    queue.enqueue(jobs.replicate, side, 6)
    body = text(client.get("/identifier/5"))
    assert body.index("tests.jobs:replicate") < body.index("tests.jobs:submit")
    assert 'href="/identifier/6"' not in body


def test_work_queue_lists_waiting_running_and_failed_and_pages(client, config, store, queue, monkeypatch,
                                                               tmp_path) -> None:
    from long_jobs.web import views
    monkeypatch.setattr(views, "PAGE", 2)
    for _ in range(3):
        queue.enqueue(jobs.noop)
    waiting = text(client.get("/queue"))
    assert waiting.count("tests.jobs:noop") == 2 and 'id="older"' in waiting  # a page of two, newest first
    older = waiting.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
    assert text(client.get(older)).count("tests.jobs:noop") == 1
    type(queue)(config.replace(max_attempts=1), store).enqueue(jobs.always_fails, str(tmp_path / "f"))
    Worker(config.replace(max_attempts=1), store, name="testhost:1").run(exit_when_empty=True)
    failed = text(client.get("/queue?kind=failed"))
    assert "tests.jobs:always_fails" in failed and "tests.jobs:noop" not in failed
    assert "no running job" in text(client.get("/queue?kind=running"))
    assert client.get("/queue?kind=bogus").status_code == 400


def test_one_queue_job_shows_its_handler_masked(client, store, queue) -> None:
    job_id = queue.enqueue(jobs.remember, "password=hunter2 key=abc")
    body = text(client.get(f"/queue/{job_id}"))
    assert "hunter2" not in body and "tests.jobs:remember" in body
    assert client.get("/queue/424242").status_code == 404
