"""What both CLIs share: one-line errors, exit codes, and the config option.

An operator's mistake (bad config, unreachable database, unknown id) prints
``<prog>: error: <one line>`` and exits non-zero; it never shows a traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from .config import Config, load_config
from .errors import DJError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70


def fail(prog: str, message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"{prog}: error: {message}", err=True)
    sys.exit(code)


def run(group: click.Group, prog: str, args: list[str] | None = None) -> None:
    """Run a click group, turning every failure into one line and an exit code."""
    try:
        code = group.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        fail(prog, "aborted", 130)
    except click.ClickException as exc:
        fail(prog, exc.format_message(), exc.exit_code)
    except DJError as exc:
        fail(prog, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        fail(prog, "interrupted", 130)
    except Exception as exc:
        if os.environ.get("DJ_DEBUG"):
            raise
        fail(prog, f"internal error: {type(exc).__name__}: {exc} (set DJ_DEBUG=1 for a traceback)",
             EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="INI config file (default: $DJ_CONFIG, then /etc/delayed_job.conf).")


def config_from(ctx: click.Context, **flags: Any) -> Config:
    """The config for this command: file, then environment, then the flags given."""
    return load_config(ctx.find_root().params.get("config_path"), overrides=flags)

