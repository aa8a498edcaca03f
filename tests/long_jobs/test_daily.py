"""long_jobs day to day: a paged list, one job's detail and history, retrying jobs sent again at once,
a drain that holds only submissions, and status before the daemon's first start."""
from __future__ import annotations

import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, func, select

from dj_daemon.api import Queue
from dj_daemon.job import utcnow
from dj_daemon.schema import state_history
from dj_daemon.store import open_store
from dj_daemon.worker import Worker
from long_jobs import ops
from long_jobs.tracked import FROM_ROW
from tests import jobs
from tests.conftest import bin_path
from tests.long_jobs import daily_jobs
from tests.long_jobs.conftest import long_jobs
from tests.process.daemon import wait_for

FAILING = "tests.long_jobs.daily_jobs:copy_failing_until_flag"
MISSING = "RuntimeError: flag file missing"


def work_off(config, store) -> None:
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)


def ids(page: ops.TrackedPage) -> list[int]:
    return [job.id for job in page.jobs]


def test_list_pages_newest_first_with_filters_attempts_and_last_error(config, store, sentinel_dir, subprocess_env,
                                                                      tmp_path: Path) -> None:
    queue = Queue(config, store)
    retrying = queue.enqueue(daily_jobs.copy_failing_until_flag, str(tmp_path / "r"), 100, str(tmp_path / "never"))
    work_off(config, store)  # it fails once; its next try is an hour away
    for n in range(6):
        queue.enqueue(jobs.replicate, str(tmp_path / "x"), n)
    queue.enqueue(jobs.submit, str(tmp_path / "x"), 3)
    everything = ops.list_tracked(store, config, limit=100)
    assert ids(everything) == list(range(8, 0, -1)) and everything.next_before is None  # newest first
    first = ops.list_tracked(store, config, limit=3)
    assert ids(first) == [8, 7, 6] and first.next_before == 6
    second = ops.list_tracked(store, config, limit=3, before=first.next_before)
    assert ids(second) == [5, 4, 3] and second.next_before == 3
    last = ops.list_tracked(store, config, limit=3, before=second.next_before)
    assert ids(last) == [2, 1] and last.next_before is None
    assert ids(ops.list_tracked(store, config, identifier="3")) == [8, 5]
    assert ids(ops.list_tracked(store, config, identifier="3", job_class="tests.jobs:submit")) == [8]
    assert ids(ops.list_tracked(store, config, job_class="tests.jobs:replicate", before=4)) == [3, 2]
    assert ids(ops.list_tracked(store, config, host="testhost")) == [1]  # the one that ran
    assert ids(ops.list_tracked(store, config, state="enqueued", limit=2)) == [8, 7]
    assert ids(ops.list_tracked(store, config, identifier="nobody")) == []
    [job] = ops.list_tracked(store, config, host="testhost").jobs
    assert (job.delayed_job_id, job.attempts, job.state) == (retrying, 1, "enqueued")
    assert job.shown_state == f"retrying (attempt 2 of 25: {MISSING})"

    listed = long_jobs(subprocess_env, "list", "--limit", "3")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "state", "class", "identifier", "host", "attempts", "updated", "last", "error"]
    assert [int(line.split()[0]) for line in lines[1:4]] == [8, 7, 6]
    assert lines[4] == "more: long_jobs list --limit 3 --before 6"
    rest = long_jobs(subprocess_env, *lines[4].split()[2:]).stdout.splitlines()
    assert [int(line.split()[0]) for line in rest[1:4]] == [5, 4, 3] and rest[4].endswith("--before 3")
    failing = long_jobs(subprocess_env, "list", "--host", "testhost", "--class", FAILING).stdout.splitlines()
    assert re.fullmatch(rf" +1 retrying +{FAILING[:40]} +100 +testhost +1/25 +\S+ \S+ {MISSING}", failing[1]), failing
    assert len(failing) == 2  # no "more:" line on the last page
    for bad in (["--limit", "0"], ["--limit", "1001"], ["--before", "0"], ["--state", "retrying"]):
        usage = long_jobs(subprocess_env, "list", *bad)
        assert usage.returncode == 2 and "Invalid value" in usage.stderr, (bad, usage.stderr)


