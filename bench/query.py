"""Query latency: `query order ID` (order_view.order_detail: summary, lines, timeline) on an order view of N orders in
SQLite, timed in-process. The view's tables are filled directly with SQLAlchemy Core bulk inserts through the
projection's own table definitions (ProjectionStore.ensure creates them, indexes included), not through Kafka."""

from __future__ import annotations

import json
import random
import statistics
import time

from bench.env import BenchEnv

CHUNK = 20_000
TYPES = ("OrderPaymentUpdated", "OrderLineReservationUpdated", "OrderConfirmed", "OrderShipped", "OrderDelivered")


def _fill(store, orders: int) -> None:
    """N orders of 1-6 events and 1-4 lines, as the order view (schema 4 and 5) stores them: one row per order, its
    lines and timeline as the row's compact JSON columns."""
    tables = store.tables(store.ensure())
    rng = random.Random(3)
    rows: list[dict] = []
    compact = {"separators": (",", ":")}
    statuses = dict(zip(TYPES, (None, None, "CONFIRMED", "SHIPPED", "DELIVERED"), strict=True))

    with store.engine.begin() as conn:
        for n in range(orders):
            oid = f"o-{n:09d}"
            at = f"2025-01-{1 + n % 28:02d}T{n % 24:02d}:00:00.000000Z"
            events = rng.randint(1, 6)
            lines = [
                (f"SKU-{rng.randrange(500):05d}", rng.randint(1, 3), rng.randrange(199, 19_999))
                for _ in range(rng.randint(1, 4))
            ]
            timeline = [(1, "OrderPlaced", at, f"e-{n}-1", None, "PLACED")]
            for version in range(2, events + 1):
                kind = TYPES[version - 2]
                timeline.append((version, kind, at, f"e-{n}-{version}", None, statuses[kind]))
            rows.append(
                {
                    "order_id": oid,
                    "customer_id": f"c-{rng.randrange(50_000):06d}",
                    "status": "DELIVERED" if events == 6 else "PLACED",
                    "currency": "EUR",
                    "total_minor": sum(quantity * price for _, quantity, price in lines),
                    "version": events,
                    "payment_status": None,
                    "placed_at": at,
                    "updated_at": at,
                    "lines": json.dumps(lines, **compact),
                    "timeline": json.dumps(timeline, **compact),
                }
            )
            if len(rows) >= CHUNK:
                conn.execute(tables["orders"].insert(), rows)
                rows.clear()
        if rows:
            conn.execute(tables["orders"].insert(), rows)


def bench_query(env: BenchEnv, orders: int, samples: int = 3000) -> list[dict]:
    from orderstream.views.order_view import order_detail
    from orderstream.views.queries import ReadModel
    from orderstream.views.registry import spec_of
    from orderstream.views.store import ProjectionStore

    url = f"sqlite:///{env.workdir / 'query'}/order_view.db"
    store = ProjectionStore(url, spec_of("order-view"), writer=True)
    began = time.perf_counter()
    _fill(store, orders)
    store.dispose()
    fill_seconds = time.perf_counter() - began
    rng = random.Random(5)
    ids = [f"o-{rng.randrange(orders):09d}" for _ in range(samples)]
    times = []
    with ReadModel(url, "order-view") as model:
        for order_id in ids[:200]:  # warm up: connection pool, statement caches, pages
            order_detail(model, order_id)
        for order_id in ids:
            start = time.perf_counter()
            detail = order_detail(model, order_id)
            times.append(time.perf_counter() - start)
            assert detail is not None and detail["order_id"] == order_id
    times.sort()
    p50, p99 = times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000
    note = (
        f"{samples:,} random ids after 200 warm-up queries; mean {statistics.fmean(times) * 1000:.2f} ms; "
        f"view filled in {fill_seconds:.0f}s"
    )
    return [
        {
            "benchmark": f"query order by id, p50 ({orders:,} orders, SQLite, in-process)",
            "value": round(p50, 3),
            "unit": "ms",
            "goal": "",
            "met": None,
            "notes": note,
        },
        {
            "benchmark": f"query order by id, p99 ({orders:,} orders, SQLite, in-process)",
            "value": round(p99, 3),
            "unit": "ms",
            "goal": "<= 2",
            "met": p99 <= 2,
            "notes": "order_detail: summary + lines + timeline",
        },
    ]
