"""Runners for the doc's maintenance and troubleshooting commands: ``long_jobs``, ``delayed_job jobs``,
the init.d script and several hosts (the registry and the host-side runners are in ``runners``)."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from dj_daemon import sentinels
from dj_daemon.display import count
from dj_daemon.worker import Worker
from long_jobs import ops
from tests import jobs
from tests.docs.runners import fill, runs
from tests.docs.site import Site
from tests.long_jobs import daily_jobs
from tests.process.daemon import wait_for


# -- long_jobs ------------------------------------------------------------------------------------
@runs(r"long_jobs drain --wait --timeout \d+", key_flow=True)
def drain_wait(site: Site, match: re.Match[str]) -> None:
    """Waits, saying so, while copies run here, and cuts none off; a copy whose turn comes is parked."""
    site.ensure_daemon()
    sentinels.remove(site.config.sentinel_dir)  # a host that is not draining yet
    side, flag, output = (str(site.tmp / "drain.txt"), site.tmp / "copies-may-end", site.tmp / "drain.out")
    copies = [site.identifier() for _ in range(site.config.workers + 1)]  # one more than can run
    for identifier in copies:
        site.enqueue(jobs.tracked_until_flag, side, identifier, str(flag))

    def running() -> set[str]:
        return {row["identifier"] for row in site.store.tracked(state="running")} & set(map(str, copies))
    wait_for(lambda: len(running()) == site.config.workers, what="copies running")
    drain = site.spawn(match.string, output)
    wait_for(lambda: "\nwaiting: " in output.read_text(), what="drain waiting for the running copies")
    ran = running()
    flag.touch()
    assert drain.wait(30) == 0, output.read_text()
    lines = output.read_text().splitlines()
    assert lines[0] == f"draining {site.config.hostname}: defer_jobs.txt, hold-submissions.txt written"
    assert lines[1].startswith(f"waiting: {count(len(ran), 'tracked job')} running on this host: ")
    assert lines[-1] == "drained: no tracked job runs on this host"
    for identifier in copies:
        site.wait_state(identifier, "completed" if str(identifier) in ran else "deferred")


def copy_and_submission(site: Site, side: str) -> tuple[int, int]:
    """A tracked copy and a submission, enqueued in that order; their identifiers."""
    copy, submission = site.identifier(), site.identifier()
    site.enqueue(jobs.replicate, str(site.tmp / side), copy)
    site.enqueue(jobs.submit, str(site.tmp / side), submission)
    return copy, submission


@runs(r"long_jobs drain --hold-only")
def drain_hold_only(site: Site, match: re.Match[str]) -> None:
    """Writes hold-submissions.txt alone: a submission whose turn comes is held, a copy runs."""
    site.ensure_daemon()
    sentinels.remove(site.config.sentinel_dir)
    out = site.sh(match.string).stdout
    assert out == f"holding submissions on {site.config.hostname}: hold-submissions.txt written\n"
    assert set(sentinels.present(site.config.sentinel_dir)) == {sentinels.HOLD_FILE}
    copy, submission = copy_and_submission(site, "hold-only.txt")
    site.wait_state(copy, "completed")
    site.wait_state(submission, "rejected_shutting_down")
    ops.restart(site.store, site.config)  # as the doc says: restart ends it
    site.wait_state(submission, "completed")


@runs(r"long_jobs restart", key_flow=True)
def restart(site: Site, match: re.Match[str]) -> None:
    """Removes the drain files; every job parked for this host is enqueued again, once, and completes."""
    site.ensure_daemon()
    ops.drain(site.config)
    copy, submission = copy_and_submission(site, "restart.txt")
    site.wait_state(copy, "deferred")
    site.wait_state(submission, "rejected_shutting_down")
    parked = [row for row in site.store.tracked(limit=None) if row["state"] == "deferred"
              or (row["state"] == "rejected_shutting_down" and row["hostname"] == site.config.hostname)]
    out = site.sh(match.string).stdout
    assert out.startswith("removed: defer_jobs.txt, hold-submissions.txt\n")
    assert out.endswith(f"\n{count(len(parked), 'job')} re-enqueued\n"), out
    assert {row["state"] for row in site.store.tracked(limit=None) if row["id"] in [r["id"] for r in parked]} \
        <= {"enqueued", "running", "completed"}
    for identifier in (copy, submission):
        site.wait_state(identifier, "completed")


@runs(r"long_jobs status", key_flow=True)
def status(site: Site, match: re.Match[str]) -> None:
    """Exit 0 on a host at work, 3 once the drain files are there (exit 4: see ``reset_stalled``)."""
    site.ensure_daemon()
    sentinels.remove(site.config.sentinel_dir)
    normal = site.sh(match.string).stdout
    assert "draining: no (no sentinel file)" in normal and "stalled (running, worker gone):\n  none" in normal
    ops.drain(site.config)
    assert "DRAINING: defer_jobs.txt since " in site.sh(match.string, expect=3).stdout
    sentinels.remove(site.config.sentinel_dir)


@runs(r"long_jobs reset-stalled")
def reset_stalled(site: Site, match: re.Match[str]) -> None:
    """The whole daemon dies mid-job: status exits 4 with the job stalled, reset-stalled moves it to
    error and out of the queue, so the next daemon does not run it again."""
    assert site.initd_pid() is None  # a daemon left running would free the job itself
    sentinels.remove(site.config.sentinel_dir)
    site.start()
    side, flag = str(site.tmp / "stalled.txt"), site.tmp / "stalled-flag"
    identifier = site.identifier()
    site.enqueue(jobs.tracked_until_flag, side, identifier, str(flag))
    site.wait_state(identifier, "running")
    site.crash()
    wait_for(lambda: ops.status(site.store, site.config)["stalled"], what="the job shown stalled")
    assert ops.exit_code(ops.status(site.store, site.config)) == ops.EXIT_TROUBLE
    out = site.sh(match.string).stdout
    assert re.match(rf"\d+ tests\.jobs:tracked_until_flag {identifier} -> error: worker testhost:\d+ is dead: pid \d+ ",
                    out) and out.endswith("\n1 stalled job reset\n"), out
    assert site.tracked(identifier)["state"] == "error"
    assert site.tracked(identifier)["last_error"].startswith("stalled: worker testhost:")
    flag.touch()
    site.start()
    assert not [job for job in site.store.jobs() if job.name == "tests.jobs:tracked_until_flag"]


def assert_listed(site: Site, command: str, line: str, state: str) -> None:
    """``command`` lists a line matching ``line`` and, below its header, only jobs in ``state``."""
    lines = site.sh(command).stdout.splitlines()
    assert any(re.fullmatch(line, listed) for listed in lines), lines
    assert all(f" {state} " in listed for listed in lines[1:]), lines


def errored_copy(site: Site, flag: Path) -> dict[str, Any]:
    """A tracked copy that failed for good (max_attempts=1); it succeeds once ``flag`` exists."""
    site.ensure_daemon()
    sentinels.remove(site.config.sentinel_dir)
    identifier = site.identifier()
    site.enqueue(jobs.tracked_fails_until_flag, str(site.tmp / "errored.txt"), identifier, str(flag))
    return site.wait_state(identifier, "error")


@runs(r"long_jobs list --state error")
def list_errors(site: Site, match: re.Match[str]) -> None:
    row = errored_copy(site, site.tmp / "never")
    assert_listed(site, match.string,
                  rf" *{row['id']} error +tests\.jobs:tracked_fails_until_flag +{row['identifier']} .*", "error")


@runs(r"long_jobs resend ID")
def resend(site: Site, match: re.Match[str]) -> None:
    """ID is the tracked job's (the first column of ``long_jobs list``); its cause fixed, it completes."""
    sent_again(site, match, errored_copy, lambda row: rf"tracked job {row['id']} re-enqueued as job \d+\n")


