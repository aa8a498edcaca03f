"""Runners for the doc's "Metrics and log shippers": a real scrape with curl, and jq on JSON lines."""
from __future__ import annotations

import json
import re
import socket

from tests import jobs
from tests.docs.runners import runs
from tests.docs.site import Site
from tests.process.daemon import wait_for

DOC_PORT = "9400"  #: the port the doc shows; the test serves on a free one instead


def restarted_with(site: Site, **sections: dict[str, str]) -> None:
    """Edit the config and restart, as the doc says metrics and log settings need."""
    site.configure(**sections)
    site.stop()
    site.start()


@runs(r"curl -s http://127\.0\.0\.1:9400/metrics \| grep .*")
def curl_metrics(site: Site, match: re.Match[str]) -> None:
    """The endpoint answers with the counters of what the daemon did, and the doc's grep keeps them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    restarted_with(site, metrics={"metrics_port": port})
    mark = len(site.journal())
    job_id = site.enqueue(jobs.noop)
    wait_for(lambda: f"job done id={job_id} " in site.journal()[mark:], what="a job done")
    wait_for(lambda: "delayed_job_queue_depth" in site.sh(match.string.replace(DOC_PORT, port)).stdout,
             what="a queue reading (every 5 s)")
    lines = site.sh(match.string.replace(DOC_PORT, port)).stdout.splitlines()
    assert lines and all(re.match(r"delayed_job_(jobs_performed|jobs_failed|queue_depth)", line) for line in lines)
    assert 'delayed_job_jobs_performed_total{job_class="tests.jobs:noop",queue=""} 1.0' in lines, lines


@runs(r'journalctl -u delayed_job -p warning --since "1 hour ago" -o cat (\| jq .*)')
def jq_on_json_lines(site: Site, match: re.Match[str]) -> None:
    """With log_format = json the journal holds one object per line, still filed by priority: the doc's
    jq, run for real, gives one object per failed attempt with the job's fields."""
    restarted_with(site, daemon={"log_format": "json"})
    mark, warnings = len(site.journal()), len(site.journal(priority=4))
    failed = site.enqueue(jobs.flaky, str(site.tmp / "flaky.txt"))  # two attempts, both fail
    wait_for(lambda: f"job failed for good id={failed} " in site.journal()[mark:], what="the job failed for good")
    journal = site.tmp / "journal-json.txt"
    journal.write_text(site.journal(priority=4)[warnings:])
    objects = [json.loads(line) for line in site.sh(f"cat {journal} {match.group(1)}").stdout.splitlines()]
    assert [(o["job_id"], o["job_class"], o["attempt"]) for o in objects] == [
        (failed, "tests.jobs:flaky", 1), (failed, "tests.jobs:flaky", 2)], objects
    assert objects[1]["message"].startswith(f"job failed for good id={failed} ")
    restarted_with(site, daemon={"log_format": "text"})
