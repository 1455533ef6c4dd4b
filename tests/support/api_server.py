"""`orderstream serve` as a real uvicorn process on a free port for tests, and the pipeline it talks to
(`orderstream run all --no-api`), both as child processes with their logs in files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from orderstream.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _root_args(settings: Settings) -> list[str]:
    s = settings
    return ["-b", s.effective_bootstrap, "--topic-prefix", s.topic_prefix, "--data-dir", str(s.data_dir)]


def _env(settings: Settings, extra: dict[str, str] | None) -> dict[str, str]:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    if settings.database_url:
        env["ORDERSTREAM_DATABASE_URL"] = settings.database_url
    return env | (extra or {})


class Child:
    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.process = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(10)
        return self.process.returncode


class ApiServer(Child):
    """`orderstream serve` on a free port (or, with pipeline=True, `orderstream run all` with its API on a free
    port: every service, every projector and the API); url, and an httpx client bound to it."""

    def __init__(
        self,
        settings: Settings,
        log: Path,
        env: dict[str, str] | None = None,
        token: str | None = None,
        pipeline: bool = False,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        extra = dict(env or {}) | {"ORDERSTREAM_API_PORT": str(self.port)}
        if token is not None:
            extra["ORDERSTREAM_API_TOKEN"] = token
        command = ["run", "all"] if pipeline else ["serve"]
        args = [sys.executable, "-m", "orderstream.cli.main", *_root_args(settings), *command]
        super().__init__(args, log, _env(settings, extra))
        self._wait_ready()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=60, **kwargs)

    def _wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"serve exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", headers=self.headers(), timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve did not answer within {timeout_s}s:\n{self.output()[-3000:]}")
