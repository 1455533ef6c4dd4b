"""Test-only fault injection: crash the process at a named point, the way SIGKILL would.

ORDERSTREAM_FAULT=<point>[@N] makes the Nth arrival (default the 1st) at <point> print one line on stderr and call
os._exit(86): no finally blocks, no flush, no commit - exactly like a kill -9 at that line. Points:
- mid_batch: inside the projector's SQL transaction, after the rows and offsets are written, before COMMIT.
- after_sql_commit: after the SQL commit, before the offsets are committed to Kafka.
Unset (always, outside tests) point() costs one environment lookup.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter

ENV = "ORDERSTREAM_FAULT"
EXIT_CODE = 86
_arrivals: Counter[str] = Counter()
_lock = threading.Lock()


def point(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    with _lock:
        _arrivals[name] += 1
        if _arrivals[name] != int(nth or 1):
            return
        sys.stderr.write(f"fault injected: {name} (arrival {_arrivals[name]}), exiting with {EXIT_CODE}\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
