"""`query order ID --as-of T` on SQLite and PostgreSQL: the order as it was at T, folded from the order view's timeline,
equals the fold of that order's events up to T by the projection itself - for every moment around every event."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.domain.events import OrderPaymentUpdated
from orderstream.views import order_view
from orderstream.views.queries import ReadModel
from orderstream.views.registry import spec_of
from orderstream.views.store import ProjectionStore, Record
from tests.support.databases import url_of
from tests.support.histories import random_history


def expected_as_of(events, moment):
    """The projection's own fold of the events that occurred at or before `moment` (None: not placed yet)."""
    seen = [e for e in events if e.occurred_at <= moment]
    if not seen:
        return None
    changes = order_view.project(seen, {})
    (row,) = changes.upserts["orders"].values()
    lines = order_view.lines_of(row["lines"])
    timeline = [dict(type=t["type"], version=t["version"], occurred_at=t["occurred_at"], event_id=t["event_id"])
                for t in order_view.timeline_of(row["timeline"])]  # fmt: skip
    fields = ("order_id", "customer_id", "status", "version", "currency", "total_minor", "payment_status", "placed_at",
              "updated_at")  # fmt: skip
    return {**{k: row[k] for k in fields}, "lines": lines, "timeline": timeline}


def test_as_of_equals_the_fold_of_the_events_up_to_that_moment(db_url, tmp_path, monkeypatch):
    url = url_of(db_url, order_view.NAME)
    rng = random.Random(11)
    histories = []
    while len(histories) < 12:  # orders with payment updates and several status changes
        h = random_history(rng, f"t{len(histories)}", prefix="t")
        if len(h) >= 4 and any(isinstance(e, OrderPaymentUpdated) for e in h):
            histories.append(h)
    store = ProjectionStore(url, spec_of("order-view"), writer=True)
    generation = store.ensure()
    events = [e for h in histories for e in h]
    store.apply([Record("x.orders.events", 0, n, e) for n, e in enumerate(events)], generation)
    store.dispose()

    checked = 0
    with ReadModel(url, "order-view") as model:
        for history in histories:
            moments = [history[0].occurred_at - timedelta(seconds=1)]
            for e in history:
                moments += [e.occurred_at, e.occurred_at + timedelta(microseconds=1)]
            for moment in moments:
                got = order_view.order_as_of(model, history[0].order_id, moment)
                want = expected_as_of(history, moment)
                if want is None:
                    assert got is None
                else:
                    assert {k: v for k, v in got.items() if k != "as_of"} == want, (history[0].order_id, moment)
                checked += 1
    assert checked > 100

    # the CLI: --as-of --json prints the same, and refuses a moment before the order was placed
    monkeypatch.setenv("ORDERSTREAM_DATABASE_URL", db_url)
    runner = CliRunner()
    history = histories[0]
    for e in history:
        result = runner.invoke(
            app,
            ["--data-dir", str(tmp_path), "query", "order", e.order_id, "--as-of", e.occurred_at.isoformat(), "--json"],
        )
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert (body["status"], body["version"]) == (expected_as_of(history, e.occurred_at)["status"], e.version)
    before = (history[0].occurred_at - timedelta(days=1)).isoformat()
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "query", "order", history[0].order_id, "--as-of", before])
    assert result.exit_code == 1 and "not found in order-view as of" in result.output
    result = runner.invoke(
        app, ["--data-dir", str(tmp_path), "query", "order", history[0].order_id, "--as-of", "yesterday"]
    )
    assert result.exit_code == 2 and "--as-of 'yesterday' is not an ISO 8601 time" in result.output
