"""The main job: the whole pipeline on embedded defaults, driven end to end, then the views it built.

run_demo starts every service and projection (`orderstream run all`, one child process each), restocks the catalog,
places a few thousand generated orders (some cancelled straight away), ships and delivers some of the confirmed ones,
cancels a few more, returns a few delivered ones (whole, by line, one damaged and not restocked), waits until every
consumer has caught up, and prints orders per status, the returned orders, the top SKUs, stock levels and the status
table. Everything it started is stopped at the end or on Ctrl-C; the broker is left running
(when the demo started it, it says how to stop it).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orderstream.config import Settings


@dataclass(frozen=True)
class DemoPlan:
    orders: int = 3000
    skus: int = 40
    customers: int = 300
    stock_cover: float = 1.5  # restock this many times each SKU's expected demand...
    scarce_skus: int = 3  # ...but only 70% of it for the most popular few, so some orders are rejected
    ship_ratio: float = 0.3
    deliver_ratio: float = 0.5
    late_cancellations: int = 25
    returns: int = 6  # delivered orders taken back: a third whole, a third by one line, a third damaged (no restock)
    seed: int | None = None


class DemoError(RuntimeError):
    """The demo cannot go on; the message says what failed and where to look."""


def _now() -> datetime:
    return datetime.now(UTC)


def start_services(settings: Settings, root_args: list[str]) -> tuple[subprocess.Popen, Path]:
    log = Path(settings.data_dir) / "logs" / "services.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "orderstream.cli.main", *root_args, "run", "all", "--no-api"],  # stopped at the end
        stdout=subprocess.DEVNULL,
        stderr=log.open("a"),
        stdin=subprocess.DEVNULL,
    )
    return process, log


def stop_services(process: subprocess.Popen, timeout_s: float = 60) -> None:
    if process.poll() is None:
        process.terminate()  # the supervisor passes SIGTERM to every service and waits for them
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_until_idle(
    settings: Settings,
    services: subprocess.Popen,
    log: Path,
    timeout_s: float,
    require_running: bool,
    on_wait: Callable[[int], None] = lambda lag: None,
) -> None:
    """Until every consumer (service and projection) has nothing left to read, twice in a row."""
    from orderstream.ops.status import StatusUnavailable, collect_status
    from orderstream.services.composition import watched_consumers

    deadline = time.monotonic() + timeout_s
    calm = 0
    unanswered: StatusUnavailable | None = None
    while calm < 2:
        if services.poll() is not None:
            raise DemoError(f"the services stopped (exit code {services.returncode}); see {log}")
        if time.monotonic() > deadline:
            why = f" (the broker last said: {unanswered})" if unanswered else ""
            raise DemoError(
                f"the pipeline did not catch up within {timeout_s:.0f}s{why}; see {log} and `orderstream status`"
            )
        try:
            rows = collect_status(settings, watched_consumers(settings), sample_s=0).consumers
        except StatusUnavailable as exc:
            # A broker that just started may not answer group look-ups yet (its coordinator is still loading):
            # not ready yet, so ask again until the deadline, and say what it said if that passes.
            unanswered, calm = exc, 0
            time.sleep(0.5)
            continue
        unanswered = None
        lag = sum(r.lag for r in rows)
        ready = lag == 0 and (not require_running or all(r.running for r in rows))
        calm = calm + 1 if ready else 0
        on_wait(lag)
        time.sleep(0.5)


def run_demo(settings: Settings, root_args: list[str], plan: DemoPlan = DemoPlan(), echo=print) -> None:
    import random

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from orderstream.domain.commands import CancelOrder, DeliverOrder, RestockSku, ShipOrder
    from orderstream.producers.commands import CommandSender
    from orderstream.producers.generator import generate
    from orderstream.producers.load_plan import LoadProfile
    from orderstream.topology import (
        INVENTORY_COMMANDS,
        INVENTORY_REPLIES,
        ORDERS_COMMANDS,
        ORDERS_REPLIES,
    )
    from orderstream.views import order_view
    from orderstream.views.queries import ReadModel

    console = Console(stderr=True)
    seed = plan.seed if plan.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    services, log = start_services(settings, root_args)
    echo(f"started every service and projection (`orderstream run all`, pid {services.pid}; log {log})")
    try:
        with console.status("waiting for the services to join their groups..."):
            wait_until_idle(settings, services, log, timeout_s=120, require_running=True)

        profile = LoadProfile(orders=plan.orders, seed=seed, customers=plan.customers, skus=plan.skus)
        stock = restock_plan(profile, plan)
        with CommandSender(settings, INVENTORY_COMMANDS, INVENTORY_REPLIES, source="orderstream/demo") as sender:
            for sku, quantity in stock.items():
                sender.send(
                    RestockSku(
                        command_id=str(uuid.uuid4()),
                        issued_at=_now(),
                        correlation_id=f"demo-restock-{seed}",
                        sku=sku,
                        quantity=quantity,
                    )
                )
        echo(
            f"restocked {len(stock)} SKUs ({sum(stock.values()):,} units; "
            f"the {plan.scarce_skus} most popular kept scarce)"
        )

        with Progress(
            TextColumn("[bold]placing orders"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("orders", total=plan.orders + round(plan.orders * profile.cancel_ratio), rate="")

            def advance(n: int) -> None:
                speed = progress.tasks[0].speed
                progress.update(task, advance=n, rate=f"{speed:,.0f} commands/s" if speed else "")

            result = generate(settings, profile, on_progress=advance)
            progress.update(task, total=result.records, completed=result.records)
        if result.failed:
            raise DemoError(f"{result.failed} commands were not acknowledged: {result.first_error}")
        echo(f"placed {plan.orders} orders ({result.records} commands, {result.rate:,.0f}/s, seed {seed})")

        _wait(settings, services, log, console, "the services decide every order")
        with ReadModel(settings.database_url_for(order_view.NAME), order_view.NAME) as view:
            confirmed = [o["order_id"] for o in order_view.list_orders(view, status="CONFIRMED", limit=plan.orders)]
        rng.shuffle(confirmed)
        to_ship = confirmed[: int(len(confirmed) * plan.ship_ratio)]
        to_cancel = confirmed[len(to_ship) : len(to_ship) + plan.late_cancellations]
        with CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/demo") as sender:
            for order_id in to_ship:  # the order decides its dispatch: a ship and a cancel can never both win
                sender.send(
                    ShipOrder(
                        command_id=str(uuid.uuid4()),
                        issued_at=_now(),
                        correlation_id=order_id,
                        order_id=order_id,
                        carrier=rng.choice(["DHL", "UPS", "PostNL"]),
                        tracking_number=f"TRK{rng.randrange(10**9):09d}",
                    )
                )
        with CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/demo") as sender:
            for order_id in to_cancel:
                sender.send(
                    CancelOrder(
                        command_id=str(uuid.uuid4()),
                        issued_at=_now(),
                        correlation_id=order_id,
                        order_id=order_id,
                        reason="customer changed their mind (demo)",
                    )
                )
        _wait(settings, services, log, console, f"shipping {len(to_ship)} orders, cancelling {len(to_cancel)}")
        to_deliver = to_ship[: int(len(to_ship) * plan.deliver_ratio)]
        with CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/demo") as sender:
            for order_id in to_deliver:
                sender.send(
                    DeliverOrder(
                        command_id=str(uuid.uuid4()), issued_at=_now(), correlation_id=order_id, order_id=order_id
                    )
                )
        _wait(settings, services, log, console, f"delivering {len(to_deliver)} orders")
        to_return = to_deliver[: plan.returns]
        with ReadModel(settings.database_url_for(order_view.NAME), order_view.NAME) as view:
            first_skus = [
                (order_view.order_detail(view, order_id) or {"lines": [{}]})["lines"][0].get("sku")
                for order_id in to_return
            ]
        with CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/demo") as sender:
            for i, (order_id, sku) in enumerate(zip(to_return, first_skus, strict=True)):
                sender.send(return_command(order_id, i, sku, _now()))
        _wait(settings, services, log, console, f"returning {len(to_return)} orders")
        echo(
            f"shipped {len(to_ship)}, delivered {len(to_deliver)}, cancelled {len(to_cancel)} confirmed orders, "
            f"returned {len(to_return)}; every projection has caught up"
        )
        show_views(settings, Console(), sample_order=to_return[0] if to_return else None)
        show_returns(settings, Console(), to_return)
    finally:
        stop_services(services)
        echo("stopped the services and projections it started")
        echo(
            f"the HTTP API: `orderstream run all` (or `orderstream serve`) answers on "
            f"http://{settings.api_host}:{settings.api_port} (docs at /docs)"
        )


def return_command(order_id: str, i: int, first_sku: str | None, now: datetime):
    """The i-th demo return: whole (i % 3 == 0), one unit of its first line (1), or whole and damaged, so not
    restocked (2). A whole return takes back everything left; one unit of any line was always delivered."""
    from orderstream.domain.commands import ReturnItem, ReturnOrder

    by_line = i % 3 == 1 and first_sku is not None
    return ReturnOrder(
        command_id=str(uuid.uuid4()),
        issued_at=now,
        correlation_id=order_id,
        order_id=order_id,
        items=(ReturnItem(sku=first_sku, quantity=1),) if by_line else (),
        reason=("did not fit", "one item was not needed", "arrived damaged")[i % 3],
        restock=i % 3 != 2,
    )


def restock_plan(profile, plan: DemoPlan) -> dict[str, int]:
    """Units to restock per SKU: stock_cover times the profile's own demand (which is known in advance: the load is
    reproducible), and only 70% of it for the scarce_skus most wanted SKUs."""
    from collections import Counter

    from orderstream.domain.commands import PlaceOrder
    from orderstream.producers.load_plan import catalog_skus, plan_commands

    demand: Counter[str] = Counter()
    for command in plan_commands(profile, _now):
        if isinstance(command, PlaceOrder):
            for line in command.lines:
                demand[line.sku] += line.quantity
    scarce = {sku for sku, _ in demand.most_common(plan.scarce_skus)}
    return {
        sku: max(10, int(demand[sku] * (0.7 if sku in scarce else plan.stock_cover))) for sku in catalog_skus(profile)
    }


def _wait(settings, services, log, console, what: str) -> None:
    with console.status(f"waiting while {what}...") as status:
        wait_until_idle(
            settings,
            services,
            log,
            timeout_s=300,
            require_running=True,
            on_wait=lambda lag: status.update(f"waiting while {what}... ({lag} records to go)"),
        )


def show_returns(settings: Settings, console, returned: list[str]) -> None:
    """The returned orders as the order view shows them: status, and the returned quantity of every line."""
    from rich.table import Table

    from orderstream.views import order_view
    from orderstream.views.queries import ReadModel

    table = Table("order", "status", "returned (sku: returned/ordered)", title="Returned orders (order view)")
    with ReadModel(settings.database_url_for(order_view.NAME), order_view.NAME) as view:
        for order_id in returned:
            detail = order_view.order_detail(view, order_id)
            if detail is None:
                continue
            lines = ", ".join(
                f"{line['sku']}: {line.get('returned_quantity', 0)}/{line['quantity']}" for line in detail["lines"]
            )
            table.add_row(order_id, detail["status"], lines)
    console.print(table)


def show_views(settings: Settings, console, sample_order: str | None) -> None:
    """Orders per status, the top SKUs, stock, and the status table, read through the projections' query layer."""
    from rich.table import Table

    from orderstream.ops.status import collect_status
    from orderstream.services.composition import watched_consumers
    from orderstream.views import sales_view, stock_view
    from orderstream.views.queries import ReadModel

    with ReadModel(settings.database_url_for(sales_view.NAME), sales_view.NAME) as view:
        counts = sales_view.status_counts(view)
        top = sorted(sales_view.sales(view, by="sku"), key=lambda r: -r["revenue_minor"])[:8]
    with ReadModel(settings.database_url_for(stock_view.NAME), stock_view.NAME) as view:
        stock = stock_view.stock_levels(view)

    table = Table("status", "orders", title="Orders per status (sales view)")
    for row in counts:
        table.add_row(row["status"], f"{row['orders']:,}")
    console.print(table)
    table = Table("sku", "units", "revenue", "currency", title="Top SKUs by revenue (confirmed or later)")
    for row in top:
        table.add_row(row["sku"], f"{row['units']:,}", f"{row['revenue_minor'] / 100:,.2f}", row["currency"])
    console.print(table)
    table = Table("sku", "on hand", "reserved", "available", title="Stock (stock view), least available first")
    for row in sorted(stock, key=lambda r: (r["available"], r["sku"]))[:8]:
        table.add_row(row["sku"], str(row["on_hand"]), str(row["reserved"]), str(row["available"]))
    console.print(table)

    rows = collect_status(settings, watched_consumers(settings), sample_s=0).consumers
    table = Table("consumer", "partitions", "lag", "state", title="Status (orderstream status)")
    by_name: dict[str, list] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row)
    for name, parts in by_name.items():
        states = sorted({p.state for p in parts})
        table.add_row(name, str(len(parts)), str(sum(p.lag for p in parts)), ", ".join(states))
    console.print(table)
    order_hint = sample_order or "ORDER_ID"
    console.print("\n[bold]Next, try[/] (services run with `orderstream run all`; Ctrl-C stops them):")
    for line in (
        "orderstream place --customer c-1 --item SKU-00001:2:19.99 --wait --json",
        f"orderstream query order {order_hint}",
        "orderstream query orders --status CONFIRMED --limit 5",
        "orderstream query sales --by day",
        "orderstream query stock",
        f"orderstream tail all --from-beginning --no-follow --correlation {order_hint}",
        "orderstream replay projection sales-view --from-beginning",
        "orderstream status",
        "orderstream serve",
        "orderstream broker stop",
    ):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
