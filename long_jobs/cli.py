"""``long_jobs``: what operators run before and after maintenance, and the admin verbs.

Each command parses its flags, calls one function of ``long_jobs.ops`` and
prints through ``long_jobs.report``. Errors are one line and a non-zero exit.
"""
from __future__ import annotations

import math
import shlex
from datetime import tzinfo

import click

from dj_daemon import console, display, sentinels
from dj_daemon.config import Config
from dj_daemon.job import utcnow
from dj_daemon.store import Store, open_store
from dj_daemon.tracking import Gate

from . import ops, report

PROG = "long_jobs"


def _setup(ctx: click.Context, writes_sentinels: bool = False) -> tuple[Config, Store]:
    """The shared config and the store; for a command that writes sentinel files, a sentinel folder
    checked first. Readers need none: before the daemon's first start there is none, and no
    sentinel means no drain."""
    config = console.config_from(ctx)
    if writes_sentinels:
        sentinels.check_folder(config.sentinel_dir, writable=True)
    return config, open_store(config)


def _zone(config: Config) -> tzinfo:
    """The zone times are shown in (``display_timezone``)."""
    return display.zone(config.display_timezone)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@console.config_option
def cli(config_path: str | None) -> None:
    """long_jobs: drain, restart and inspect dj-daemon's tracked long jobs."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="The same, as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Draining state, daemon, workers, counts, what runs where, stalled and parked jobs.

    Exit 0 when normal, 3 while draining, 4 on trouble (stalled jobs, daemon down).
    """
    config, store = _setup(ctx)
    snapshot = ops.status(store, config)
    click.echo(report.to_json(snapshot) if as_json else report.status_text(snapshot, _zone(config)))
    ctx.exit(ops.exit_code(snapshot))


@cli.command()
@click.option("--wait", is_flag=True, help="Wait until no tracked job runs on this host (with --hold-only: "
                                             "no submission).")
@click.option("--timeout", type=float, help="With --wait: give up after S seconds (exit 1).")
@click.option("--hold-only", is_flag=True, help="Write only hold-submissions.txt: submissions are held, "
                                                "deferrable jobs go on running.")
@click.pass_context
def drain(ctx: click.Context, wait: bool, timeout: float | None, hold_only: bool) -> None:
    """Write defer_jobs.txt and hold-submissions.txt: jobs whose turn comes are parked, none is cut off."""
    if timeout is not None and not wait:
        raise click.UsageError("--timeout needs --wait")
    if timeout is not None and not (math.isfinite(timeout) and timeout >= 0):
        raise click.UsageError(f"--timeout must be a finite number of seconds, at least 0, not {timeout:g}")
    config, store = _setup(ctx, writes_sentinels=True)
    drained = ops.drain(config, hold_only)
    doing = "holding submissions on" if hold_only else "draining"
    click.echo(f"{doing} {config.hostname}: " + (", ".join(drained.written) + " written" if drained.written
                                                  else "sentinel files were already present"))
    if not wait:
        return
    stdout = click.get_text_stream("stdout")
    line = report.LiveLine(stdout, stdout.isatty())
    try:
        done = ops.wait_drained(store, config, timeout, lambda running: line.show(running, utcnow()),
                                gates=(Gate.HOLD,) if hold_only else None)
    finally:
        line.end()  # Ctrl-C or the timeout's error start on a line of their own
    if not done:
        raise click.ClickException(f"still running after {timeout:g}s; the sentinel files stay in place")


@cli.command()
@click.option("--host", "hosts", multiple=True,
              help="Also move HOST's rejected submissions to this host (repeatable).")
@click.pass_context
def restart(ctx: click.Context, hosts: tuple[str, ...]) -> None:
    """Re-enqueue every deferred and rejected job at its place, and remove the sentinel files."""
    config, store = _setup(ctx, writes_sentinels=True)
    result = ops.restart(store, config, hosts)
    click.echo(f"removed: {', '.join(result.removed) or 'no sentinel file was present'}")
    for row in result.reenqueued:
        click.echo(f"re-enqueued {row['id']} {row['job_class']} {row['identifier']} (was {row['state']} on "
                   f"{row['hostname'] or '-'}) as job {row['delayed_job_id']}")
    click.echo(f"{display.count(len(result.reenqueued), 'job')} re-enqueued"
               + (f", {result.moved} at the back of their strand (a newer job of it runs)" if result.moved else "")
               + (f", {result.skipped} already taken by another restart" if result.skipped else ""))