def sent_again(site: Site, match: re.Match[str], failing: Callable[[Site, Path], dict[str, Any]],
               said: Callable[[dict[str, Any]], str]) -> None:
    """A tracked copy made by ``failing``, its cause then fixed, sent again by the doc's command: the
    command prints what ``said`` matches, and the copy completes (its own next try is an hour away or never)."""
    flag = site.tmp / f"fixed-{site.identifier()}"
    row = failing(site, flag)
    flag.touch()
    out = site.sh(fill(match.string, ID=row["id"])).stdout
    assert re.fullmatch(said(row), out), out
    site.wait_state(int(row["identifier"]), "completed")


def retrying_copy(site: Site, flag: Path) -> dict[str, Any]:
    """A tracked copy that failed once and waits an hour for its next try; it succeeds once ``flag`` exists."""
    site.ensure_daemon()
    sentinels.remove(site.config.sentinel_dir)
    identifier = site.identifier()
    site.enqueue(daily_jobs.copy_failing_until_flag, str(site.tmp / "retrying.txt"), identifier, str(flag))
    wait_for(lambda: site.tracked(identifier)["last_error"] is not None, what="a failed attempt")
    return site.tracked(identifier)


@runs(r"long_jobs show ID")
def show(site: Site, match: re.Match[str]) -> None:
    """The tracked row says retrying, with the attempt to come and the error; then the queue row and history."""
    row = retrying_copy(site, site.tmp / "never")
    out = site.sh(fill(match.string, ID=row["id"])).stdout
    assert "     state: retrying (attempt 2 of 25: RuntimeError: flag file missing)\n" in out, out
    assert re.search(rf" queue row: job {row['delayed_job_id']}, attempts 1 of 25, run_at ", out), out
    history = out.split("\nhistory:\n")[1].splitlines()
    assert [line.split()[2] for line in history] == ["enqueued", "running", "enqueued"], history


