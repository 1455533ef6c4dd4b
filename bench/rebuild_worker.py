"""One rebuild (or decode-only read) of a pre-filled orders.events topic, in its own process so that its peak RSS is
its own. Prints one JSON line: events, seconds (start to done, group join included), steady_seconds and
steady_events (from the first applied batch to done), maxrss_kb (VmHWM: this process's own peak RSS).

python -m bench.rebuild_worker '{"mode": "project"|"decode", "bootstrap": ..., "topic_prefix": ..., "url": ...,
                                 "group": ..., "batch_size": N, "highs": {"0": offset, ...}, "data_dir": ...}'
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time


def project(args: dict, settings) -> dict:
    from orderstream.runtime.projector import Projector
    from orderstream.topology import ORDERS_EVENTS
    from orderstream.views.registry import spec_of
    from orderstream.views.store import NotInitialized, ProjectionStore

    spec = spec_of("order-view")
    topic = settings.topic(ORDERS_EVENTS)
    highs = {int(p): o for p, o in args["highs"].items()}
    total = sum(highs.values())
    projector = Projector(settings, spec, database_url=args["url"], group_id=args["group"])
    stop, failure = threading.Event(), []

    def work() -> None:
        try:
            projector.run(stop)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)

    began = time.perf_counter()
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    reader = ProjectionStore(args["url"], spec)
    first = None
    try:
        while True:
            time.sleep(0.05)
            if failure:
                raise failure[0]
            try:
                stored = reader.next_offsets()
            except NotInitialized:  # the projector has not created its tables yet
                continue
            done = sum(min(stored.get((topic, p), 0), h) for p, h in highs.items())
            if first is None and done:
                first = (time.perf_counter(), done)
            if done >= total:
                break
        ended = time.perf_counter()
    finally:
        stop.set()
        thread.join(60)
        reader.dispose()
    return {
        "events": total,
        "seconds": ended - began,
        "steady_seconds": ended - first[0],
        "steady_events": total - first[1],
    }


def decode(args: dict, settings) -> dict:
    from confluent_kafka import Consumer

    from orderstream.kafka.clients import consumer_config
    from orderstream.schemas.codec import Codec
    from orderstream.topology import ORDERS_EVENTS

    topic = settings.topic(ORDERS_EVENTS)
    highs = {int(p): o for p, o in args["highs"].items()}
    total = sum(highs.values())
    codec = Codec()
    consumer = Consumer(consumer_config(settings, args["group"]))
    began = time.perf_counter()
    consumer.subscribe([topic])
    size = settings.batch_size
    seen = 0
    first = None
    decoded = 0
    while seen < total:
        messages = consumer.consume(num_messages=size, timeout=0.5)
        if not messages:
            continue
        if first is None:
            first = time.perf_counter()
        for message in messages:
            if message.error():
                raise RuntimeError(message.error().str())
            codec.decode(message.value())
            decoded += 1
        seen += len(messages)
    ended = time.perf_counter()
    consumer.close()
    return {"events": decoded, "seconds": ended - began, "steady_seconds": ended - first, "steady_events": decoded}


def peak_rss_kb() -> int:
    """This process's peak RSS: VmHWM, the high-water mark of its own address space. Not ru_maxrss: on Linux a child
    inherits its parent's ru_maxrss at fork and keeps it across exec, so it would report the bench's own size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    args = json.loads(sys.argv[1])
    from orderstream.config import load_settings

    settings = load_settings(
        bootstrap_servers=args["bootstrap"],
        topic_prefix=args["topic_prefix"],
        data_dir=args["data_dir"],
        batch_size=args["batch_size"],
        projection_batch_size=args["batch_size"],
    )
    from orderstream.process_tuning import tune_collector

    tune_collector()  # as the CLI does for every command (`orderstream run`, `replay projection`)
    result = (project if args["mode"] == "project" else decode)(args, settings)
    result["maxrss_kb"] = peak_rss_kb()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
