"""The load generator: sends a LoadProfile's commands to orders.commands, optionally rate-limited and in parallel.

Every record's delivery is confirmed (idempotent producer, acks=all) before the run reports success; a failed
delivery makes the whole run fail with the count and the first error. Progress is reported through callbacks, by
time (a small or rate-limited load shows progress too), counting acknowledged records only.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from orderstream.config import Settings
from orderstream.domain.commands import PlaceOrder
from orderstream.producers.load_plan import LoadProfile, plan_commands
from orderstream.topology import ORDERS_COMMANDS

SOURCE = "orderstream/generator"
PROGRESS_INTERVAL_S = 0.1  # a smooth bar; at ~80k records/s one clock read per record costs well under 1%
FLUSH_TIMEOUT_S = 120.0  # how long the acknowledgements of what is sent may take, at most


class GeneratorError(RuntimeError):
    """The load could not be sent: its topic is missing, or a generator process stopped (the message says why)."""


@dataclass(frozen=True)
class GenerateResult:
    orders: int
    records: int
    failed: int  # records not acknowledged: reported failed, or still unacknowledged after FLUSH_TIMEOUT_S
    seconds: float
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def acknowledged(self) -> int:
        return self.records - self.failed


def send_range(
    settings: Settings,
    profile: LoadProfile,
    start: int,
    stop: int,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Send the commands of orders start..stop-1 and wait (FLUSH_TIMEOUT_S at most) until every record is acknowledged.

    Every PROGRESS_INTERVAL_S, sending and waiting alike: on_progress(n), n more records acknowledged (only those:
    a record queued is not yet sent), and on_total(t) when the count of records this range sends changes: an estimate
    from the cancel ratio, refined as the plan unfolds, so it is exact once the last record is queued.
    """
    from confluent_kafka import Producer

    from orderstream.kafka.clients import producer_config
    from orderstream.schemas.wire import codec_for

    codec = codec_for(settings)
    topic = settings.topic(ORDERS_COMMANDS)
    # Delivery reports for failures only: a Python callback per acknowledged record cost more than encoding it.
    # Success is still confirmed: flush() returns 0 only once every record is acknowledged or reported failed.
    producer = Producer(
        producer_config(
            settings,
            **{
                "linger.ms": 20,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 500_000,
                "delivery.report.only.error": True,
            },
        )
    )
    _require_topic(producer, topic)
    failures: list[str] = []

    def failed(err, _msg) -> None:
        failures.append(err.str())

    tracker = _Tracker(producer, failures, stop - start, profile.cancel_ratio, on_progress, on_total)
    began = time.perf_counter()
    sent = placed = 0
    tick = began + PROGRESS_INTERVAL_S
    encode, headers_of, produce, clock = codec.encode, codec.headers, producer.produce, time.perf_counter
    for sent, command in enumerate(plan_commands(profile, lambda: datetime.now(UTC), start, stop), start=1):
        value = encode(command)
        headers = headers_of(command, SOURCE)
        placed += type(command) is PlaceOrder
        while True:
            try:
                produce(topic, value, command.order_id.encode(), headers=headers, on_delivery=failed)
                break
            except BufferError:
                producer.poll(0.05)
        if (now := clock()) >= tick:  # by time, not by count: a slow or small load shows progress too
            tracker.report(sent, placed)
            tick = now + PROGRESS_INTERVAL_S
        if rate:
            ahead = sent / rate - (now - began)
            if ahead > 0:
                time.sleep(ahead)
    remaining = tracker.drain(sent, placed)
    elapsed = time.perf_counter() - began
    first_error = failures[0] if failures else None
    if remaining and first_error is None:
        first_error = (
            f"no acknowledgement from the broker at {settings.effective_bootstrap} within "
            f"{FLUSH_TIMEOUT_S:.0f}s (is it running? `orderstream status` checks)"
        )
    # every record is acknowledged, reported failed (one report each) or still unacknowledged at the deadline
    return GenerateResult(stop - start, sent, len(failures) + remaining, elapsed, first_error)


def _require_topic(producer, topic: str) -> None:
    """Refuse at once to send to a topic that does not exist: the producer would hold every record for it until
    librdkafka gives up on the topic (30 s), then fail them all."""
    from orderstream.kafka.topics import topic_exists

    if not topic_exists(producer, topic, timeout_s=10):
        raise GeneratorError(f"topic {topic} does not exist (run `orderstream topics init`)")


