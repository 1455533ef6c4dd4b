"""The web console's pages: each page's first response (the HTML a browser navigating to it gets), p95 over sequential
requests, with N orders (1,000,000 in the full run) in the order view, against a real `orderstream serve` (one
uvicorn worker) on the bench's broker.

The views are SQLite, filled directly (not through Kafka): the order view as bench/query.py fills it, the sales view's
status counts from it and 28 days x 500 SKUs of daily sales, the stock view 500 SKUs. The pipeline and dead-letter
pages answer with their frame and fetch their data right after (it takes broker round trips): that data request is
measured too, as a row of its own, without a goal.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from bench.env import BenchEnv
from bench.latency import percentile

SKUS, DAYS = 500, 28
GOAL_MS = 300


def _fill_views(settings, orders: int) -> float:
    import sqlalchemy as sa

    from bench.query import _fill as fill_order_view
    from orderstream.views.registry import spec_of
    from orderstream.views.store import ProjectionStore

    began = time.perf_counter()
    stores = {}
    for name in ("order-view", "sales-view", "stock-view"):
        url = settings.database_url_for(name)
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        stores[name] = ProjectionStore(url, spec_of(name), writer=True)
    try:
        fill_order_view(stores["order-view"], orders)
        order_tables = stores["order-view"].tables(stores["order-view"].ensure())
        with stores["order-view"].engine.connect() as conn:
            orders_table = order_tables["orders"]
            counts = conn.execute(sa.select(orders_table.c.status, sa.func.count()).group_by(orders_table.c.status))
            statuses = [{"status": status, "orders": n} for status, n in counts]
        rng = random.Random(11)
        sales = stores["sales-view"]
        sales_tables = sales.tables(sales.ensure())
        with sales.engine.begin() as conn:
            conn.execute(sales_tables["statuses"].insert(), statuses)
            daily = []
            for day in range(1, DAYS + 1):
                for sku in range(SKUS):
                    units = rng.randint(1, 40)
                    daily.append(
                        {
                            "day": f"2025-01-{day:02d}",
                            "sku": f"SKU-{sku:05d}",
                            "currency": "EUR",
                            "units": units,
                            "revenue_minor": units * rng.randrange(199, 19_999),
                        }
                    )
            conn.execute(sales_tables["daily"].insert(), daily)
        stock = stores["stock-view"]
        stock_tables = stock.tables(stock.ensure())
        with stock.engine.begin() as conn:
            rows = []
            for sku in range(SKUS):
                on_hand = rng.randint(0, 500)
                rows.append(
                    {
                        "sku": f"SKU-{sku:05d}",
                        "on_hand": on_hand,
                        "reserved": rng.randint(0, on_hand),
                        "version": 1,
                        "updated_at": "2025-01-28T00:00:00.000000Z",
                    }
                )
            conn.execute(stock_tables["skus"].insert(), rows)
    finally:
        for store in stores.values():
            store.dispose()
    return time.perf_counter() - began


def _time(client, path: str, requests: int, headers: dict[str, str] | None = None) -> list[float]:
    """Seconds per request (the whole response read), after a few warm-up requests; each must answer 200."""
    for _ in range(3):
        client.get(path, headers=headers)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    return times


def _p95_ms(times: list[float]) -> float:
    return percentile(times, 0.95) * 1000


def bench_console(env: BenchEnv, orders: int, requests: int = 60) -> list[dict]:
    import re

    import httpx

    from bench.http import _serve, _stop

    settings = env.fresh(data_dir=env.workdir / "console", database_url=None)
    fill_seconds = _fill_views(settings, orders)
    server, url = _serve(settings, env.workdir / "console-serve.log", ["serve"])
    rows = []
    where = f"{orders:,} orders, SQLite, 1 uvicorn worker, {requests} sequential requests"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            first = client.get("/")
            following = re.search(r'id="next-page" rel="next" hx-get="([^"]+)"', first.text)
            assert following is not None, "the orders page has no next page"
            rng = random.Random(5)
            pages = [
                ("orders", "/"),
                ("orders of one status", "/?status=DELIVERED"),
                ("orders of one customer", "/?customer=c-000123"),
                ("orders, next page by cursor", following.group(1).replace("&amp;", "&")),
                ("orders by total", "/?sort=total_minor"),
                ("one order", f"/console/orders/o-{rng.randrange(orders):09d}"),
                ("pipeline", "/console/pipeline"),
                ("sales and stock", "/console/sales"),
                ("dead letters", "/console/dead-letters"),
            ]
            for name, path in pages:
                p95 = _p95_ms(_time(client, path, requests))
                rows.append(
                    {
                        "benchmark": f"console page '{name}' first response p95 ({where})",
                        "value": round(p95, 1),
                        "unit": "ms",
                        "goal": f"<= {GOAL_MS}",
                        "met": p95 <= GOAL_MS,
                        "notes": f"GET {path[:80]}; views filled in {fill_seconds:.0f}s",
                    }
                )
            for name, path in (("pipeline", "/console/pipeline"), ("dead letters", "/console/dead-letters")):
                p95 = _p95_ms(_time(client, path, max(10, requests // 4), headers={"HX-Request": "true"}))
                rows.append(
                    {
                        "benchmark": f"console page '{name}' data (the request that follows its frame) p95",
                        "value": round(p95, 1),
                        "unit": "ms",
                        "goal": "",
                        "met": None,
                        "notes": "broker round trips: ops/status.collect_status (sample 0) / ops/dlq.read_letters",
                    }
                )
    finally:
        _stop(server)
    return rows