def test_show_has_the_queue_row_and_the_history_and_an_unknown_id_is_one_line(config, store, sentinel_dir,
                                                                                subprocess_env, tmp_path) -> None:
    flag = tmp_path / "flag"
    Queue(config, store).enqueue(daily_jobs.copy_failing_until_flag, str(tmp_path / "r"), 7, str(flag))
    work_off(config, store)
    detail = ops.show(store, config, 1)
    assert detail.job.shown_state == f"retrying (attempt 2 of 25: {MISSING})"
    assert detail.job.attempts == 1 and detail.job.locked_by is None and detail.job.run_at > detail.job.updated_at
    assert json.loads(detail.payload)["target"] == FAILING
    assert [(e.state, e.note) for e in detail.history] == [
        ("enqueued", None), ("running", None), ("enqueued", MISSING)]
    assert detail.history[1].hostname == "testhost"
    shown = long_jobs(subprocess_env, "show", "1")
    assert shown.returncode == 0, shown.stderr
    assert f"     state: retrying (attempt 2 of 25: {MISSING})\n" in shown.stdout
    assert re.search(r" queue row: job 1, attempts 1 of 25, run_at \S+ \S+, locked by -, failed at -\n",
                     shown.stdout), shown.stdout
    assert shown.stdout.splitlines()[-1].split()[2:] == ["enqueued", "testhost", *MISSING.split()]
    flag.touch()
    assert ops.retry_now(store, config, 1) == 1
    work_off(config, store)
    detail = ops.show(store, config, 1)
    assert detail.job.state == detail.job.shown_state == "completed" and detail.job.attempts is None
    assert [(e.state, e.note) for e in detail.history][3:] == [
        ("enqueued", "retry now, by an operator"), ("running", None), ("completed", None)]
    assert " queue row: none (it is not in the work queue)\n" in long_jobs(subprocess_env, "show", "1").stdout
    unknown = long_jobs(subprocess_env, "show", "424242")
    assert unknown.returncode == 1 and unknown.stderr == "long_jobs: error: no tracked job with id 424242\n"
    assert unknown.stdout == ""


def test_a_row_made_before_the_history_table_shows_what_its_times_tell(config, store, sentinel_dir,
                                                                        tmp_path) -> None:
    queue = Queue(config, store)
    queue.enqueue(jobs.replicate, str(tmp_path / "x"), 1)
    work_off(config, store)
    queue.enqueue(jobs.replicate, str(tmp_path / "x"), 2)
    store.transaction(lambda conn: conn.execute(delete(state_history)))  # as on a database of before
    done, waiting = ops.show(store, config, 1), ops.show(store, config, 2)
    assert [(e.state, e.at, e.note) for e in done.history] == [
        ("enqueued", done.job.created_at, FROM_ROW), ("running", done.job.started_at, FROM_ROW),
        ("completed", done.job.finished_at, FROM_ROW)]
    assert [(e.state, e.note) for e in waiting.history] == [("enqueued", FROM_ROW)]
    Worker(config, store, name="testhost:1").run(exit_when_empty=True)  # moved once the table exists
    assert [(e.state, e.note) for e in ops.show(store, config, 2).history] == [
        ("enqueued", FROM_ROW), ("running", None), ("completed", None)]


def test_untracked_jobs_write_no_history(config, store, sentinel_dir, tmp_path) -> None:
    queue = Queue(config, store)
    for _ in range(5):
        queue.enqueue(jobs.noop)
    queue.enqueue(jobs.always_fails, str(tmp_path / "x"))
    work_off(config, store)
    count = select(func.count()).select_from(state_history)
    assert store.transaction(lambda conn: conn.execute(count).scalar()) == 0


