"""What keeps `run all` to one supervisor per data directory and its children tied to it.

- Children die with their supervisor: each child asks the kernel (prctl PR_SET_PDEATHSIG) for SIGTERM the moment the
  supervisor dies, however it dies (kill -9 included). SIGTERM lets a service abort its open transaction and close its
  clients; an orphaned child gets ORPHAN_GRACE_S for that, then exits regardless.
- No stop waits forever: a `run` process that has not stopped stop_timeout_s after the signal prints where it is
  stuck and exits 1, and the supervisor reports it. Whatever it leaves open, the next
  instance's init_transactions() aborts (same transactional.id slot).
- One supervisor per data directory: an exclusive flock on <data_dir>/run-all.lock, which the kernel releases when the
  last process holding it exits. The children inherit the lock's descriptor, so a child that somehow outlived its
  supervisor still keeps a second `run all` from starting a second copy of every service.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class AlreadyRunning(RuntimeError):
    """Another supervisor holds the data directory's lock."""


def die_with_parent(parent_pid: int, signum: int = signal.SIGTERM):
    """A Popen preexec_fn: the child gets `signum` when its parent dies. Checks the parent after arming the signal,
    so a parent that died between fork and prctl is not missed. A no-op where prctl does not exist (not Linux)."""

    def arm() -> None:
        if not sys.platform.startswith("linux"):
            return
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            os._exit(126)  # cannot promise the child dies with us: do not start it
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signum)

    return arm


ORPHAN_GRACE_S = 3.0  # a child whose supervisor died has this long to close cleanly, then it exits regardless
STUCK_EXIT_CODE = 1


def stop_handler(stop, name: str, stop_timeout_s: float, orphan_grace_s: float = ORPHAN_GRACE_S):
    """The signal handler of a `run SERVICE` process: set `stop` (finish or abort the open transaction, close the
    clients), and give that stop_timeout_s. A clean stop that takes longer (a client call that does not return) ends
    in one error line, every thread's stack on stderr and exit code 1: a supervisor never waits on a stuck child, and
    the stack says where it was stuck. When the process was orphaned (its parent died: the parent-death signal), it
    exits quietly after orphan_grace_s, so no child outlives its supervisor by more than a few seconds. Either way,
    what it leaves open the next instance's init_transactions aborts, and each position commits with its work."""
    parent = os.getppid()

    def handle(_signum, _frame) -> None:
        if stop.is_set():
            return  # the clock started at the first signal
        stop.set()
        orphaned = os.getppid() != parent
        delay = orphan_grace_s if orphaned else stop_timeout_s
        timer = threading.Timer(delay, _give_up, (name, stop_timeout_s, orphaned))
        timer.daemon = True  # a clean stop that finishes first ends the process without waiting for it
        timer.start()

    return handle


def _give_up(name: str, stop_timeout_s: float, orphaned: bool) -> None:
    if not orphaned:
        import faulthandler

        sys.stderr.write(
            f"error: {name} did not stop within {stop_timeout_s:g} s (setting stop_timeout_s); exiting without a "
            "clean close. Nothing is lost: every position commits with its work. Where each thread was:\n"
        )
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    os._exit(STUCK_EXIT_CODE)


@dataclass
class RunLock:
    """An exclusive, non-blocking flock on a file in the data directory; released by release() or by process exit."""

    path: Path
    handle: IO[str]

    def fileno(self) -> int:
        return self.handle.fileno()

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


def lock_data_dir(data_dir: Path, name: str = "run-all.lock") -> RunLock:
    """Take the data directory's supervisor lock, or raise AlreadyRunning naming the holder's pid."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyRunning(
            f"another `orderstream run all` (pid {holder}) is running on data directory {data_dir.resolve()}: "
            "stop it first, or give this one its own --data-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return RunLock(path, handle)
