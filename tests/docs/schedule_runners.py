"""Runners for the doc's recurring-jobs commands (``delayed_job schedule``)."""
from __future__ import annotations

import re

from tests.docs.runners import runs
from tests.docs.site import Site


@runs(r"delayed_job schedule")
def schedule(site: Site, match: re.Match[str]) -> None:
    """Lists each entry with how it recurs, its policy, its last run (none yet) and its next one. A
    yearly entry: it never comes due while the other commands of the walk run."""
    site.configure(**{"schedule:new-year": {"cron": "0 0 1 1 *", "target": "tests.jobs:record",
                                            "args": '["/dev/null", "new-year"]', "missed": "run_once"}})
    lines = site.sh(match.string).stdout.splitlines()
    assert lines[0].split()[:3] == ["name", "when", "missed"]
    assert re.fullmatch(r"new-year +cron 0 0 1 1 \* +run_once +never +- \d{4}-01-01 00:00:00Z tests\.jobs:record",
                        lines[1]), lines
