"""``long_jobs``: the operators' maintenance CLI (status for now)."""
from __future__ import annotations

import click

from dj_daemon import console
from dj_daemon.store import open_store

PROG = "long_jobs"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@console.config_option
def cli(config_path: str | None) -> None:
    """long_jobs: maintenance of dj-daemon's long jobs."""


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the work queue's counts."""
    config = console.config_from(ctx)
    counts = open_store(config).counts()
    click.echo(f"queue {config.safe_url}: " + ", ".join(f"{n} {state}" for state, n in counts.items()))


def main(args: list[str] | None = None) -> None:
    console.run(cli, PROG, args)