@runs(r"long_jobs retry-now ID")
def retry_now(site: Site, match: re.Match[str]) -> None:
    """Its cause fixed, a retrying copy runs at once, not at its next try an hour away."""
    sent_again(site, match, retrying_copy,
               lambda row: f"tracked job {row['id']} due now as job {row['delayed_job_id']}\n")


# -- delayed_job jobs -----------------------------------------------------------------------------
def failed_job(site: Site, side: str) -> int:
    """An untracked job that failed for good (``tests.jobs.flaky``: two attempts, no backoff)."""
    site.ensure_daemon()
    job_id = site.enqueue(jobs.flaky, side)
    wait_for(lambda: site.store.get(job_id).failed_at is not None, what="a job failed for good")
    return job_id


@runs(r"delayed_job jobs list --failed")
def jobs_list_failed(site: Site, match: re.Match[str]) -> None:
    job_id = failed_job(site, str(site.tmp / "flaky-listed.txt"))
    assert_listed(site, match.string, rf" *{job_id} failed .* tests\.jobs:flaky  ValueError: this job always fails",
                  "failed")


@runs(r"delayed_job jobs show ID")
def jobs_show(site: Site, match: re.Match[str]) -> None:
    """Every column, and the whole last error: exception, message and traceback."""
    job_id = failed_job(site, str(site.tmp / "flaky-shown.txt"))
    out = site.sh(fill(match.string, ID=job_id)).stdout
    assert f"        id: {job_id}\n" in out and " failed_at: None" not in out
    assert "last_error: ValueError: this job always fails" in out and "tests/jobs.py" in out


@runs(r"delayed_job jobs retry ID")
def jobs_retry(site: Site, match: re.Match[str]) -> None:
    """The failed job runs again at once, with its attempts from zero: two more runs of ``flaky``."""
    side = str(site.tmp / "flaky-retried.txt")
    job_id = failed_job(site, side)
    assert site.sh(fill(match.string, ID=job_id)).stdout == f"job {job_id} (tests.jobs:flaky) queued to run now\n"
    wait_for(lambda: len(jobs.runs(side)) == 4 and site.store.get(job_id).failed_at is not None,
             what="two more attempts")


@runs(r"delayed_job jobs list --waiting --queue (\S+)")
def jobs_list_waiting(site: Site, match: re.Match[str]) -> None:
    """A job of that queue waiting for its run_at is listed with it; one of another queue is not."""
    later = site.enqueue(jobs.noop, queue=match.group(1), run_at=timedelta(hours=1))
    elsewhere = site.enqueue(jobs.noop, queue="mail", run_at=timedelta(hours=1))
    out = site.sh(match.string).stdout
    assert f"{later:>8} waiting  {match.group(1):12}" in out
    assert f"{site.store.get(later).run_at:%Y-%m-%d %H:%M:%S}" in out and f"{elsewhere:>8} " not in out
    for job_id in (later, elsewhere):
        site.store.delete(job_id)