@cli.command("list")
@click.option("--state", type=click.Choice(report.STATE_ORDER))
@click.option("--identifier")
@click.option("--class", "job_class", help="The job's class, as listed (module:name).")
@click.option("--host", help="The host that last moved it.")
@click.option("--before", type=click.IntRange(min=1), help="Only ids below this: the next page.")
@click.option("--limit", type=click.IntRange(1, ops.MAX_PAGE), default=ops.PAGE, show_default=True)
@click.pass_context
def list_jobs(ctx: click.Context, state: str | None, identifier: str | None, job_class: str | None,
              host: str | None, before: int | None, limit: int) -> None:
    """Tracked jobs, newest first, a page at a time, with attempts and last error."""
    config, store = _setup(ctx)
    page = ops.list_tracked(store, config, state=state, identifier=identifier, job_class=job_class, host=host,
                            before=before, limit=limit)
    flags = [("--state", state), ("--identifier", identifier), ("--class", job_class), ("--host", host),
             ("--limit", None if limit == ops.PAGE else str(limit))]
    again = " ".join([PROG, "list"] + [f"{flag} {shlex.quote(value)}" for flag, value in flags if value])
    click.echo(report.page_text(page, again, _zone(config)))


@cli.command()
@click.argument("state_id", type=int)
@click.pass_context
def show(ctx: click.Context, state_id: int) -> None:
    """One tracked job: its row, its work-queue row, its payload and its history of states."""
    config, store = _setup(ctx)
    click.echo(report.detail_text(ops.show(store, config, state_id), _zone(config)))


@cli.command()
@click.argument("state_id", type=int)
@click.pass_context
def resend(ctx: click.Context, state_id: int) -> None:
    """Send a tracked job again: one in error is re-enqueued, one waiting (retrying) runs now."""
    config, store = _setup(ctx)
    resent = ops.resend(store, config, state_id)
    click.echo(f"tracked job {state_id} {resent.action} as job {resent.job_id}")


@cli.command("retry-now")
@click.argument("state_id", type=int)
@click.pass_context
def retry_now(ctx: click.Context, state_id: int) -> None:
    """Run a waiting tracked job (a retrying one, say) now, its attempts kept."""
    config, store = _setup(ctx)
    click.echo(f"tracked job {state_id} due now as job {ops.retry_now(store, config, state_id)}")


@cli.command("reset-stalled")
@click.pass_context
def reset_stalled(ctx: click.Context) -> None:
    """Move jobs shown running whose worker is gone to error, with the reason."""
    config, store = _setup(ctx)
    moved = ops.reset_stalled(store, config)
    for row in moved:
        click.echo(f"{row['id']} {row['job_class']} {row['identifier']} -> error: {row['reason']}")
    click.echo(f"{display.count(len(moved), 'stalled job')} reset")


@cli.command()
@click.argument("state_id", type=int)
@click.pass_context
def delete(ctx: click.Context, state_id: int) -> None:
    """Delete a tracked job that is not running (and its queue row)."""
    _, store = _setup(ctx)
    ops.delete(store, state_id)
    click.echo(f"deleted tracked job {state_id}")


@cli.command()
@click.option("--bind", help="HOST:PORT to listen on (default: [web] web_bind, 127.0.0.1:8080).")
@click.pass_context
def web(ctx: click.Context, bind: str | None) -> None:
    """Serve the operators' web page (waitress) until interrupted; needs dj-daemon[web]."""
    try:
        from . import web as page
    except ModuleNotFoundError as exc:
        if exc.name not in ("flask", "waitress", "jinja2", "werkzeug"):
            raise
        raise click.ClickException(f"the web page needs {exc.name}: pip install 'dj-daemon[web]'") from None
    config = console.config_from(ctx)
    sentinels.check_folder(config.sentinel_dir, False)
    page.serve(config, bind)


def main(args: list[str] | None = None) -> None:
    console.run(cli, PROG, args)
