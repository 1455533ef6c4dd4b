"""No stop waits forever: a `run` process stuck past stop_timeout_s prints where and exits 1 (cli/supervision.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent(
    """
    import signal, sys, threading, time
    from orderstream.cli.supervision import stop_handler

    stop = threading.Event()
    signal.signal(signal.SIGTERM, stop_handler(stop, "projections", float(sys.argv[1])))

    def stuck_in_a_client_call():
        stop.wait()
        time.sleep(float(sys.argv[2]))  # a close() that does not return for this long

    worker = threading.Thread(target=stuck_in_a_client_call)
    worker.start()
    print("ready", flush=True)
    worker.join()
    """
)


def start(stop_timeout_s: float, close_takes_s: float) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, str(stop_timeout_s), str(close_takes_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline() == "ready\n"
    return process


def test_a_stop_stuck_past_the_timeout_says_where_and_exits_1():
    process = start(stop_timeout_s=0.5, close_takes_s=600)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    first, *stacks = stderr.splitlines()
    assert first.startswith("error: projections did not stop within 0.5 s (setting stop_timeout_s)"), first
    assert "Nothing is lost" in first
    assert any("stuck_in_a_client_call" in line for line in stacks), stderr


def test_a_clean_stop_within_the_timeout_exits_0_without_waiting_for_it():
    process = start(stop_timeout_s=60, close_takes_s=0.2)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert (process.returncode, stderr) == (0, "")
    assert time.monotonic() - started < 30  # not the 60 s timer: it is a daemon thread
