"""``delayed_job``: the developer's and operator's commands for the work queue.

Each command parses its flags, calls the library, and prints. The daemon's
own commands (``run``, ``start``, ``stop``, ``status``) live with the supervisor.
"""
from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from datetime import tzinfo
from typing import Any

import click

from . import cli_options, console, daemonize, display, log, metrics, schedule as recurring, standalone, titles
from .api import Queue
from .config import Config
from .errors import DatabaseError, WorkerInterrupted
from .job import Job, utcnow
from .payload import resolve
from .pools import pools_of
from .store import Store, open_store
from .store.sqlite import missing_file
from .supervisor import Supervisor
from .worker import Stats, Worker

PROG = "delayed_job"


def _store(config: Config) -> Store:
    return open_store(config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@console.config_option
@cli_options.options(*cli_options.OPTIONS)
@click.version_option(package_name="dj-daemon", prog_name=PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, **given: Any) -> None:
    """delayed_job: database-backed background jobs.

    The options of a verb may come before it, as in delayed_job's
    `script/delayed_job -n 3 start`; the same option after the verb wins.
    """
    cli_options.pass_to_verb(ctx)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("init")
@click.pass_context
def db_init(ctx: click.Context) -> None:
    """Create the tables (idempotent)."""
    config = console.config_from(ctx)
    _store(config).create_schema()
    click.echo(f"schema ready on {config.safe_url}")


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config, pools and metrics client and read the queue, without changing anything.

    Whatever the daemon would refuse at start is refused here. A SQLite file
    that does not exist is reported, not created (connecting would create it).
    """
    config = console.config_from(ctx)
    pools_of(config)
    recurring.prepared(config, recurring.entries(config))
    metrics.require_client(config)
    missing = missing_file(config.url)
    if missing is not None:
        raise DatabaseError(f"database file {missing} of {config.safe_url} does not exist "
                            "(create it and the tables with `delayed_job db init`)")
    store = _store(config)
    columns = store.missing_columns()
    if columns:
        raise DatabaseError(f"missing column {', '.join(columns)} in {config.safe_url}: "
                            "run `delayed_job db init` to add it")
    counts = store.counts()
    click.echo(f"config ok; {config.safe_url}: {counts.shown('waiting')} waiting, "
               f"{counts.shown('running')} running, {counts.shown('failed')} failed")
    missing = store.missing_indexes()
    if missing:
        click.echo(f"missing index {', '.join(missing)}: run `delayed_job db init` to add it "
                   '(docs/performance.md, "Stored rows")')


def _worker(ctx: click.Context, exit_when_empty: bool, name: str | None, **flags: Any) -> Stats:
    """Run a worker in this process until stopped, or until the queue is empty if asked; such
    a run gives up on a database outage after ``database_patience`` (at once if no wait can
    help). A second stop signal ends the command with one line: the job in hand was released."""
    queues = flags.pop("queues")
    config = console.config_from(ctx, queues=queues, **flags)
    log.setup(config.log_level, log_format=config.log_format, hostname=config.hostname,
              timezone_name=config.display_timezone)
    patience = config.database_patience if exit_when_empty else None
    full_name = standalone.worker_name(config, name) if name is not None else None
    with ExitStack() as stack:
        if full_name is not None:  # held until the worker is closed: see ``standalone``
            stack.enter_context(standalone.claimed(standalone.folder(config), full_name))
        worker = stack.enter_context(Worker(config, _store(config), full_name, patience=patience,
                                            stats=Stats(failing=set())))
        worker.install_signal_handlers()
        if full_name is not None:
            worker.take_back(standalone.folder(config))
        try:
            return worker.run(exit_when_empty=exit_when_empty)
        except WorkerInterrupted as exc:
            console.fail(PROG, f"{exc}: the job in hand was stopped and released, an attempt counted",
                         128 + exc.signum)
            raise  # not reached: fail exits


@cli.command()
@cli_options.options(*cli_options.WORKER, "name", "exit_on_complete")
@click.pass_context
def work(ctx: click.Context, exit_on_complete: bool, **flags: Any) -> None:
    """Work jobs in the foreground until SIGTERM or Ctrl-C (the job in hand finishes first)."""
    stats = _worker(ctx, exit_on_complete, **flags)
    click.echo(f"stopped after {display.count(stats.succeeded, 'job')} completed, {_failed(stats)}")


@cli.command()
@cli_options.options(*cli_options.WORKER, "name")
@click.pass_context
def workoff(ctx: click.Context, **flags: Any) -> None:
    """Run every runnable job, then exit."""
    started = time.monotonic()
    stats = _worker(ctx, True, **flags)
    elapsed = max(time.monotonic() - started, 1e-9)
    click.echo(f"{display.count(stats.succeeded, 'job')} completed at {stats.succeeded / elapsed:.1f} j/s, "
               f"{_failed(stats)}")
    ctx.exit(1 if stats.failing else 0)


def _failed(stats: Stats) -> str:
    """``2 failed``: jobs whose last run here failed, each counted once however often it was retried;
    the failed runs follow when there were more."""
    failing = len(stats.failing or ())
    return f"{failing} failed" + (f" ({display.count(stats.failed, 'failed run')})" if stats.failed > failing else "")


@cli.command()
@click.option("--queue", help="Only this queue.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@click.pass_context
def clear(ctx: click.Context, queue: str | None, yes: bool) -> None:
    """Delete every job that is not running (asks first, unless --yes)."""
    config = console.config_from(ctx)
    what = f"every job of queue {queue!r}" if queue is not None else "every job"
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"clear deletes {what} that is not running: pass --yes to confirm "
                                   "(no terminal to ask on)")
        if not click.confirm(f"Delete {what} that is not running from {config.safe_url}?"):
            raise click.ClickException("nothing deleted")
    click.echo(f"deleted {display.count(_store(config).clear(queue), 'job')}")


@cli.command()
@click.argument("target")
@click.argument("args", default="[]")
@click.option("--kwargs", default="{}", help="Keyword arguments as a JSON object.")
@click.option("--queue")
@click.option("--priority", type=int)
@click.pass_context
def enqueue(ctx: click.Context, target: str, args: str, kwargs: str, queue: str | None,
            priority: int | None) -> None:
    """Queue TARGET ("pkg.mod:func") with ARGS given as a JSON list."""
    config = console.config_from(ctx)
    function = resolve(target, config.allowed_modules, error=click.BadParameter)
    try:
        parsed_args, parsed_kwargs = json.loads(args), json.loads(kwargs)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(parsed_args, list) or not isinstance(parsed_kwargs, dict):
        raise click.BadParameter("ARGS must be a JSON list and --kwargs a JSON object")
    job_id = Queue(config).enqueue_call(function, tuple(parsed_args), parsed_kwargs, queue=queue,
                                        priority=priority)
    click.echo(f"enqueued job {job_id}")


@cli.command("schedule")
@click.pass_context
def schedule_(ctx: click.Context) -> None:
    """The recurring jobs: one line each, with its last and next run."""
    config = console.config_from(ctx)
    lines = recurring.listing(config, _store(config), utcnow())
    zone = display.zone(config.display_timezone)
    wide = display.width(zone)
    click.echo(f"{'name':24} {'when':32} {'missed':8} {'last run':{wide}} {'job':>8} {'next run':{wide}} target")
    for line in lines:
        last = display.when(line.last.occurrence, zone) if line.last else "never"
        job = str(line.last.job_id) if line.last and line.last.job_id is not None else "-"
        click.echo(f"{line.name:24} {line.when:32} {line.missed:8} {last:{wide}} {job:>8} "
                   f"{display.when(line.next, zone):{wide}} {line.target}")
    if not lines:
        click.echo("no recurring job: add [schedule:NAME] sections, or list modules with @recurring "
                   "in schedule_modules")


@cli.group()
def jobs() -> None:
    """Inspect and act on waiting and failed jobs."""


@jobs.command("list")
@click.option("--failed", "which", flag_value="failed", help="Only failed jobs.")
@click.option("--waiting", "which", flag_value="waiting", help="Only jobs not failed.")
@click.option("--queue")
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
def jobs_list(ctx: click.Context, which: str | None, queue: str | None, limit: int) -> None:
    """One line per job: id, state, queue, priority, attempts, run_at, target, first error line."""
    failed = {"failed": True, "waiting": False}.get(which or "")
    config = console.config_from(ctx)
    rows = _store(config).jobs(failed=failed, queue=queue, limit=limit)
    zone = display.zone(config.display_timezone)
    width = display.width(zone)
    click.echo(f"{'id':>8} {'state':8} {'queue':12} {'prio':>4} {'att':>3} {'run_at':{width}} target / error")
    for job in rows:
        error = (job.last_error or job.defect or "").split("\n", 1)[0]
        run_at = display.when(job.run_at, zone) if job.run_at else "?"
        click.echo(f"{job.id:>8} {job.state:8} {(job.queue or '-'):12} {job.priority:>4} {job.attempts:>3} "
                   f"{run_at:{width}} {job.name}{'  ' + error if error else ''}")


@jobs.command("show")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_show(ctx: click.Context, job_id: int) -> None:
    """Every column of one job, with its full last error."""
    config = console.config_from(ctx)
    _show(_store(config).get(job_id), display.zone(config.display_timezone))


#: The columns of ``jobs show`` that hold times, shown in ``display_timezone``.
TIMES = ("run_at", "locked_at", "failed_at", "created_at")


def _show(job: Job, zone: tzinfo) -> None:
    """Every column, ``-`` for one empty (no queue, not locked), as ``jobs list`` shows them."""
    for name in ("id", "state", "name", "queue", "priority", "attempts", "run_at", "locked_at", "locked_by",
                 "failed_at", "created_at", "handler"):
        value = getattr(job, name)
        shown = display.when(value, zone) if name in TIMES else "-" if value is None or value == "" else value
        click.echo(f"{name:>10}: {shown}")
    if job.strand is not None:
        click.echo(f"{'strand':>10}: {job.strand} (at most {job.strand_limit or 1} at once, in id order)")
    if job.defect:
        click.echo(f"{'defect':>10}: {job.defect}")
    click.echo(f"{'last_error':>10}: {job.last_error or ''}")


@jobs.command("retry")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_retry(ctx: click.Context, job_id: int) -> None:
    """Run a failed job again now (attempts start over)."""
    job = _store(console.config_from(ctx)).retry(job_id)
    click.echo(f"job {job.id} ({job.name}) queued to run now")


@jobs.command("delete")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_delete(ctx: click.Context, job_id: int) -> None:
    """Delete a job that is not running."""
    _store(console.config_from(ctx)).delete(job_id)
    click.echo(f"deleted job {job_id}")


@jobs.command("cancel")
@click.argument("job_id", type=int)
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: int) -> None:
    """Cancel a job: a waiting one is removed; a running one is asked to stop, then killed after
    cancel_grace. Never retried."""
    if _store(console.config_from(ctx)).cancel(job_id) == "cancelled":
        click.echo(f"cancelled job {job_id}")
    else:
        click.echo(f"job {job_id} is running: its worker is asked to stop (killed after cancel_grace)")


#: what ``run`` takes; ``start`` and ``restart`` add the pidfile; ``stop``, ``status`` and ``reload`` take
#: the daemon's options too but not its log (see ``cli_options.DAEMON``)
RUN = (*cli_options.DAEMON, "log_file", "log_dir")
run_options = cli_options.options(*RUN, "exit_on_complete")
start_options = cli_options.options(*RUN, "exit_on_complete", "pidfile", "pid_dir")
pidfile_options = cli_options.options(*cli_options.DAEMON, "pidfile", "pid_dir")


def _supervise(ctx: click.Context, given: dict[str, Any], log_file: str) -> int:
    """Run the supervisor in this process; SIGHUP rereads the same file, environment and flags."""
    flags = cli_options.settings(ctx, given)
    config = console.config_from(ctx, **flags)
    log.setup(config.log_level, filename=log_file, log_format=config.log_format, hostname=config.hostname,
              timezone_name=config.display_timezone)
    titles.supervisor(given.get("prefix"))
    return Supervisor(config, lambda: console.config_from(ctx, **flags),
                      exit_on_complete=bool(given.get("exit_on_complete"))).run()


@cli.command()
@run_options
@click.pass_context
def run(ctx: click.Context, **given: Any) -> None:
    """The daemon in the foreground, as systemd starts it: a supervisor forking N workers.

    It logs to stderr (the journal under systemd) unless --log-file or --log-dir is given.
    """
    ctx.exit(_supervise(ctx, given, cli_options.settings(ctx, given)["log_file"] or ""))


def _start(ctx: click.Context, given: dict[str, Any]) -> None:
    config = console.config_from(ctx, **cli_options.settings(ctx, given))
    pid = daemonize.start(config.pidfile, config.log_file, lambda: _supervise(ctx, given, config.log_file))
    click.echo(f"delayed_job started (pid {pid})")


def _stop(ctx: click.Context, given: dict[str, Any], timeout: float | None = None) -> None:
    config = _by_pidfile(ctx, given)
    click.echo(daemonize.stop(config.pidfile, timeout or config.graceful_timeout + 15))


def _by_pidfile(ctx: click.Context, given: dict[str, Any]) -> Config:
    """The config of a verb that finds the daemon by its pidfile; the daemon's other options do not
    change which daemon that is (``script/delayed_job`` users pass the same options to every verb)."""
    return console.config_from(ctx, pidfile=cli_options.settings(ctx, given)["pidfile"])


@cli.command()
@start_options
@click.pass_context
def start(ctx: click.Context, **given: Any) -> None:
    """init.d mode: start the daemon in the background with a pidfile."""
    _start(ctx, given)


@cli.command()
@pidfile_options
@click.option("--timeout", type=float, help="Seconds to wait (default: graceful_timeout + 15).")
@click.pass_context
def stop(ctx: click.Context, timeout: float | None, **given: Any) -> None:
    """init.d mode: SIGTERM the daemon and wait until its jobs are done and it has exited."""
    _stop(ctx, given, timeout)


@cli.command()
@start_options
@click.pass_context
def restart(ctx: click.Context, **given: Any) -> None:
    """init.d mode: stop (waiting for the jobs) then start."""
    _stop(ctx, given)
    _start(ctx, given)


@cli.command()
@pidfile_options
@click.pass_context
def reload(ctx: click.Context, **given: Any) -> None:
    """init.d mode: SIGHUP the daemon (reread config, replace workers one at a time)."""
    click.echo(daemonize.reload(_by_pidfile(ctx, given).pidfile))


@cli.command()
@pidfile_options
@click.pass_context
def status(ctx: click.Context, **given: Any) -> None:
    """init.d mode: exit 0 when running, 1 when dead with a pidfile left, 3 when not running."""
    code, line = daemonize.status(_by_pidfile(ctx, given).pidfile)
    click.echo(line)
    ctx.exit(code)


def main(args: list[str] | None = None) -> None:
    console.run(cli, PROG, args)
