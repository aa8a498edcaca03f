"""The ``delayed_job`` command line's options, declared once and accepted before the verb or after it.

delayed_job's ``script/delayed_job`` takes its options before the verb
(``delayed_job -n 3 start``), click's verbs after it (``delayed_job start -n 3``).
Both orders work: the group declares the same options as the verbs, and
``pass_to_verb`` hands the ones given before the verb to that verb as click
defaults (its ``default_map``), so the same option after the verb wins. An
option that the verb does not take is refused with one line, and so is each of
delayed_job's options that has no equivalent here, naming what to use instead.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import click
from click.core import ParameterSource

from .config import workers_count

Decorator = Callable[[Any], Any]


def _queue_list(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...] | None:
    """``--queues a,b --queue c`` -> ("a", "b", "c"); None when not given (the config's queues stand)."""
    names = tuple(name.strip() for value in values for name in value.split(",") if name.strip())
    return names or None


class WorkerCount(click.ParamType):
    """``-n``: a number of workers, at least 1, or ``auto`` (``config.workers_count``)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            count = workers_count(str(value))
        except ValueError:
            count = 0
        if count < 1:
            self.fail(f"{value!r} is not a number of workers (1 or more) or auto", param, ctx)
        return count


def _refuse(message: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A callback refusing its option, when given, with one line that says what to use."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value and not ctx.resilient_parsing:
            raise click.UsageError(f"{'/'.join(param.opts[:2])}: {message}", ctx)

    return refuse


#: delayed_job's options that have no equivalent here: each is refused, naming what to use
REFUSED: dict[str, tuple[tuple[str, ...], bool, str]] = {
    "monitor": (("-m", "--monitor"), True, "the supervisor already restarts workers that die; to restart the "
                "daemon itself, run `delayed_job run` under systemd (Restart=on-failure)"),
    "daemon_options": (("--daemon-options",), False, "these went to Ruby's daemons gem; use --pidfile or "
                       "--pid-dir, --log-file or --log-dir, or run `delayed_job run` under systemd"),
    "read_ahead": (("--read-ahead",), False, "not needed: workers reserve with SKIP LOCKED or an atomic "
                   "UPDATE and never read ahead; batch_size in the config sets how many jobs one takes"),
    "identifier": (("-i", "--identifier"), False, "one daemon runs all its workers (-n, --pool); to run a "
                   "second daemon beside it, give it its own --pidfile or --pid-dir; to name a worker that "
                   "takes back its own jobs when started again, use `delayed_job work --name NAME`"),
    "environment": (("-e", "--environment"), False, "choose the settings with --config or DJ_CONFIG"),
}

OPTIONS: dict[str, Decorator] = {
    "workers": click.option("-n", "--workers", "--number_of_workers", "workers",
                            type=WorkerCount(), help="Worker processes; auto: one per CPU this host lets us use."),
    "pools": click.option("--pool", "pools", multiple=True,
                          help="A worker pool 'queues:count', e.g. 'zenodo:1' or '*:2'; repeatable."),
    "queues": click.option("--queues", "--queue", "queues", multiple=True, callback=_queue_list,
                           help="Queues to work, comma-separated or repeated (default: all)."),
    "min_priority": click.option("--min-priority", type=int, help="Only jobs with priority >= N."),
    "max_priority": click.option("--max-priority", type=int, help="Only jobs with priority <= N."),
    "sleep_delay": click.option("--sleep-delay", type=float, help="Seconds to sleep when idle."),
    "prefix": click.option("-p", "--prefix", metavar="NAME", help="Put NAME before the process titles shown by ps."),
    "name": click.option("--name", help="Run as worker host:NAME, one process at a time; started again, it "
                                        "takes back at once the jobs its last run held."),
    "exit_on_complete": click.option("--exit-on-complete", is_flag=True,
                                     help="Exit once no job is left to run (as workoff)."),
    "pidfile": click.option("--pidfile", help="Pidfile (default: [daemon] pidfile)."),
    "pid_dir": click.option("--pid-dir", type=click.Path(file_okay=False), metavar="DIR",
                            help="Keep the pidfile in DIR, as DIR/delayed_job.pid."),
    "log_file": click.option("--log-file", help="Log file (default: [daemon] log_file)."),
    "log_dir": click.option("--log-dir", type=click.Path(file_okay=False), metavar="DIR",
                            help="Log to DIR/delayed_job.log."),
    **{name: click.option(*decls, name, is_flag=flag, hidden=True, expose_value=False, callback=_refuse(message))
       for name, (decls, flag, message) in REFUSED.items()},
}

WORKER = ("queues", "min_priority", "max_priority", "sleep_delay")
#: what describes a daemon: ``stop``, ``status`` and ``reload`` take these too, as ``script/delayed_job``
#: does, so that one line of options serves every verb; they act on the daemon behind the pidfile
DAEMON = ("workers", "pools", *WORKER, "prefix", *REFUSED)


def options(*names: str) -> Decorator:
    """Declare the named options on a command (or the group), in the order given."""

    def decorate(func: Any) -> Any:
        for name in reversed(names):
            func = OPTIONS[name](func)
        return func

    return decorate


def pass_to_verb(ctx: click.Context) -> None:
    """In the group's callback: give the options typed before the verb to the verb as its defaults.

    click runs the group's callback before it parses the verb's own arguments,
    and the verb's context takes its defaults from ``default_map[verb]``: the
    verb's own options, typed after it, override these.
    """
    given = {name: value for name, value in ctx.params.items()
             if name in OPTIONS and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}
    if not given or ctx.resilient_parsing:
        return
    verb = ctx.invoked_subcommand or ""
    command = ctx.command.get_command(ctx, verb) if isinstance(ctx.command, click.Group) else None
    takes = {param.name for param in command.params} if command is not None else set()
    for param in ctx.command.params:
        if param.name in given and param.name not in takes:
            raise click.UsageError(f"{'/'.join(param.opts[:2])} does not apply to {verb}", ctx)
    ctx.default_map = {**(ctx.default_map or {}), verb: given}


def settings(ctx: click.Context, given: dict[str, Any]) -> dict[str, Any]:
    """The config's settings from a daemon verb's options: ``--pid-dir`` and ``--log-dir`` name files."""
    values = {name: value for name, value in given.items()
              if name not in ("prefix", "pidfile", "pid_dir", "log_file", "log_dir", "exit_on_complete")}
    if "pools" in values:
        values["pools"] = tuple(values["pools"]) or None
    return {**values, "pidfile": file_or_dir(ctx, "pidfile", "pid_dir", "delayed_job.pid"),
            "log_file": file_or_dir(ctx, "log_file", "log_dir", "delayed_job.log")}


def file_or_dir(ctx: click.Context, file_name: str, dir_name: str, default: str) -> str | None:
    """``--pidfile FILE`` or ``--pid-dir DIR`` (``DIR/<default>``), and the same for the log; given
    both, the one typed after the verb wins over the one before it, and both in one place is an error."""
    file, folder = ctx.params.get(file_name), ctx.params.get(dir_name)
    if file and folder:
        typed = [name for name in (file_name, dir_name)
                 if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
        if len(typed) != 1:
            raise click.UsageError(f"give {_flag(file_name)} or {_flag(dir_name)}, not both", ctx)
        file, folder = (file, None) if typed == [file_name] else (None, folder)
    return os.path.join(folder, default) if folder else file


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"
