"""`orderstream run all` as a supervisor: one per data directory, its children die with it (even by kill -9), and
`status` counts each group's members."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from orderstream.broker.daemon import pid_alive
from orderstream.cli.run import plan_processes
from orderstream.ops.status import collect_status
from orderstream.services.composition import SERVICES, watched_consumers
from tests.support.waiting import wait_for


def cli(settings, *args: str) -> list[str]:
    root = ["-b", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix]
    return [sys.executable, "-m", "orderstream.cli.main", *root, "--data-dir", str(settings.data_dir), *args]


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def started_children(supervisor: subprocess.Popen) -> list[int]:
    """The pids of a `run all --no-api`'s children, once it has started one per service and one per view."""
    planned = len(plan_processes(list(SERVICES)))
    return wait_for(
        lambda: len(children_of(supervisor.pid)) == planned and children_of(supervisor.pid),
        60,
        f"{planned} children",
    )


def all_running(settings) -> None:
    """Wait until every service's and every view's process has joined its group(s), once."""

    def one_member_each():
        rows = collect_status(settings, watched_consumers(settings), sample_s=0).consumers
        return all(r.members == 1 for r in rows) and {r.kind for r in rows} == {"service", "projection"}

    wait_for(one_member_each, 90, "one member in every service's and projection's group")


def test_one_run_all_per_data_dir_and_its_children_die_with_it(topics, tmp_path):
    log = (tmp_path / "run-all.log").open("w")
    supervisor = subprocess.Popen(cli(topics, "run", "all", "--no-api"), stdout=log, stderr=subprocess.STDOUT)
    children: list[int] = []
    try:
        children = started_children(supervisor)

        second = subprocess.run(cli(topics, "run", "all", "--no-api"), capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second
        assert second.stderr.count("\n") == 1 and "another `orderstream run all`" in second.stderr, second.stderr
        assert str(supervisor.pid) in second.stderr and second.stdout == ""

        all_running(topics)

        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(5)
        wait_for(lambda: not any(pid_alive(c) for c in children), 5, "every child gone after kill -9 of run all")
    finally:
        for pid in [supervisor.pid, *children]:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        supervisor.wait(10)
    # the lock file still names the dead supervisor, but the kernel released its lock: a new run all starts
    assert (topics.data_dir / "run-all.lock").read_text().strip() == str(supervisor.pid)
    third_log = tmp_path / "third.log"
    third = subprocess.Popen(
        cli(topics, "run", "all", "--no-api"), stdout=subprocess.DEVNULL, stderr=third_log.open("w")
    )
    try:
        started_children(third)  # a new run all starts its children
    finally:
        third.send_signal(signal.SIGTERM)
        assert third.wait(60) == 0, third_log.read_text()[-12000:]


def test_run_all_reports_a_child_that_does_not_stop_in_time(topics, tmp_path):
    """stop_timeout_s of a millisecond: no child can close its clients that fast, so each prints where it was and
    exits 1, and the supervisor names them and exits 1 instead of waiting."""
    stderr = tmp_path / "run-all.err"
    supervisor = subprocess.Popen(
        cli(topics, "run", "all", "--no-api"),
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("w"),
        env=os.environ | {"ORDERSTREAM_STOP_TIMEOUT_S": "0.001"},
    )
    children: list[int] = []
    try:
        children = started_children(supervisor)
        all_running(topics)  # past their start (9 processes starting on 2 cores take seconds): clients to close
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 1
    finally:
        for pid in [supervisor.pid, *children]:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    text = stderr.read_text()
    ending = " did not stop cleanly (exit code 1)"
    stuck = [line.removeprefix("error: ").removesuffix(ending) for line in text.splitlines() if line.endswith(ending)]
    assert stuck and not [line for line in text.splitlines() if " exited with code " in line], text[-3000:]
    for label in stuck:
        assert f"error: {label} did not stop within 0.001 s" in text, text[-3000:]
    assert not any(pid_alive(c) for c in children)
