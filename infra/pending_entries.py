"""How many entries a process holds unwritten, kept where a process killed outright leaves it.

Each process that buffers entries holds a small file, `<directory>/<pid>-<token>.pending`,
mapped into memory (an update is a store to shared memory, no system call) and locked with
`flock` for as long as the process lives. The kernel drops the lock when the process dies, by a
SIGKILL or an `os._exit` included, so any process of the same host that can take a file's lock
knows its writer is gone and what it held: `collect_dead` adds those counts up and removes the
files, each counted once.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import uuid
from pathlib import Path

_COUNT = struct.Struct("<q")
SUFFIX = ".pending"


class PendingEntries:
    """This process's count of entries not yet written, readable after its death."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # Locked under a name no collector looks at, then renamed: a collector never sees it unlocked.
        staging = directory / f"{name}.new"
        self._fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(self._fd, _COUNT.size)
        self._map = mmap.mmap(self._fd, _COUNT.size)
        self.path = directory / f"{name}{SUFFIX}"
        os.rename(staging, self.path)
        self.pid = os.getpid()

    def set(self, count: int) -> None:
        _COUNT.pack_into(self._map, 0, count)

    def close(self) -> None:
        """Leaving with nothing pending: remove the file."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.forget()

    def forget(self) -> None:
        """Let go of the file without removing it: a forked child's copy of its parent's."""
        self._map.close()
        os.close(self._fd)


def collect_dead(directory: Path) -> int:
    """The entries held by the processes behind `directory`'s files that have died; their files go."""
    total = 0
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process lives
            if os.fstat(fd).st_nlink == 0:
                continue  # another collector took it between our open and our lock
            data = os.pread(fd, _COUNT.size, 0)
            path.unlink()
            if len(data) == _COUNT.size:
                total += max(0, _COUNT.unpack(data)[0])
        finally:
            os.close(fd)
    return total
