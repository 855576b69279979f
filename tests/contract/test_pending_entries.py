"""A process's count of unwritten entries outlives it, and is counted once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from infra.pending_entries import PendingEntries, collect_dead


def killed_holding(directory: Path, count: int) -> None:
    """A child process that holds `count` entries and is SIGKILLed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        PendingEntries(directory).set(count)
        os.write(write, b"x")
        signal.pause()
    os.read(read, 1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_a_killed_process_entries_are_collected_once(tmp_path: Path) -> None:
    killed_holding(tmp_path, 7)
    killed_holding(tmp_path, 5)
    assert collect_dead(tmp_path) == 12
    assert collect_dead(tmp_path) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_living_process_entries_are_left_alone(tmp_path: Path) -> None:
    mine = PendingEntries(tmp_path)
    mine.set(4)
    assert collect_dead(tmp_path) == 0
    mine.set(0)
    mine.close()
    assert list(tmp_path.iterdir()) == []