class _Tracker:
    """What send_range tells its callbacks: records acknowledged since the last report, and the expected total.

    Acknowledged = sent, less what the producer still holds (queued, in flight, or a failure not yet served), less
    what failed: delivery reports come for failures only (see send_range)."""

    def __init__(
        self,
        producer,
        failures: list[str],
        orders: int,
        cancel_ratio: float,
        on_progress: Callable[[int], None] | None,
        on_total: Callable[[int], None] | None,
    ) -> None:
        self.producer, self.failures, self.orders, self.cancel_ratio = producer, failures, orders, cancel_ratio
        self.on_progress, self.on_total = on_progress, on_total
        self.acknowledged = 0
        self.total = expected_records(orders, cancel_ratio)
        if on_total:
            on_total(self.total)

    def estimate(self, sent: int, placed: int) -> int:
        """Records queued so far plus the expected records of the orders not yet planned (exact once all are)."""
        return sent + expected_records(self.orders - placed, self.cancel_ratio)

    def report(self, sent: int, placed: int) -> None:
        self.producer.poll(0)  # serves failure reports, so they are not counted as acknowledged
        if self.on_total and (total := self.estimate(sent, placed)) != self.total:
            self.total = total
            self.on_total(total)
        acknowledged = sent - len(self.producer) - len(self.failures)
        if self.on_progress and acknowledged > self.acknowledged:
            self.on_progress(acknowledged - self.acknowledged)
        self.acknowledged = max(self.acknowledged, acknowledged)

    def drain(self, sent: int, placed: int) -> int:
        """Wait until every record is acknowledged or failed, FLUSH_TIMEOUT_S at most, reporting as acknowledgements
        come in; the number of records still unacknowledged at the deadline."""
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while self.producer.flush(PROGRESS_INTERVAL_S) and time.monotonic() < deadline:
            self.report(sent, placed)
        self.report(sent, placed)
        return len(self.producer)  # after report() served the last failure reports, so none is counted twice


def expected_records(orders: int, cancel_ratio: float) -> int:
    """What a load of `orders` is expected to send before its plan is known: each order, plus the cancellations."""
    return round(orders * (1 + cancel_ratio))


def _worker(settings, profile, start, stop, rate, counter, total, results) -> None:
    """One process's slice. It always reports: its GenerateResult, or what stopped it (a str), so that the parent
    can say it in one line (an exception left to multiprocessing would print a traceback and report nothing)."""
    estimate = [expected_records(stop - start, profile.cancel_ratio)]  # the parent counted this one already

    def progress(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    def retotal(t: int) -> None:
        with total.get_lock():
            total.value += t - estimate[0]
        estimate[0] = t

    try:
        results.put(send_range(settings, profile, start, stop, rate, progress, retotal))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which fails with it
        results.put(str(exc) if isinstance(exc, GeneratorError) else f"{type(exc).__name__}: {exc}")


def generate(
    settings: Settings,
    profile: LoadProfile,
    rate: float | None = None,
    processes: int = 1,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Send the whole profile; with processes > 1 each process sends a contiguous slice (rate is shared out).

    on_progress and on_total: as in send_range, for the whole load. Raises GeneratorError when a process fails."""
    if processes <= 1:
        return send_range(settings, profile, 0, profile.orders, rate, on_progress, on_total)
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    results = context.Queue()
    bounds = [profile.orders * p // processes for p in range(processes + 1)]
    total = context.Value(
        "q", sum(expected_records(bounds[p + 1] - bounds[p], profile.cancel_ratio) for p in range(processes))
    )
    share = rate / processes if rate else None
    workers = [
        context.Process(
            target=_worker, args=(settings, profile, bounds[p], bounds[p + 1], share, counter, total, results)
        )
        for p in range(processes)
    ]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    seen = [0, None]  # acknowledged and total last reported

    def report() -> None:  # each shared value read once: the workers go on adding to them meanwhile
        acknowledged, expected = counter.value, total.value
        if on_progress and acknowledged > seen[0]:
            on_progress(acknowledged - seen[0])
            seen[0] = acknowledged
        if on_total and expected != seen[1]:
            seen[1] = expected
            on_total(expected)

    parts: list[GenerateResult | str] = []
    report()
    while len(parts) < processes:
        time.sleep(PROGRESS_INTERVAL_S)
        while not results.empty():
            parts.append(results.get())
        report()
        if len(parts) < processes and not any(w.is_alive() for w in workers) and results.empty():
            codes = sorted({w.exitcode for w in workers if w.exitcode})
            raise GeneratorError(
                f"a generator process exited (code {codes}) without reporting; run with --processes 1 to see why"
            )
    for worker in workers:
        worker.join()
    report()
    stopped = [p for p in parts if isinstance(p, str)]
    if stopped:
        raise GeneratorError(stopped[0])
    done = [p for p in parts if isinstance(p, GenerateResult)]
    errors = [p.first_error for p in done if p.first_error]
    return GenerateResult(
        orders=profile.orders,
        records=sum(p.records for p in done),
        failed=sum(p.failed for p in done),
        seconds=time.perf_counter() - began,
        first_error=errors[0] if errors else None,
    )
