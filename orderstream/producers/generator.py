"""The load generator: sends a LoadProfile's commands to orders.commands, optionally rate-limited and in parallel.

Every record's delivery is confirmed (idempotent producer, acks=all) before the run reports success; a failed
delivery makes the whole run fail with the count and the first error. Progress is reported through a callback.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from orderstream.config import Settings
from orderstream.producers.load_plan import LoadProfile, plan_commands
from orderstream.topology import ORDERS_COMMANDS

SOURCE = "orderstream/generator"


@dataclass(frozen=True)
class GenerateResult:
    orders: int
    records: int
    failed: int
    seconds: float
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def send_range(
    settings: Settings,
    profile: LoadProfile,
    start: int,
    stop: int,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Send the commands of orders start..stop-1 and wait until every record is acknowledged."""
    from confluent_kafka import Producer

    from orderstream.clients import producer_config
    from orderstream.schemas.codec import Codec

    codec = Codec()
    topic = settings.topic(ORDERS_COMMANDS)
    # Delivery reports for failures only: a Python callback per acknowledged record cost more than encoding it.
    # Success is still confirmed: flush() returns 0 only once every record is acknowledged or reported failed.
    producer = Producer(producer_config(settings, **{"linger.ms": 20, "batch.num.messages": 10_000,
                                                    "queue.buffering.max.messages": 500_000,
                                                    "delivery.report.only.error": True}))
    failures: list[str] = []

    def failed(err, _msg) -> None:
        failures.append(err.str())

    def acked() -> int:  # sent, less what is still queued or in flight, less what failed
        return sent - len(producer) - len(failures)

    began = time.perf_counter()
    sent = 0
    reported = 0
    encode, headers_of, produce = codec.encode, codec.headers, producer.produce
    for sent, command in enumerate(plan_commands(profile, lambda: datetime.now(UTC), start, stop), start=1):
        value = encode(command)
        headers = headers_of(command, SOURCE)
        while True:
            try:
                produce(topic, value, command.order_id.encode(), headers=headers, on_delivery=failed)
                break
            except BufferError:
                producer.poll(0.05)
        if sent % 1000 == 0:
            producer.poll(0)
            if on_progress:
                done = acked()
                on_progress(done - reported)
                reported = done
        if rate:
            ahead = sent / rate - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)
    remaining = producer.flush(120)
    if on_progress:
        on_progress(acked() - reported)
    if remaining:
        failures.append(f"{remaining} records still unacknowledged after 120s")
    elapsed = time.perf_counter() - began
    return GenerateResult(stop - start, sent, len(failures), elapsed, failures[0] if failures else None)


def _worker(settings, profile, start, stop, rate, counter, results) -> None:
    def progress(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    results.put(send_range(settings, profile, start, stop, rate, progress))


def generate(
    settings: Settings,
    profile: LoadProfile,
    rate: float | None = None,
    processes: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Send the whole profile; with processes > 1 each process sends a contiguous slice (rate is shared out)."""
    if processes <= 1:
        return send_range(settings, profile, 0, profile.orders, rate, on_progress)
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    results = context.Queue()
    bounds = [profile.orders * p // processes for p in range(processes + 1)]
    share = rate / processes if rate else None
    workers = [
        context.Process(target=_worker, args=(settings, profile, bounds[p], bounds[p + 1], share, counter, results))
        for p in range(processes)
    ]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    seen = 0
    parts: list[GenerateResult] = []
    while len(parts) < processes:
        time.sleep(0.1)
        while not results.empty():
            parts.append(results.get())
        if on_progress and counter.value > seen:
            on_progress(counter.value - seen)
            seen = counter.value
        if len(parts) < processes and not any(w.is_alive() for w in workers) and results.empty():
            raise RuntimeError("a generator process died without reporting")
    for worker in workers:
        worker.join()
    if on_progress and counter.value > seen:
        on_progress(counter.value - seen)
    errors = [p.first_error for p in parts if p.first_error]
    return GenerateResult(
        orders=profile.orders,
        records=sum(p.records for p in parts),
        failed=sum(p.failed for p in parts),
        seconds=time.perf_counter() - began,
        first_error=errors[0] if errors else None,
    )
