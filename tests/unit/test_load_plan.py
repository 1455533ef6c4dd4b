"""The load plan is reproducible, skewed, valid, and cancels about the fraction asked."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from orderstream.domain.commands import CancelOrder, PlaceOrder
from orderstream.domain.validation import check_currency, check_id, check_quantity, check_unit_price
from orderstream.producers.load_plan import LoadProfile, plan_commands

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def commands(profile, start=0, stop=None):
    return list(plan_commands(profile, lambda: NOW, start, stop))


def test_same_seed_same_commands_ids_included():
    profile = LoadProfile(orders=200, seed=42)
    assert commands(profile) == commands(profile)
    assert commands(profile) != commands(LoadProfile(orders=200, seed=43))


def test_slices_concatenate_to_the_whole():
    profile = LoadProfile(orders=300, seed=1)
    assert commands(profile, 0, 120) + commands(profile, 120, 300) == commands(profile)


def test_orders_are_valid_and_unique():
    profile = LoadProfile(orders=500, seed=3, max_lines=4)
    placed = [c for c in commands(profile) if isinstance(c, PlaceOrder)]
    assert len(placed) == 500
    assert len({p.order_id for p in placed}) == 500 and len({p.command_id for p in placed}) == 500
    for order in placed:
        check_id("order id", order.order_id)
        check_id("customer id", order.customer_id)
        check_currency(order.currency)
        assert 1 <= len(order.lines) <= 4
        assert len({line.sku for line in order.lines}) == len(order.lines)
        for line in order.lines:
            check_quantity(line.sku, line.quantity)
            check_unit_price(line.sku, line.unit_price_minor)


def test_sku_popularity_is_skewed():
    profile = LoadProfile(orders=3000, seed=5, skus=100)
    counts = Counter(line.sku for c in commands(profile) if isinstance(c, PlaceOrder) for line in c.lines)
    top, *_ = counts.most_common(1)
    assert top[0] == "SKU-00000"
    assert counts["SKU-00000"] > 10 * counts.get("SKU-00099", 1)


def test_cancellations_follow_their_order():
    profile = LoadProfile(orders=2000, seed=9, cancel_ratio=0.1)
    cmds = commands(profile)
    cancels = [i for i, c in enumerate(cmds) if isinstance(c, CancelOrder)]
    assert 120 < len(cancels) < 280
    for i in cancels:
        assert isinstance(cmds[i - 1], PlaceOrder) and cmds[i - 1].order_id == cmds[i].order_id


@pytest.mark.parametrize("bad", [dict(orders=-1), dict(customers=0), dict(cancel_ratio=1.5)])
def test_bad_profiles_are_refused(bad):
    with pytest.raises(ValueError):
        LoadProfile(**({"orders": 1, "seed": 1} | bad))
