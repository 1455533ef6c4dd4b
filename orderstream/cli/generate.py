"""`orderstream generate`: a realistic, reproducible order load with a progress bar."""

from __future__ import annotations

import random
from typing import Annotated

import typer

from orderstream.cli.common import err_console, fail, fail_input, print_json, require_broker, settings_of


def generate(
    ctx: typer.Context,
    orders: Annotated[int, typer.Option("--orders", "-n", min=1, help="How many orders to place.")],
    rate: Annotated[
        float | None,
        typer.Option(min=0.1, help="Commands per second (default: as fast as possible).", show_default=False),
    ] = None,
    customers: Annotated[int, typer.Option(min=1, help="Distinct customers.")] = 1_000,
    skus: Annotated[int, typer.Option(min=1, help="Distinct SKUs (popularity is skewed).")] = 200,
    seed: Annotated[
        int | None, typer.Option(help="Seed: the same seed sends the same orders, ids included.", show_default=False)
    ] = None,
    cancel_ratio: Annotated[float, typer.Option(min=0, max=1, help="Fraction of orders cancelled right after.")] = 0.05,
    currency: Annotated[str, typer.Option(help="ISO 4217 currency of every order.")] = "EUR",
    processes: Annotated[int, typer.Option(min=1, max=64, help="Producer processes sending in parallel.")] = 1,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON only.")] = False,
) -> None:
    """Send N orders (several lines each, skewed SKU popularity, some cancellations) to orders.commands.

    Succeeds only when the broker acknowledged every record; prints the seed and the rate reached.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from orderstream.domain.validation import ValidationError, check_currency
    from orderstream.producers.generator import GeneratorError, expected_records
    from orderstream.producers.generator import generate as run
    from orderstream.producers.load_plan import LoadProfile

    try:
        check_currency(currency)
    except ValidationError as exc:
        fail_input(exc)
    settings = settings_of(ctx)
    require_broker(settings)  # seconds, not the generator's 120 s wait for acknowledgements, when no broker answers
    ledger = _ledger(settings)
    if seed is None:  # a fresh seed: one this pipeline has not seen, or every order would be refused as a copy
        seed = next(s for s in iter(lambda: random.randrange(1_000_000), None) if not _seed_used(settings, ledger, s))
    elif (evidence := _seed_used(settings, ledger, seed)) is not None:
        fail(
            f"seed {seed} was already used on these topics ({evidence}): its orders exist, so the order service "
            "would refuse every one and nothing new would be placed; pass another --seed, or leave it out"
        )
    profile = LoadProfile(
        orders=orders, seed=seed, customers=customers, skus=skus, cancel_ratio=cancel_ratio, currency=currency
    )
    with Progress(
        TextColumn("[bold]generate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err_console(),
        transient=json_output,
        disable=json_output,
    ) as progress:
        # The bar counts acknowledged records only; its total is refined as the plan unfolds (exact at the end).
        task = progress.add_task("send", total=expected_records(orders, cancel_ratio), rate="")

        def advance(n: int) -> None:
            speed = progress.tasks[0].speed
            progress.update(task, advance=n, rate=f"{speed:,.0f} rec/s" if speed else "")

        def retotal(total: int) -> None:
            # Set, not progress.update(total=): rich restarts a task's speed (so its rate and time left) whenever
            # update() changes the total, and this one is refined every tick.
            progress.tasks[0].total = total

        try:
            result = run(settings, profile, rate=rate, processes=processes, on_progress=advance, on_total=retotal)
        except GeneratorError as exc:
            result, error = None, str(exc)
            _take_away(progress)
        else:
            progress.update(task, total=result.records, completed=result.acknowledged)
    if result is None:
        fail(error)  # after the bar is closed, so the error is the last line
    if result.failed:
        fail(f"{result.failed} of {result.records} records were not acknowledged: {result.first_error}")
    ledger.record(seed)
    summary = {
        "orders": result.orders,
        "records": result.records,
        "seconds": round(result.seconds, 3),
        "rate": round(result.rate, 1),
        "seed": seed,
        "topic": settings.topic("orders.commands"),
    }
    if json_output:
        print_json(summary)
    else:
        typer.echo(
            f"sent {result.records} commands for {result.orders} orders in {result.seconds:.2f}s "
            f"({result.rate:,.0f} records/s), all acknowledged; seed {seed}"
        )


def _take_away(progress) -> None:
    """Nothing could be sent: remove the bar, so the error is the only line (a terminal erases it; elsewhere rich
    would still end it with a blank line, so its console is silenced)."""
    progress.live.transient = True
    if not progress.console.is_terminal:
        progress.console.quiet = True


def _ledger(settings):
    """The seeds sent to this cluster's topics under this prefix (producers/seed_ledger.py)."""
    from confluent_kafka.admin import AdminClient

    from orderstream.kafka.clients import admin_config
    from orderstream.producers.seed_ledger import SeedLedger

    cluster_id = AdminClient(admin_config(settings)).list_topics(timeout=10).cluster_id
    return SeedLedger.of(settings.data_dir, cluster_id, settings.topic_prefix)


def _seed_used(settings, ledger, seed: int) -> str | None:
    """How we know a seed was sent before, or None: the ledger of this data directory, or its first order in the
    order view (a load sent from elsewhere)."""
    from orderstream.producers.load_plan import order_id

    if ledger.used(seed):
        return f"recorded in {ledger.path}"
    from sqlalchemy.exc import SQLAlchemyError

    from orderstream.views.order_view import order_detail
    from orderstream.views.queries import ReadModel
    from orderstream.views.store import StoreError

    first = order_id(seed, 0)
    try:
        model = ReadModel(settings.database_url_for("order-view"), "order-view")
    except StoreError:  # no order view here: the ledger is all there is to go by
        return None
    try:
        return f"order {first} is in the order view" if order_detail(model, first) is not None else None
    except (StoreError, SQLAlchemyError):  # a view still being created cannot tell; the ledger has spoken already
        return None
    finally:
        model.close()
