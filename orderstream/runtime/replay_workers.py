"""`replay projection NAME --processes N`: the build phase of a replay split across N worker processes.

One Python process folds ~35-40k events/s into SQLite and uses about one core (the GIL); more cores only help with
more processes. The replay's partitions are split into N groups of about equal size; each worker assigns its group
with its own consumer and folds it into the shadow generation through its own ProjectionStore, exactly as a
single-process replay does (rows and that partition's next offset in one transaction per batch). The parent keeps
everything else: the lock, the plan, the progress bar, the catch-up and the swap.

Why workers never step on each other: an aggregate's events all sit on one partition, so each worker's upserts touch
rows no other worker writes; rows shared across aggregates (status counts, daily sales) are increments, which
commute. ProjectionStore.apply folds outside its write transaction, so on SQLite, where one writer holds the file at
a time, the workers fold in parallel and only take turns to write.

A worker dies with its parent (PR_SET_PDEATHSIG on Linux, and a check of its parent before every batch): a killed
replay leaves no worker writing into a generation the next replay drops and builds again. A worker that fails or dies
fails the replay (ReplayError): nothing is swapped, and the next replay starts cleanly.
"""

from __future__ import annotations

import os
import queue as queues
import sys
import time
from dataclasses import dataclass
from typing import Any

from orderstream.config import Settings
from orderstream.runtime.replay import ProjectionReplay, ReplayError, ReplayInterrupted, copied_skip
from orderstream.views.registry import ProjectionSpec
from orderstream.views.store import Position, ProjectionStore

_POLL_S = 0.2
_GRACE_S = 1.0


def split_partitions(sizes: dict[Position, int], groups: int) -> list[list[Position]]:
    """The partitions with something to read, in at most `groups` groups of about equal total size (largest first,
    each to the lightest group so far). Pure."""
    loads: list[tuple[int, list[Position]]] = [(0, []) for _ in range(max(1, groups))]
    for position in sorted((p for p in sizes if sizes[p] > 0), key=lambda p: (-sizes[p], p)):
        index = min(range(len(loads)), key=lambda i: (loads[i][0], i))
        total, members = loads[index]
        loads[index] = (total + sizes[position], [*members, position])
    return [sorted(members) for _, members in loads if members]


@dataclass(frozen=True)
class WorkOrder:
    """What worker number `index` builds: its partitions' [start, end) into generation `target`."""

    index: int
    settings: Settings
    projection: str
    database_url: str
    target: int
    starts: dict[Position, int]
    ends: dict[Position, int]
    rebuilt: set[str] | None
    copied_up_to: dict[Position, int]
    parent: int


def projection_replay(
    settings: Settings, spec: ProjectionSpec, *, processes: int = 1, **options: Any
) -> ProjectionReplay:
    """A ProjectionReplay whose build phase runs in `processes` worker processes when there is more than one."""
    return ProjectionReplay(
        settings, spec, processes=processes, parallel_build=build_in_parallel if processes > 1 else None, **options
    )


