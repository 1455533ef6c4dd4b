"""Kill `orderstream replay ...` half-way (a real process: SIGKILL from outside, or a crash injected inside the
transaction), then run it again.

- replay projection: the live projection (rows, offsets, pointer) is unchanged by the killed run; the next run drops
  the half-built generation and swaps in a copy equal to the live one. On SQLite and PostgreSQL.
- replay topic: the re-run resumes where the committed transactions stopped; the destination holds every matching
  record exactly once (checked by the source position each copy carries).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from orderstream import failpoints
from orderstream.broker.daemon import pid_alive
from orderstream.producers.topic_copy import SOURCE_HEADER, CopyFilter
from orderstream.services.projections import build_projections
from orderstream.views.registry import SPECS, spec_of
from orderstream.views.store import ProjectionStore
from tests.support.databases import url_of
from tests.support.event_log import EventLog, digests_all, order_events_topic, wait_applied, write_orders
from tests.support.histories import random_history
from tests.support.orders import RunningService
from tests.support.topic_copy import create, expected_copy, fill, read_all, without_offsets


def cli(settings, *args: str, env: dict[str, str] | None = None, log_path=None) -> subprocess.Popen:
    command = [sys.executable, "-m", "orderstream.cli.main", "--bootstrap-servers", settings.effective_bootstrap,
               "--topic-prefix", settings.topic_prefix, "--data-dir", str(settings.data_dir), *args]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if k != failpoints.ENV} | (env or {})
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed by the process's end
    return subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen, log_path, timeout: float = 90) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the replay did not finish:\n{log_path.read_text()[-3000:]}") from None


def children_of(pid: int) -> list[int]:
    """The live child processes of pid (Linux /proc), e.g. a replay's worker processes (and its resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def snapshot(url: str, name: str):
    store = ProjectionStore(url, spec_of(name))
    try:
        return store.pointer(), store.next_offsets(), store.digests()
    finally:
        store.dispose()


def test_a_killed_projection_replay_leaves_the_live_projection_untouched_and_the_next_one_succeeds(
    settings, db_url, tmp_path
):
    settings = order_events_topic(settings).model_copy(update={"database_url": db_url, "projection_batch_size": 200})
    rng = random.Random(12)
    histories = [random_history(rng, f"k{n}", prefix="k") for n in range(800)]
    log = EventLog(settings)
    running = RunningService(build_projections(settings, tuple(SPECS))).start()
    write_orders(log, histories)
    wait_applied(settings.database_url, log, timeout_s=60, check=running.check)
    running.stop()
    name, url = "order-view", url_of(db_url, "order-view")
    live = snapshot(url, name)
    env = {"ORDERSTREAM_DATABASE_URL": db_url, "ORDERSTREAM_PROJECTION_BATCH_SIZE": "100"}

    # 1. a crash inside the replay (after its 5th batch was written to the shadow generation)
    path = tmp_path / "crash.log"
    crashed = cli(
        settings,
        "replay",
        "projection",
        name,
        "--from-beginning",
        env=env | {failpoints.ENV: "replay_batch@5"},
        log_path=path,
    )
    assert finish(crashed, path) == failpoints.EXIT_CODE, path.read_text()[-2000:]
    assert snapshot(url, name) == live
    store = ProjectionStore(url, spec_of(name))
    assert store.generations() == {live[0][1], live[0][1] + 1}  # the half-built one is there ...

    # 1b. a crash inside one worker of a replay split across processes: the replay fails, naming it
    path = tmp_path / "worker-crash.log"
    crashed = cli(settings, "replay", "projection", name, "--from-beginning", "--processes", "2",
                  env=env | {failpoints.ENV: "replay_batch@3"}, log_path=path)  # fmt: skip
    assert finish(crashed, path) == 1, path.read_text()[-2000:]
    assert "replay worker" in path.read_text() and "nothing was swapped" in path.read_text()
    assert snapshot(url, name) == live

    # 2. SIGKILL from outside while a replay split across two worker processes works: the workers die with it
    path = tmp_path / "kill.log"
    working = cli(
        settings, "replay", "projection", name, "--from-beginning", "--processes", "2", env=env, log_path=path
    )
    deadline, left_behind, dropped = time.monotonic() + 60, sum(store.next_offsets(live[0][1] + 1).values()), False
    while True:  # until it has dropped the half-built N+1 and rebuilt some of it again
        done_so_far = sum(store.next_offsets(live[0][1] + 1).values())
        dropped = dropped or done_so_far < left_behind
        if dropped and done_so_far >= 300:
            break
        assert working.poll() is None, path.read_text()[-2000:]
        assert time.monotonic() < deadline, "the replay made no progress"
        time.sleep(0.01)
    workers = children_of(working.pid)
    assert len(workers) >= 2, "the replay runs without its worker processes"
    working.send_signal(signal.SIGKILL)
    assert working.wait(30) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(pid) for pid in workers), "a replay worker outlived the killed replay"
    assert snapshot(url, name) == live

    # 3. the next replay starts cleanly and swaps in a copy equal to the live one
    path = tmp_path / "done.log"
    done = cli(
        settings, "replay", "projection", name, "--from-beginning", "--processes", "2", "--json", env=env, log_path=path
    )
    assert finish(done, path) == 0, path.read_text()[-2000:]
    pointer, _, digests = snapshot(url, name)
    assert pointer == (spec_of(name).schema_version, live[0][1] + 1)
    assert digests == live[2] and digests_all(db_url)[name] == live[2]
    assert store.generations() == {live[0][1], live[0][1] + 1}
    store.dispose()
    log.close()


def test_a_killed_topic_copy_resumes_without_duplicates(settings, tmp_path):
    source = create(settings, "kill.src", 3)
    fill(settings, source, 1000, seed=4)
    records = read_all(settings, source)
    expected = expected_copy(records, source, CopyFilter(event_type="OrderPlaced"))
    env = {"ORDERSTREAM_BATCH_SIZE": "10"}  # many small transactions: the SIGKILL lands in the middle
    args = ("replay", "topic", "kill.src", "--to", "kill.dst", "--type", "OrderPlaced")

    path = tmp_path / "crash.log"  # killed inside its 3rd transaction, after producing, before the commit
    crashed = cli(settings, *args, env=env | {failpoints.ENV: "copy_batch@3"}, log_path=path)
    assert finish(crashed, path) == failpoints.EXIT_CODE, path.read_text()[-2000:]
    first = read_all(settings, settings.topic("kill.dst"))
    assert 0 < len(first) < len(expected)

    path = tmp_path / "kill.log"  # SIGKILL from outside while it copies
    working = cli(settings, *args, env=env, log_path=path)
    deadline = time.monotonic() + 60
    while len(read_all(settings, settings.topic("kill.dst"))) <= len(first):
        assert working.poll() is None, path.read_text()[-2000:]
        assert time.monotonic() < deadline, "the copy made no progress"
        time.sleep(0.05)
    working.send_signal(signal.SIGKILL)
    assert working.wait(30) == -signal.SIGKILL

    path = tmp_path / "done.log"
    done = cli(settings, *args, env=env, log_path=path)
    assert finish(done, path) == 0, path.read_text()[-2000:]
    copied = read_all(settings, settings.topic("kill.dst"))
    sources = Counter(dict(headers)[SOURCE_HEADER] for *_, headers, _ in copied)
    assert max(sources.values()) == 1, "a record was copied twice"
    assert without_offsets(copied) == expected
