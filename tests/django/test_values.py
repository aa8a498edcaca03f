"""How a task's status is read from its queue row and its result row (no database needed)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

T0 = datetime(2030, 1, 1, 12, 0, 0)
LATER = T0 + timedelta(seconds=5)


def job(locked_at: datetime | None = None, failed_at: datetime | None = None) -> dict:
    return {"locked_at": locked_at, "failed_at": failed_at}


def row(status: str, last_attempted_at: datetime | None = T0) -> dict:
    return {"status": status, "last_attempted_at": last_attempted_at}


@pytest.mark.parametrize(("queued", "result", "expected"), [
    (None, None, None),                                  # no such task
    (job(), None, "READY"),                              # waiting
    (job(locked_at=T0), None, "READY"),                  # reserved in a batch, not started
    (job(locked_at=T0), row("RUNNING", LATER), "RUNNING"),   # this attempt started
    (job(locked_at=LATER), row("RUNNING", T0), "READY"),     # retry reserved; the running row is the last attempt's
    (job(), row("RUNNING", T0), "READY"),                # between retries
    (job(failed_at=T0), row("RUNNING"), "FAILED"),       # failed for good, the failure hook still to write
    (job(locked_at=T0), row("SUCCESSFUL"), "SUCCESSFUL"),    # done; its queue row goes with the next reservation
    (None, row("RUNNING"), "FAILED"),                    # removed from the queue before it finished
])
def test_status_of(django_env, queued, result, expected) -> None:
    from dj_daemon.contrib.django.values import status_of

    status = status_of(queued, result)
    assert (status.value if status else None) == expected