def test_retrying_jobs_are_taken_at_once_after_retry_now_or_resend(config, store, sentinel_dir, start_daemon,
                                                                   subprocess_env, tmp_path) -> None:
    side, flag = str(tmp_path / "runs.txt"), tmp_path / "flag"
    queue = Queue(config, store)
    for n in (1, 2):
        queue.enqueue(daily_jobs.copy_failing_until_flag, side, n, str(flag))
    start_daemon("-n", "2").wait_ready()
    wait_for(lambda: [j.retrying for j in ops.list_tracked(store, config).jobs] == [True, True], what="retrying")
    listed = long_jobs(subprocess_env, "list").stdout
    assert len(re.findall(rf" retrying +{FAILING[:40]} .* 1/25 .* {MISSING}\n", listed)) == 2, listed
    assert f"state: retrying (attempt 2 of 25: {MISSING})" in long_jobs(subprocess_env, "show", "1").stdout
    flag.touch()  # fixed: each runs at its next try, an hour away, unless sent again
    now = long_jobs(subprocess_env, "retry-now", "1")
    assert now.returncode == 0 and now.stdout == "tracked job 1 due now as job 1\n", now.stderr
    wait_for(lambda: store.get_tracked(1)["state"] == "completed", timeout=10, what="retried now")
    resent = long_jobs(subprocess_env, "resend", "2")
    assert resent.returncode == 0 and resent.stdout == "tracked job 2 due now as job 2\n", resent.stderr
    wait_for(lambda: store.get_tracked(2)["state"] == "completed", timeout=10, what="resent")
    assert jobs.runs(side).count("ran") == 4  # each failed once and ran once more
    for verb, fragment in (("retry-now", "tracked job 1 is completed, not waiting in the queue"),
                           ("resend", "tracked job 1 is completed; only jobs in error or waiting are resent")):
        refused = long_jobs(subprocess_env, verb, "1")
        assert refused.returncode == 1 and refused.stderr == f"long_jobs: error: {fragment}\n"


def test_retry_now_of_a_job_in_error_says_to_resend_it(config, store, sentinel_dir, subprocess_env, tmp_path) -> None:
    Queue(config, store).enqueue(jobs.tracked_fails_until_flag, str(tmp_path / "x"), 1, str(tmp_path / "never"))
    work_off(config, store)
    refused = long_jobs(subprocess_env, "retry-now", "1")
    assert refused.returncode == 1
    assert refused.stderr == "long_jobs: error: tracked job 1 is error, not waiting in the queue; resend it\n"
    assert long_jobs(subprocess_env, "resend", "1").stdout == "tracked job 1 re-enqueued as job 2\n"


