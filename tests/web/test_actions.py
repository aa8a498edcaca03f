"""Every action through the WSGI interface: confirmation page, then a POST with its form token; and
what a POST without the token, without credentials or in read-only mode gets: 403, and no change."""
from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from dj_daemon import sentinels
from dj_daemon.store import Filters
from dj_daemon.worker import Worker
from tests import jobs
from tests.web.conftest import NO_SUCH_PID, confirm_and_post

DRAIN_FILES = {"defer_jobs.txt", "hold-submissions.txt"}


def state_of(store, state_id: int) -> str:
    return store.get_tracked(state_id)["state"]


def in_error(config, store, queue, tmp_path: Path) -> int:
    """A tracked job that failed for good."""
    queue.enqueue(jobs.tracked_fails_until_flag, str(tmp_path / "runs"), 3, str(tmp_path / "never"))
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    row = store.tracked()[-1]
    assert row["state"] == "error"
    return row["id"]


def test_drain_then_restart_through_the_page(client, config, store, queue, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, "long_jobs.web")
    done = confirm_and_post(client, "drain")
    assert done.status_code == 303 and done.headers["Location"] == "/"
    assert set(sentinels.present(config.sentinel_dir)) == DRAIN_FILES
    assert "draining testhost: defer_jobs.txt, hold-submissions.txt written" in client.get("/").get_data(True)
    assert "web: drain on testhost by 127.0.0.1: draining testhost" in caplog.text
    queue.enqueue(jobs.replicate, str(tmp_path / "runs"), 8)
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)
    assert store.tracked()[0]["state"] == "deferred"
    assert confirm_and_post(client, "restart").status_code == 303
    assert sentinels.present(config.sentinel_dir) == {} and store.tracked()[0]["state"] == "enqueued"
    assert "web: restart on testhost by 127.0.0.1: removed: defer_jobs.txt, hold-submissions.txt; " \
           "1 job(s) re-enqueued" in caplog.text


def test_reset_stalled_moves_a_dead_workers_job_to_error(client, config, store, queue, tmp_path) -> None:
    queue.enqueue(jobs.replicate, str(tmp_path / "runs"), 4)
    store.register_worker(f"testhost:{NO_SUCH_PID}", "testhost", NO_SUCH_PID)
    store.reserve(f"testhost:{NO_SUCH_PID}", Worker(config, store).filters, host="testhost")
    row = store.tracked()[0]
    assert row["state"] == "running"
    assert confirm_and_post(client, "reset-stalled").status_code == 303
    assert state_of(store, row["id"]) == "error"
    assert "stalled: worker testhost:99999999 is dead" in store.get_tracked(row["id"])["last_error"]


def test_resend_retry_now_and_delete_a_tracked_job(client, config, store, queue, tmp_path) -> None:
    state_id = in_error(config, store, queue, tmp_path)
    resent = confirm_and_post(client, "resend", state_id)
    assert resent.status_code == 303 and resent.headers["Location"] == f"/tracked/{state_id}"
    assert state_of(store, state_id) == "enqueued"
    assert "re-enqueued as job" in client.get(resent.headers["Location"]).get_data(True)
    assert confirm_and_post(client, "retry-now", state_id).status_code == 303
    gone = confirm_and_post(client, "delete", state_id)
    assert gone.headers["Location"] == "/tracked"
    assert client.get(f"/tracked/{state_id}").status_code == 404


def test_a_refused_action_says_why_and_changes_nothing(client, queue, store, tmp_path) -> None:
    queue.enqueue(jobs.replicate, str(tmp_path / "runs"), 4)
    state_id = store.tracked()[0]["id"]
    store.reserve("testhost:1", Filters(), host="testhost")
    refused = confirm_and_post(client, "delete", state_id)
    assert refused.status_code == 409 and "is running" in refused.get_data(True)
    assert state_of(store, state_id) == "running"


