"""A named standalone worker (``delayed_job work --name NAME``): a stable name, held by one process.

A worker without a supervisor is named ``host:pid``; killed, it leaves its
jobs locked until ``max_run_time`` passes (or a daemon starts on the host),
since no one knows it died. Named ``host:NAME``, the same name comes back
with the next start, which takes back at once what the last run held
(``Worker.take_back``), as the supervisor does for a worker it saw die:
finished jobs (its journal lists them) are deleted, the one it was running
runs again with an attempt counted, the rest are unlocked.

delayed_job does this in its ready clause (a job "locked by me" is ready);
we do not: the job in hand would run again with no attempt counted, so a job
that kills its worker would never run out of attempts; a finished job not yet
deleted would run again; and every reservation would pay for an ``OR`` its
indexes cannot serve.

Two live processes under one name would each take the other's jobs for their
own. So the name is claimed: the worker holds an exclusive ``flock`` on its
journal file for as long as it lives (the kernel lets go when it dies, even
by SIGKILL), and a second process of that name on this host refuses to
start. The claim is per host (per journal folder): two hosts that share a
configured ``hostname`` must not share a name.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from . import journal
from .config import HOSTNAME, NAME_LENGTH, Config
from .errors import ConfigError, WorkerError


def worker_name(config: Config, name: str) -> str:
    """``host:NAME``; a name that is a number would read as a pid, which a daemon on this host
    would take for a dead worker of its own and free its jobs while they run."""
    if not HOSTNAME.fullmatch(name) or name.isdigit():
        raise ConfigError(f"worker name {name!r} must be letters, digits, '.', '-' or '_', not a number alone")
    full = f"{config.hostname}:{name}"
    if len(full) > NAME_LENGTH:
        raise ConfigError(f"worker name {full!r} is {len(full)} characters; at most {NAME_LENGTH} fit")
    return full


def folder(config: Config) -> str:
    """Where named workers keep their journals: the daemon's ``journal_dir``."""
    return journal.folder_of(config.journal_dir, config.sentinel_dir)


@contextmanager
def claimed(where: str, name: str) -> Iterator[None]:
    """Hold worker ``name`` on this host while the block runs (``journal.claim``); ``WorkerError``
    if a live process holds it already, ``ConfigError`` if its journal cannot be kept in ``where``."""
    try:
        journal.prepare(where)
        fd = journal.claim(where, name)
    except OSError as exc:
        raise ConfigError(f"cannot keep the journal of worker {name} in {where}: {exc.strerror} "
                          "(set [daemon] journal_dir to a folder this user can write)") from None
    if fd is None:
        raise WorkerError(f"a worker named {name} is already running on this host "
                          f"(it holds {journal.path_of(where, name)}); give this one another --name")
    try:
        yield
    finally:
        os.close(fd)