def build_in_parallel(
    replay: ProjectionReplay,
    target: int,
    starts: dict[Position, int],
    ends: dict[Position, int],
    rebuilt: set[str] | None,
    copied_up_to: dict[Position, int],
) -> dict[Position, int]:
    """Run the "replay" phase in replay.processes workers; returns the positions reached (as consume_into does) and
    adds the workers' applied and skipped counts to the replay's."""
    import multiprocessing

    sizes = {p: max(0, ends.get(p, 0) - starts[p]) for p in starts}
    groups = split_partitions(sizes, replay.processes)
    replay.progress.phase("replay", sum(sizes.values()))
    reached = dict(starts)
    if not groups:
        return reached
    context = multiprocessing.get_context("spawn")  # never fork a process that holds librdkafka threads
    messages = context.Queue()
    orders = [
        WorkOrder(n, replay.settings, replay.spec.name, replay.database_url, target, {p: starts[p] for p in group},
                  {p: ends[p] for p in group}, rebuilt, copied_up_to, os.getpid())
        for n, group in enumerate(groups)
    ]  # fmt: skip
    workers = [context.Process(target=_work, args=(order, messages), name=f"replay-{n}", daemon=True)
               for n, order in enumerate(orders)]  # fmt: skip
    finished: set[int] = set()
    dead_since: dict[int, float] = {}
    try:
        for worker in workers:
            worker.start()
        while len(finished) < len(workers):
            if replay.stop.is_set():
                raise ReplayInterrupted(f"{replay.spec.name}: replay interrupted; the live projection is untouched")
            try:
                kind, n, *payload = messages.get(timeout=_POLL_S)
            except queues.Empty:
                kind = None
            if kind == "advance":
                replay.progress.advance(*payload)
            elif kind == "done":
                positions, applied, skipped, rejected = payload
                reached.update(positions)
                replay.count(applied, skipped, rejected)
                finished.add(n)
            elif kind == "failed":
                raise ReplayError(
                    f"{payload[0]} (replay worker {n}, partitions {_names(groups[n])}); nothing was swapped"
                )
            _check_alive(replay.spec.name, workers, groups, finished, dead_since)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
        for worker in workers:
            worker.join(30)
        messages.close()
    return reached


def _check_alive(name, workers, groups, finished, dead_since: dict[int, float]) -> None:
    """Fail the replay when a worker exited without reporting: killed, or crashed without a word. A worker's last
    messages are still in the queue for a moment after it exits, so it is only declared dead a second later."""
    for n, worker in enumerate(workers):
        if n in finished or worker.exitcode is None:
            continue
        first_seen = dead_since.setdefault(n, time.monotonic())
        if time.monotonic() - first_seen > _GRACE_S:
            raise ReplayError(
                f"{name}: replay worker {n} (partitions {_names(groups[n])}) exited with code {worker.exitcode} "
                "before it finished; nothing was swapped, run the replay again"
            )


def _names(group: list[Position]) -> str:
    return ", ".join(f"{topic}:{partition}" for topic, partition in group)


class _Report:
    """A worker's ReplayProgress: its advances go to the parent, which draws the one progress bar."""

    def __init__(self, messages, index: int) -> None:
        self.messages, self.index = messages, index

    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self, offsets: int, events: int) -> None:
        self.messages.put(("advance", self.index, offsets, events))


class _ParentGone:
    """The worker's stop flag: set once the process that started it is gone."""

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def is_set(self) -> bool:
        return os.getppid() != self.parent


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # gone before the line above took effect
        os._exit(1)


def _work(order: WorkOrder, messages) -> None:
    """A worker's whole life: build its partitions, report, exit. Errors are reported as one line, then exit 1."""
    _die_with_parent(order.parent)
    from orderstream.process_tuning import tune_collector
    from orderstream.views.registry import spec_of

    tune_collector()  # as the CLI does: fewer collections of the many short-lived objects a fold makes
    number = order.index
    replay = ProjectionReplay(
        order.settings,
        spec_of(order.projection),
        database_url=order.database_url,
        progress=_Report(messages, number),
        stop=_ParentGone(order.parent),
    )  # type: ignore[arg-type]
    store = consumer = None
    try:
        store = ProjectionStore(order.database_url, replay.spec, writer=True)
        consumer = replay.new_consumer()
        skip = copied_skip(order.rebuilt, order.copied_up_to)
        reached = replay.consume_into(consumer, store, order.target, order.starts, order.ends, skip, "replay")
        messages.put(("done", number, reached, replay.applied, replay.skipped, replay.rejected))
    except (KeyboardInterrupt, ReplayInterrupted):
        sys.exit(130)  # Ctrl-C reached the whole process group, or the parent is gone: it reports for itself
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the replay with it
        messages.put(("failed", number, str(exc) or type(exc).__name__))
        sys.exit(1)
    finally:
        if consumer is not None:
            consumer.close()
        if store is not None:
            store.dispose()