def test_retry_and_delete_a_work_queue_job(client, config, store, tmp_path) -> None:
    from dj_daemon.api import Queue
    job_id = Queue(config.replace(max_attempts=1), store).enqueue(jobs.always_fails, str(tmp_path / "f"))
    Worker(config.replace(max_attempts=1), store, name="testhost:1").run(exit_when_empty=True)
    assert store.get(job_id).state == "failed"
    assert confirm_and_post(client, "queue-retry", job_id).status_code == 303
    assert store.get(job_id).state == "waiting" and store.get(job_id).attempts == 0
    assert confirm_and_post(client, "queue-delete", job_id).headers["Location"] == "/queue"
    assert client.get(f"/queue/{job_id}").status_code == 404


def test_a_post_without_the_form_token_gets_403_and_changes_nothing(client, config, store, queue,
                                                                     tmp_path) -> None:
    state_id = in_error(config, store, queue, tmp_path)
    client.get("/actions/drain")  # the session has a token; the forged form does not carry it
    for name, form in (("drain", {}), ("resend", {"id": str(state_id)}),
                       ("resend", {"id": str(state_id), "csrf_token": "forged"})):
        assert client.post(f"/actions/{name}", data=form).status_code == 403
    assert sentinels.present(config.sentinel_dir) == {} and state_of(store, state_id) == "error"
    fresh = client.application.test_client()  # no session at all
    assert fresh.post("/actions/drain", data={"csrf_token": ""}).status_code == 403


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_guards_every_page_and_action(make_app, config, tmp_path) -> None:
    secret_file = tmp_path / "web-password"
    secret_file.write_text("s3cret\n")
    client = make_app(config, web_user="ops", web_password_file=str(secret_file)).test_client()
    refused = client.get("/")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert client.get("/", headers=basic("ops", "wrong")).status_code == 401
    assert client.get("/", headers=basic("other", "s3cret")).status_code == 401
    assert client.get("/tracked", headers=basic("ops", "s3cret")).status_code == 200
    assert client.post("/actions/drain", data={}).status_code == 403  # no credentials: 403, not 401
    page = client.get("/actions/drain", headers=basic("ops", "s3cret")).get_data(True)
    form = {"csrf_token": page.split('name="csrf_token" value="')[1].split('"')[0]}
    assert client.post("/actions/drain", data=form).status_code == 403
    assert sentinels.present(config.sentinel_dir) == {}
    assert confirm_and_post(client, "drain", **basic("ops", "s3cret")).status_code == 303
    assert set(sentinels.present(config.sentinel_dir)) == DRAIN_FILES
    assert "s3cret" not in page


def test_a_shared_secret_takes_any_user_name_or_a_bearer_token(make_app, config, caplog) -> None:
    caplog.set_level(logging.INFO, "long_jobs.web")
    client = make_app(config, web_password="tok-123").test_client()
    assert client.get("/", headers=basic("anyone", "tok-123")).status_code == 200
    assert client.get("/", headers={"Authorization": "Bearer tok-123"}).status_code == 200
    assert client.get("/", headers={"Authorization": "Bearer tok-124"}).status_code == 401
    assert confirm_and_post(client, "drain", **basic("alice", "tok-123")).status_code == 303
    assert "web: drain on testhost by alice@127.0.0.1" in caplog.text and "tok-123" not in caplog.text


def test_read_only_hides_the_actions_and_refuses_them(make_app, config, store, queue, tmp_path) -> None:
    state_id = in_error(config, store, queue, tmp_path)
    client = make_app(config, web_read_only=True).test_client()
    for page in ("/", f"/tracked/{state_id}"):
        body = client.get(page).get_data(True)
        assert "/actions/" not in body and "read-only" in body
    assert client.get("/actions/drain").status_code == 403
    assert client.post("/actions/drain", data={}).status_code == 403
    assert sentinels.present(config.sentinel_dir) == {}


@pytest.mark.parametrize("path", ["/actions/nothing", "/actions/resend?id=x"])
def test_unknown_actions_and_bad_ids_are_refused(client, path) -> None:
    assert client.get(path).status_code in (400, 404)
