"""Every Prometheus metric orderstream exports (docs/OBSERVABILITY.md lists them with their labels).

Names follow Prometheus' conventions: an `orderstream_` namespace, base units in the name (`_seconds`), `_total` on
counters, a few labels of low cardinality (service, stage, view, logical topic, partition, event type) - never an
order id or anything else that grows with the data.

The metrics live in prometheus-client's default registry, as the library intends (one per process). Under
`orderstream run all` each child writes them to files in PROMETHEUS_MULTIPROC_DIR and the supervisor serves the sum
(multiprocess mode, see exposition.py); the `multiprocess_mode` of each gauge says how the children's values combine.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE = "orderstream"

# Seconds. Batches and transactions: from a millisecond to the 30 s transaction timeout.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# End-to-end age of an event when a view applies it: live traffic is tens of ms; a replay of history is hours or more.
AGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# --- processors (the write side): labels service, stage (the processor), and where useful topic and partition ---
PROCESSOR = ("service", "stage")
records_in = Counter(
    "records_in_total",
    "Input records a processor consumed and committed (decided, or dead-lettered), by logical topic and partition",
    [*PROCESSOR, "topic", "partition"],
    namespace=NAMESPACE,
    subsystem="processor",
)
events_out = Counter(
    "events_out_total",
    "Changelog events a processor committed",
    PROCESSOR,
    namespace=NAMESPACE,
    subsystem="processor",
)
batches = Counter(
    "batches_total",
    "Batches (Kafka transactions) a processor committed",
    PROCESSOR,
    namespace=NAMESPACE,
    subsystem="processor",
)
batch_duration = Histogram(
    "batch_duration_seconds",
    "Time from a batch's first decision to its transaction's commit",
    PROCESSOR,
    namespace=NAMESPACE,
    subsystem="processor",
    buckets=DURATION_BUCKETS,
)
commit_duration = Histogram(
    "transaction_commit_duration_seconds",
    "Time commit_transaction took (the broker writing the transaction markers)",
    PROCESSOR,
    namespace=NAMESPACE,
    subsystem="processor",
    buckets=DURATION_BUCKETS,
)
aborts = Counter(
    "transaction_aborts_total",
    "Transactions that failed and were aborted (or abandoned with a fenced producer); the batch is retried",
    PROCESSOR,
    namespace=NAMESPACE,
    subsystem="processor",
)
fencings = Counter(
    "producer_fencings_total",
    "Fatal producer errors (fenced by a newer instance, or a blocked call past its deadline): producer recreated",
    PROCESSOR,
    namespace=NAMESPACE,
    subsystem="processor",
)

# --- every consumer (processor stages and views): label consumer = the stage or view name ---
rebalances = Counter(
    "rebalances_total",
    "Partition assignments and revocations a consumer went through",
    ["consumer", "event"],  # event: assigned | revoked
    namespace=NAMESPACE,
    subsystem="consumer",
)
dead_letters = Counter(
    "dead_letters_total",
    "Records sent to <topic>.dlq, by logical source topic and failure stage (decode, validate, apply)",
    ["consumer", "topic", "reason"],
    namespace=NAMESPACE,
)
lag = Gauge(
    "lag_records",
    "Offsets between a consumer's position and the partition's high watermark, as of its last batch",
    ["consumer", "topic", "partition"],
    namespace=NAMESPACE,
    subsystem="consumer",
    multiprocess_mode="livemostrecent",
)
last_event_time = Gauge(
    "last_event_timestamp_seconds",
    "Kafka timestamp of the last record a consumer committed (Unix time); its age is time() minus this",
    ["consumer", "topic", "partition"],
    namespace=NAMESPACE,
    subsystem="consumer",
    multiprocess_mode="livemostrecent",
)

# --- views (the read side): label view ---
view_events_applied = Counter(
    "events_applied_total",
    "Events a view applied (committed in its database), by event type",
    ["view", "type"],
    namespace=NAMESPACE,
    subsystem="view",
)
view_apply_duration = Histogram(
    "apply_duration_seconds",
    "Time a view's writer took to fold a batch and commit it with its offsets (one SQL transaction)",
    ["view"],
    namespace=NAMESPACE,
    subsystem="view",
    buckets=DURATION_BUCKETS,
)
view_end_to_end = Histogram(
    "end_to_end_age_seconds",
    "Age of each event when its view committed it: commit time minus the record's Kafka timestamp (when it was "
    "produced)",
    ["view"],
    namespace=NAMESPACE,
    subsystem="view",
    buckets=AGE_BUCKETS,
)
view_rebuild_applied = Gauge(
    "rebuild_events_applied",
    "Events a view's rebuild (`replay projection`) has applied so far",
    ["view"],
    namespace=NAMESPACE,
    subsystem="view",
    multiprocess_mode="livesum",
)
view_rebuild_progress = Gauge(
    "rebuild_progress_ratio",
    "Offsets a view's rebuild has read over the offsets it has to read in its current phase (0..1)",
    ["view", "phase"],
    namespace=NAMESPACE,
    subsystem="view",
    multiprocess_mode="livemostrecent",
)

# --- commands sent (CLI place/cancel/..., HTTP API) ---
commands_sent = Counter(
    "commands_sent_total",
    "Commands written to a command topic (acknowledged by the broker), by command type",
    ["type"],
    namespace=NAMESPACE,
)

# --- HTTP API ---
http_request_duration = Histogram(
    "request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status code",
    ["method", "route", "status"],
    namespace=NAMESPACE,
    subsystem="http",
    buckets=DURATION_BUCKETS,
)


def observe_many(histogram_child: Histogram, values: Iterable[float]) -> None:
    """Observe many values at once: one increment per bucket touched instead of one locked write per value.

    A view commits thousands of events per batch; histogram.observe() per event (a lock, and in multiprocess mode an
    mmap write) would cost a measurable share of a rebuild. The result is the same as observing each value."""
    bounds = histogram_child._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for value in values:
        counts[bisect_left(bounds, value)] += 1
        total += value
    if not total and not any(counts):
        return
    for index, count in enumerate(counts):
        if count:
            histogram_child._buckets[index].inc(count)
    histogram_child._sum.inc(total)
