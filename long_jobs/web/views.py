"""The pages: overview, tracked jobs, one job, one identifier, the work queue and one queue row.

Each reads through ``long_jobs.ops`` or the store, a page at a time: no
page counts a whole table (see ``dj_daemon.store.pages`` and ``counts``).
"""
from __future__ import annotations

from typing import Any

from flask import Flask, abort, current_app, render_template, request

from dj_daemon import sentinels
from dj_daemon.job import utcnow
from dj_daemon.store import minutes, pages
from dj_daemon.tracking import State
from long_jobs import ops

from . import charts
from .masking import masked_payload

PAGE = 50
#: Counts on the overview stop here (shown as "10000+"): each is a bounded range of an index.
COUNT_CAP = 10000
STATES = [s.value for s in State]


def _site() -> Any:
    return current_app.extensions["long_jobs"]


def _int_arg(name: str) -> int | None:
    """An optional integer query argument; anything else is a 400."""
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        abort(400, f"{name} must be a whole number, not {text!r}")
    return int(text)


def _text_arg(name: str) -> str | None:
    return request.args.get(name, "").strip() or None


def overview() -> str:
    """This host's draining, holding and daemon state; workers; counts; the oldest waiting job; charts."""
    site, now = _site(), utcnow()
    config, store = site.config, site.store
    workers = ops.judge_workers(store.workers(), config, now)
    running = store.tracked(state=State.RUNNING.value, limit=None)  # at most one per worker
    stalled = ops.stalled(running, config, now, ops.dead_workers(workers))
    return render_template(
        "overview.html", now=now, host=config.hostname, sentinels=sentinels.present(config.sentinel_dir),
        daemon=ops.daemon_state(config, [w for w in workers if w["hostname"] == config.hostname]),
        workers=workers, stalled=stalled, bounded=pages.bounded_counts(store, COUNT_CAP), cap=COUNT_CAP,
        reading=site.counts.current(), every=site.counts.every, charts=charts.day_charts(minutes.since(store, charts.day_start(now), charts.BUCKET), now))


def tracked_list() -> str:
    """Tracked jobs, newest first, filtered by state, identifier, class and host."""
    site = _site()
    filters = {"state": _text_arg("state"), "identifier": _text_arg("identifier"),
               "job_class": _text_arg("job_class"), "host": _text_arg("host")}
    if filters["state"] is not None and filters["state"] not in STATES:
        abort(400, f"state must be one of {', '.join(STATES)}")
    page = ops.list_tracked(site.store, site.config, **filters, before=_int_arg("before"), limit=PAGE)
    return render_template("tracked.html", page=page, filters=filters, states=STATES)


def tracked_job(state_id: int) -> str:
    """One tracked job: payload with secrets masked, attempts, last error, history."""
    site = _site()
    detail = ops.show(site.store, site.config, state_id)
    return render_template("job.html", detail=detail, job=detail.job, payload=masked_payload(detail.payload))


def identifier(value: str) -> str:
    """All jobs of one identifier, oldest first, a page at a time from the newest."""
    site = _site()
    page = ops.list_tracked(site.store, site.config, identifier=value, job_class=_text_arg("job_class"),
                            before=_int_arg("before"), limit=PAGE)
    return render_template("identifier.html", identifier=value, page=page, jobs=list(reversed(page.jobs)))


def work_queue() -> str:
    """Waiting, running or failed rows of the work queue, newest first."""
    kind = request.args.get("kind", "waiting")
    if kind not in pages.QUEUE_KINDS:
        abort(400, f"kind must be one of {', '.join(pages.QUEUE_KINDS)}")
    rows = pages.queue_page(_site().store, kind, _int_arg("before"), PAGE + 1)
    next_before = rows[PAGE - 1].id if len(rows) > PAGE else None
    return render_template("queue.html", kind=kind, kinds=list(pages.QUEUE_KINDS), jobs=rows[:PAGE],
                           next_before=next_before)


def queue_job(job_id: int) -> str:
    """One work-queue row, its handler with secrets masked."""
    job = _site().store.get(job_id)
    return render_template("queue_job.html", job=job, payload=masked_payload(job.handler))


def register(app: Flask) -> None:
    app.add_url_rule("/", "overview", overview)
    app.add_url_rule("/tracked", "tracked", tracked_list)
    app.add_url_rule("/tracked/<int:state_id>", "tracked_job", tracked_job)
    app.add_url_rule("/identifier/<path:value>", "identifier", identifier)
    app.add_url_rule("/queue", "queue", work_queue)
    app.add_url_rule("/queue/<int:job_id>", "queue_job", queue_job)