# -- init.d ---------------------------------------------------------------------------------------
def initd_up(site: Site) -> int:
    """The init.d daemon's pid; started through the script (systemd's stopped: a host has one) if need be."""
    if site.initd_pid() is None:
        site.stop()
        site.initd("/etc/init.d/delayed_job start")
    return site.initd_pid()


@runs(r"/etc/init\.d/delayed_job start")
def initd_start(site: Site, match: re.Match[str]) -> None:
    """Its daemon runs the jobs and logs them to LOGFILE."""
    site.stop()
    out = site.initd(match.string).stdout
    pid = site.initd_pid()
    assert pid is not None and f"delayed_job started (pid {pid})" in out
    side, mark = str(site.tmp / "initd.txt"), len(site.initd_log.read_text())
    job_id = site.enqueue(jobs.record, side, "via-initd")
    wait_for(lambda: jobs.runs(side) == ["via-initd"], what="a job run by the init.d daemon")
    wait_for(lambda: f"job done id={job_id} " in site.initd_log.read_text()[mark:], what="the job logged")


@runs(r"/etc/init\.d/delayed_job status")
def initd_status(site: Site, match: re.Match[str]) -> None:
    pid = initd_up(site)
    assert site.initd(match.string).stdout.strip() == f"delayed_job is running (pid {pid})"


@runs(r"/etc/init\.d/delayed_job reload")
def initd_reload(site: Site, match: re.Match[str]) -> None:
    """The same HUP as under systemd: the daemon stays, its log says the reload completed."""
    pid = initd_up(site)
    done = site.initd_log.read_text().count("reload complete")
    site.initd(match.string)
    wait_for(lambda: site.initd_log.read_text().count("reload complete") > done, what="reload complete")
    assert site.initd_pid() == pid


@runs(r"/etc/init\.d/delayed_job stop")
def initd_stop(site: Site, match: re.Match[str]) -> None:
    """Waits for the job in hand, removes the pidfile; status then exits 3."""
    pid = initd_up(site)
    side = str(site.tmp / "initd-stop.txt")
    site.enqueue(jobs.sleep_then_record, side, 0.5)
    wait_for(lambda: jobs.runs(side) == ["started"], what="a job running")
    assert f"delayed_job stopped (pid {pid})" in site.initd(match.string).stdout
    assert jobs.runs(side) == ["started", "done"] and not Path(site.config.pidfile).exists()
    assert site.initd("/etc/init.d/delayed_job status", expect=3).stdout == "delayed_job is not running\n"


# -- several hosts --------------------------------------------------------------------------------
@runs(r"long_jobs restart --host OLDHOST")
def restart_other_host(site: Site, match: re.Match[str]) -> None:
    """OLDHOST's rejected submission moves here and runs, with this host's own. Each host parks one
    through a worker of its name, with the daemon stopped."""
    site.stop()
    assert site.initd_pid() is None
    side = str(site.tmp / "hosts.txt")
    parked = {}
    for hostname in ("oldhost", site.config.hostname):
        config = site.config.replace(hostname=hostname, sentinel_dir=str(site.tmp / f"sentinels-{hostname}"))
        Path(config.sentinel_dir).mkdir(exist_ok=True)
        ops.drain(config)
        parked[hostname] = site.identifier()
        site.enqueue(jobs.submit, side, parked[hostname])
        Worker(config, site.store, name=f"{hostname}:1").run(exit_when_empty=True)
        assert site.tracked(parked[hostname])["state"] == "rejected_shutting_down"
    moving = [row for row in site.store.tracked(limit=None) if row["state"] in ("deferred", "rejected_shutting_down")]
    out = site.sh(fill(match.string, OLDHOST="oldhost")).stdout
    assert out.endswith(f"\n{count(len(moving), 'job')} re-enqueued\n"), out
    moved, own = site.tracked(parked["oldhost"]), site.tracked(parked[site.config.hostname])
    assert (moved["state"], moved["hostname"]) == ("enqueued", site.config.hostname)
    assert own["state"] == "enqueued"
    site.start()
    for identifier in parked.values():
        site.wait_state(identifier, "completed")
