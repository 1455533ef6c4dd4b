"""Instance slots: a small, stable number per running instance of a service on one data directory.

The processor's transactional.id is "<group>-<slot>", so a restarted instance gets the same id back, and its first
init_transactions() aborts whatever the killed one left open at once (instead of after transaction.timeout.ms).
A slot is an exclusive flock on <dir>/instance-<n>.lock: the kernel releases it when the process dies, even by SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class NoFreeSlot(RuntimeError):
    pass


@dataclass
class InstanceSlot:
    """Held until release(): no other process (or other slot claim in this process) can hold the same number."""

    number: int
    handle: IO[str]

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def claim_slot(directory: Path, limit: int = 256) -> InstanceSlot:
    """The lowest free slot number in directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(limit):
        handle = open(directory / f"instance-{number}.lock", "a+")  # noqa: SIM115 - kept open while the slot is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return InstanceSlot(number, handle)
    raise NoFreeSlot(f"all {limit} instance slots in {directory} are taken")
