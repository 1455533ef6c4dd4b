"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl (Debian's postgresql package) in a temp dir."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orderstream.broker.daemon import free_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"{name} not found: apt-get install postgresql")
    return candidates[-1]


@dataclass
class PostgresCluster:
    datadir: Path
    port: int
    user: str
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _run([_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"], self.run_as, check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _run(command: list[str], run_as: str | None, check: bool = True) -> subprocess.CompletedProcess:
    if run_as:
        command = ["runuser", "-u", run_as, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return result


def start_test_postgres(home: Path) -> PostgresCluster:
    """initdb a cluster in home (trust auth on loopback) and start it on a free port."""
    run_as = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the postgres system user, in a dir it owns
        run_as = "postgres"
        owner = pwd.getpwnam(run_as)
        home = Path(tempfile.mkdtemp(prefix="orderstream-pg-"))
        os.chown(home, owner.pw_uid, owner.pw_gid)
    datadir = home / "data"
    user = "orderstream"
    _run([_pg_bin("initdb"), "-D", str(datadir), "-U", user, "-A", "trust", "--no-sync", "-E", "UTF8"], run_as)
    port = free_port()
    options = (
        f"-p {port} -k {home} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    _run(
        [_pg_bin("pg_ctl"), "-D", str(datadir), "-o", options, "-l", str(home / "pg.log"), "-w", "-t", "60", "start"],
        run_as,
    )
    return PostgresCluster(datadir=datadir, port=port, user=user, run_as=run_as)
