"""Drain sentinels on real files, links and FIFOs: any entry closes its gate, nothing is followed."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from dj_daemon.sentinels import DEFER_FILE, HOLD_FILE, SentinelError, closed_gates, present, remove, touch
from dj_daemon.tracking import Gate


def make(folder: Path, name: str, kind: str, outside: Path) -> None:
    """Put an entry of ``kind`` at ``folder/name``; links point at ``outside``."""
    path = folder / name
    if kind == "file":
        path.write_text("drained by hand\n")
    elif kind == "dangling symlink":
        path.symlink_to(outside)
    elif kind == "symlink to a file":
        outside.write_text("someone else's file\n")
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()


@pytest.mark.parametrize("kind, shown", [("file", "file"), ("dangling symlink", "symlink"),
                                         ("symlink to a file", "symlink"), ("fifo", "fifo"), ("folder", "folder")])
def test_any_entry_closes_its_gate(tmp_path: Path, kind: str, shown: str) -> None:
    folder = tmp_path / "sentinels"
    folder.mkdir()
    make(folder, DEFER_FILE, kind, tmp_path / "target")
    assert closed_gates(str(folder)) == {Gate.DEFER}
    found = present(str(folder))
    assert list(found) == [DEFER_FILE] and found[DEFER_FILE].since is not None
    assert (found[DEFER_FILE].kind, found[DEFER_FILE].regular) == (shown, kind == "file")


def test_a_folder_that_cannot_be_looked_into_closes_both_gates(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # lstat(loop/defer_jobs.txt) fails with ELOOP: we cannot know, so we drain
    assert closed_gates(str(loop)) == {Gate.DEFER, Gate.HOLD}
    assert {s.kind for s in present(str(loop)).values()} == {"path lstat cannot read"}
    assert closed_gates(str(tmp_path / "absent")) == frozenset()  # no folder: no sentinel


@pytest.mark.parametrize("kind", ["dangling symlink", "symlink to a file", "fifo", "folder"])
def test_touch_refuses_what_is_not_a_regular_file_and_writes_nothing(tmp_path: Path, kind: str) -> None:
    folder, target = tmp_path / "sentinels", tmp_path / "target"
    folder.mkdir()
    make(folder, HOLD_FILE, kind, target)
    before = target.read_text() if target.exists() else None
    with pytest.raises(SentinelError) as info:
        touch(str(folder), "h")
    message = str(info.value)
    assert f"{folder / HOLD_FILE} is a " in message and "not a regular file" in message and "\n" not in message
    assert (target.read_text() if target.exists() else None) == before  # nothing written through the link
    assert not (folder / DEFER_FILE).exists()  # refused before writing either file


def test_touch_writes_regular_files_and_keeps_an_existing_one(tmp_path: Path) -> None:
    (tmp_path / DEFER_FILE).write_text("earlier\n")
    assert touch(str(tmp_path), "h") == [HOLD_FILE]
    assert (tmp_path / DEFER_FILE).read_text() == "earlier\n"
    assert " on h at " in (tmp_path / HOLD_FILE).read_text()
    assert {s.kind for s in present(str(tmp_path)).values()} == {"file"}


def test_remove_unlinks_the_link_not_what_it_names(tmp_path: Path) -> None:
    folder, target = tmp_path / "sentinels", tmp_path / "target"
    folder.mkdir()
    make(folder, DEFER_FILE, "symlink to a file", target)
    make(folder, HOLD_FILE, "fifo", target)
    assert remove(str(folder)) == [DEFER_FILE, HOLD_FILE]
    assert list(folder.iterdir()) == [] and target.read_text() == "someone else's file\n"


def test_remove_refuses_a_folder_in_one_line(tmp_path: Path) -> None:
    make(tmp_path, DEFER_FILE, "folder", tmp_path)
    with pytest.raises(SentinelError, match=f"cannot remove {tmp_path / DEFER_FILE}: Is a directory"):
        remove(str(tmp_path))
    assert closed_gates(str(tmp_path)) == {Gate.DEFER}
