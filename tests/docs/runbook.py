"""The command lines of a Markdown runbook: what its fenced shell blocks tell an operator to type.

A ``sh`` block holds commands, one a line (a trailing ``\\`` continues it);
a ``console`` block holds commands after a ``$ `` prompt and their output.
Comments (`` # ...``) are dropped. Any other block must say it holds no
command (``ini``, ``text``): an untagged block is an error, so that no
command can hide from the test in one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

COMMAND_BLOCKS = ("sh", "console")
PLAIN_BLOCKS = ("ini", "text")
FENCE = re.compile(r"```(\S*)\s*")


@dataclass(frozen=True)
class Command:
    text: str  #: the command as the operator types it, without its comment
    line: int  #: the doc's line where it starts (1-based), for failure messages


class RunbookError(ValueError):
    """A fenced block of unknown kind, or one left open."""


def commands(markdown: str) -> list[Command]:
    """Every command of every command block, in the doc's order."""
    found: list[Command] = []
    block: str | None = None
    pending: tuple[int, str] | None = None
    for number, line in enumerate(markdown.splitlines(), 1):
        fence = FENCE.fullmatch(line)
        if fence and block is None:
            block = _block_kind(fence.group(1), number)
        elif fence:
            block = None
        elif block in COMMAND_BLOCKS:
            text = _without_comment(line) if pending else _command_text(line, block)
            if text is not None:
                start, head = pending or (number, "")
                joined = head + text.lstrip() if head else text
                pending = (start, joined[:-1].rstrip() + " ") if joined.endswith("\\") else None
                if pending is None and joined.strip():
                    found.append(Command(joined.strip(), start))
    if block is not None:
        raise RunbookError("a fenced block is never closed")
    return found


def _block_kind(tag: str, number: int) -> str:
    if tag not in COMMAND_BLOCKS + PLAIN_BLOCKS:
        raise RunbookError(f"line {number}: tag the block {', '.join(COMMAND_BLOCKS + PLAIN_BLOCKS)}, "
                           f"not {tag or 'nothing'!r}")
    return tag


def _command_text(line: str, block: str) -> str | None:
    """The command part of one line: None for a console block's output."""
    if block == "console":
        if not line.startswith("$ "):
            return None
        line = line[2:]
    return _without_comment(line)


def _without_comment(line: str) -> str:
    """``line`` up to a ``#`` that starts a shell comment (at the start or after a blank, unquoted)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()
