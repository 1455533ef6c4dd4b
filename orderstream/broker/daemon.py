"""A background process a data dir started and knows by its pid file: the lifecycle the local broker and the local
registry share.

spawn() starts the command in its own session (so a Ctrl-C at the terminal does not reach it), appends its output to
a file and writes the pid file; pid() is the pid of that process while it is alive; wait_until_ready() polls a
readiness check until it passes, the process exits or the time is up; stop() sends SIGTERM, then SIGKILL after a
grace period; kill() is SIGKILL at once (fault tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from orderstream.broker.errors import BrokerError


class Daemon:
    """The process behind `pid_file`; `name` ("the broker", "the registry") is how errors call it."""

    def __init__(self, name: str, pid_file: Path, last_error: Callable[[], str]) -> None:
        self.name = name
        self.pid_file = pid_file
        self._last_error = last_error

    def pid(self) -> int | None:
        """The pid in the pid file, if that process is still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def spawn(self, command: list[str], output: Path, cwd: Path | None = None) -> subprocess.Popen:
        with open(output, "ab") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process

    def wait_until_ready(
        self, process: subprocess.Popen, ready: Callable[[], bool], timeout_s: float, where: str, interval_s: float
    ) -> None:
        """Return once ready() is true; BrokerError when the process exits first (with its last logged error) or
        when timeout_s passes (naming `where` it was asked)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(f"{self.name} exited with code {process.returncode}: {self._last_error()}")
            if ready():
                return
            time.sleep(interval_s)
        raise BrokerError(f"{self.name} did not answer on {where} within {timeout_s:.0f}s; {self._last_error()}")

    def stop(self, grace_s: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after grace_s; returns once the process is gone. False when none was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while pid_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL, for fault tests: the process gets no chance to clean up."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.05)


def refuse_used_ports(host: str, ports: Iterable[int], settings_hint: str) -> None:
    """BrokerError naming the first port another process holds, and the settings that choose other ones."""
    for port in ports:
        if port_in_use(host, port):
            raise BrokerError(
                f"port {port} on {host} is already in use by another process: stop it, or choose other ports "
                f"({settings_hint})"
            )


def pid_alive(pid: int) -> bool:
    """Whether process pid runs (a zombie does not; one that is our child is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    if _is_zombie(pid):
        with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
