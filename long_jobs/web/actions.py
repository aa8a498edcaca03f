"""The actions: resend, retry now, reset stalled, delete, drain, restart (and the work queue's
retry and delete). Each is a confirmation page (GET), then a POST with the form's CSRF token
(checked in ``access``) that calls the library function the CLI calls, and is logged with who
did it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask, abort, current_app, flash, redirect, render_template, request, url_for

from long_jobs import ops

from .access import who

log = logging.getLogger("long_jobs.web")


@dataclass(frozen=True)
class Action:
    title: str  #: the button's words
    subject: str  #: "tracked", "queue" (the id of a tracked job, of a queue row), or "host"
    explains: str  #: what the confirmation page says it does
    run: Callable[[Any, int | None], str]  #: (site, id) -> what it did, one line
    cli: str  #: the command that does the same


def _drain(site: Any, _: int | None) -> str:
    done = ops.drain(site.config)
    return f"draining {done.host}: " + (", ".join(done.written) + " written" if done.written
                                        else "sentinel files were already present")


def _restart(site: Any, _: int | None) -> str:
    result = ops.restart(site.store, site.config)
    return (f"removed: {', '.join(result.removed) or 'no sentinel file was present'}; "
            f"{len(result.reenqueued)} job(s) re-enqueued")


def _reset_stalled(site: Any, _: int | None) -> str:
    moved = ops.reset_stalled(site.store, site.config)
    return f"{len(moved)} stalled job(s) reset to error" + "".join(f"; {r['id']}: {r['reason']}" for r in moved)


def _resend(site: Any, state_id: int | None) -> str:
    done = ops.resend(site.store, site.config, state_id)
    return f"tracked job {state_id} {done.action} as job {done.job_id}"


def _retry_now(site: Any, state_id: int | None) -> str:
    return f"tracked job {state_id} is due now as job {ops.retry_now(site.store, site.config, state_id)}"


def _delete(site: Any, state_id: int | None) -> str:
    ops.delete(site.store, state_id)
    return f"deleted tracked job {state_id}"


def _queue_retry(site: Any, job_id: int | None) -> str:
    site.store.retry(job_id)
    return f"job {job_id} runs now, its attempts started over"


def _queue_delete(site: Any, job_id: int | None) -> str:
    site.store.delete(job_id)
    return f"deleted job {job_id} from the work queue"


ACTIONS: dict[str, Action] = {
    "drain": Action("Drain this host", "host", "Write defer_jobs.txt and hold-submissions.txt on this host: "
                    "tracked jobs whose turn comes are parked, none running is cut off.", _drain, "long_jobs drain"),
    "restart": Action("Restart this host", "host", "Re-enqueue every deferred and rejected job at its place, "
                      "and remove this host's sentinel files.", _restart, "long_jobs restart"),
    "reset-stalled": Action("Reset stalled", "host", "Move every job shown running whose worker is gone to "
                            "error, with the reason.", _reset_stalled, "long_jobs reset-stalled"),
    "resend": Action("Resend", "tracked", "Send this tracked job again: one in error is re-enqueued, one "
                     "waiting to retry runs now.", _resend, "long_jobs resend ID"),
    "retry-now": Action("Retry now", "tracked", "Make this waiting tracked job due now, its attempts kept.",
                        _retry_now, "long_jobs retry-now ID"),
    "delete": Action("Delete", "tracked", "Forget this tracked job (not running), with its work-queue row.",
                     _delete, "long_jobs delete ID"),
    "queue-retry": Action("Retry now", "queue", "Make this work-queue job run now; its attempts start over.",
                          _queue_retry, "delayed_job jobs retry ID"),
    "queue-delete": Action("Delete", "queue", "Remove this job (not running) from the work queue; a tracked "
                           "one is left in error, saying so.", _queue_delete, "delayed_job jobs delete ID"),
}


def _action(name: str) -> Action:
    if name not in ACTIONS:
        abort(404, f"no action {name!r}")
    return ACTIONS[name]


def _subject_id(action: Action, source: Any) -> int | None:
    if action.subject == "host":
        return None
    text = source.get("id", "").strip()
    if not text.isdigit():
        abort(400, "id must be a job's number")
    return int(text)


def _back(action: Action, subject_id: int | None) -> str:
    """Where the confirmation's cancel and the done action lead: the job's page while it is there."""
    if action.subject == "tracked" and action.run is not _delete:
        return url_for("tracked_job", state_id=subject_id or 0)
    return {"host": url_for("overview"), "tracked": url_for("tracked"), "queue": url_for("queue")}[action.subject]


def confirm(name: str) -> Any:
    """The confirmation step: what the action will do, and the form that does it."""
    action = _action(name)
    if current_app.extensions["long_jobs"].access.read_only:
        abort(403, "this page is read-only")
    subject_id = _subject_id(action, request.args)
    return render_template("confirm.html", name=name, action=action, subject_id=subject_id,
                           back=_back(action, subject_id))


def perform(name: str) -> Any:
    """Do the action (credentials, read-only and CSRF were checked before), log who, and go back."""
    action = _action(name)
    subject_id = _subject_id(action, request.form)
    site = current_app.extensions["long_jobs"]
    target = f" {action.subject} job {subject_id}" if subject_id is not None else f" on {site.config.hostname}"
    try:
        said = action.run(site, subject_id)
    except Exception as exc:
        log.warning("web: %s%s by %s refused: %s", name, target, who(), str(exc).splitlines()[0] if str(exc) else exc)
        raise
    log.info("web: %s%s by %s: %s", name, target, who(), said)
    flash(said)
    return redirect(_back(action, subject_id), 303)


def register(app: Flask) -> None:
    app.add_url_rule("/actions/<name>", "confirm", confirm, methods=["GET"])
    app.add_url_rule("/actions/<name>", "perform", perform, methods=["POST"])