def test_drain_hold_only_parks_submissions_while_copies_run_on(config, store, sentinel_dir, start_daemon,
                                                               subprocess_env, tmp_path) -> None:
    side, copy_flag, submission_flag = str(tmp_path / "runs.txt"), tmp_path / "copy", tmp_path / "submission"
    queue = Queue(config, store)
    copy = queue.enqueue(jobs.tracked_until_flag, side, 1, str(copy_flag))
    queue.enqueue(daily_jobs.submission_until_flag, side, 2, str(submission_flag))
    start_daemon("-n", "3")
    wait_for(lambda: jobs.runs(side).count("started") == 2, what="both running")
    out = tmp_path / "drain.out"
    with open(out, "w") as sink:
        drain = subprocess.Popen([bin_path("long_jobs"), "drain", "--hold-only", "--wait", "--timeout", "60"],
                                 env=subprocess_env, stdout=sink, stderr=subprocess.STDOUT)
    wait_for(lambda: "\nwaiting: " in out.read_text(), what="drain waiting for the submission")
    assert sorted(p.name for p in sentinel_dir.iterdir() if p.suffix == ".txt") == ["hold-submissions.txt"]
    submission_flag.touch()
    assert drain.wait(30) == 0, out.read_text()
    lines = out.read_text().splitlines()
    assert lines[0] == "holding submissions on testhost: hold-submissions.txt written"
    assert lines[1] == ("waiting: 1 tracked job running on this host: "
                        f"tests.long_jobs.daily_jobs:submission_until_flag 2 ({lines[1].rsplit('(', 1)[1]}")
    assert lines[-1] == "drained: no tracked job runs on this host"
    assert store.tracked(identifier="1")[0]["state"] == "running"  # the copy was not waited for, nor cut off
    queue.enqueue(jobs.submit, side, 3)
    queue.enqueue(jobs.replicate, side, 4)
    wait_for(lambda: store.tracked(identifier="3")[0]["state"] == "rejected_shutting_down", what="submission held")
    wait_for(lambda: store.tracked(identifier="4")[0]["state"] == "completed", what="copy ran")
    copy_flag.touch()
    wait_for(lambda: store.get_tracked(1)["state"] == "completed", what="the long copy done")
    restarted = long_jobs(subprocess_env, "restart")
    assert restarted.stdout.startswith("removed: hold-submissions.txt\n") and "1 job re-enqueued" in \
        restarted.stdout, restarted.stdout + restarted.stderr
    wait_for(lambda: store.tracked(identifier="3")[0]["state"] == "completed", what="held submission done")
    assert copy == 1


def test_status_before_the_first_start_has_no_sentinel_folder_and_is_not_draining(config, store, subprocess_env,
                                                                                   tmp_path) -> None:
    absent = tmp_path / "not-yet"
    env = {**subprocess_env, "DJ_SENTINEL_DIR": str(absent)}
    Queue(config, store).enqueue(jobs.replicate, str(tmp_path / "x"), 1)
    status = long_jobs(env, "status")
    assert status.returncode == 4, status.stderr  # no daemon runs: trouble, not an error of long_jobs
    assert f"draining: no (no sentinel folder {absent} yet: the daemon makes it at its start)" in status.stdout
    snapshot = json.loads(long_jobs(env, "status", "--json").stdout)
    assert snapshot["draining"] == {} and snapshot["sentinel_dir_exists"] is False
    assert long_jobs(env, "list").returncode == 0
    drain = long_jobs(env, "drain")
    assert drain.returncode == 1
    assert drain.stderr == f"long_jobs: error: sentinel_dir {absent} does not exist (create it, or set " \
                           "[long_jobs] sentinel_dir)\n"
    unwritable = long_jobs({**subprocess_env, "DJ_SENTINEL_DIR": "/proc/self"}, "drain", "--hold-only")
    assert unwritable.returncode == 1 and len(unwritable.stderr.splitlines()) == 1
    assert "sentinel_dir /proc/self is not writable" in unwritable.stderr
    assert not absent.exists()


def test_a_database_without_the_history_table_still_runs_tracked_jobs(config, store, sentinel_dir, tmp_path,
                                                                      caplog) -> None:
    """An application upgraded before ``delayed_job db init`` ran: tracked jobs go on, without history."""
    store.transaction(lambda conn: state_history.drop(conn))
    Queue(config, store).enqueue(jobs.replicate, str(tmp_path / "x"), 1)
    work_off(config, store)
    assert store.get_tracked(1)["state"] == "completed"
    assert "table delayed_job_state_history is missing" in caplog.text
    assert [(e.state, e.note) for e in ops.show(store, config, 1).history][-1] == ("completed", FROM_ROW)
    assert store.prune_completed(utcnow() + timedelta(days=1)) == (1, None)
    fresh = open_store(config)  # after db init, a process that starts keeps history again
    fresh.create_schema()
    Queue(config, fresh).enqueue(jobs.replicate, str(tmp_path / "x"), 2)
    assert [e.state for e in ops.show(fresh, config, 2).history] == ["enqueued"]
    fresh.dispose()
