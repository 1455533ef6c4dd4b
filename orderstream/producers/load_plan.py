"""A realistic, reproducible order load, as pure data: which orders to place and which to cancel.

The same profile (and seed) always yields the same commands, ids included, so a load can be replayed exactly and a
re-run is absorbed by command-id idempotency. SKU popularity is skewed (Zipf-like: a few SKUs sell most), orders have
one to max_lines lines, and a fraction of orders is cancelled right after being placed. No I/O, no clock: `now` is
passed in.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from orderstream.domain.commands import CancelOrder, Command, PlaceOrder
from orderstream.domain.events import OrderLine


@dataclass(frozen=True)
class LoadProfile:
    orders: int
    seed: int
    customers: int = 1_000
    skus: int = 200
    max_lines: int = 4
    cancel_ratio: float = 0.05
    currency: str = "EUR"
    skew: float = 1.1  # Zipf exponent of SKU popularity

    def __post_init__(self) -> None:
        if self.orders < 0 or self.customers < 1 or self.skus < 1 or self.max_lines < 1:
            raise ValueError("orders must be >= 0 and customers, skus and max_lines >= 1")
        if not 0 <= self.cancel_ratio <= 1:
            raise ValueError("cancel_ratio must be between 0 and 1")


def sku_name(index: int) -> str:
    return f"SKU-{index:05d}"


def sku_price_minor(seed: int, index: int) -> int:
    """A stable price per SKU: between 1.99 and 199.99 in minor units."""
    return random.Random(f"{seed}:price:{index}").randrange(199, 19_999)


def catalog_skus(profile: LoadProfile) -> list[str]:
    return [sku_name(i) for i in range(profile.skus)]


def order_id(seed: int, index: int) -> str:
    return f"o-{seed}-{index:08d}"


def plan_commands(
    profile: LoadProfile, now: Callable[[], datetime], start: int = 0, stop: int | None = None
) -> Iterator[Command]:
    """The commands of orders start..stop-1 (each order's commands depend only on its index and the seed)."""
    weights = list(itertools.accumulate(1 / (rank**profile.skew) for rank in range(1, profile.skus + 1)))
    stop = profile.orders if stop is None else min(stop, profile.orders)
    prices: dict[int, int] = {}  # sku index -> price: each is a seeded Random of its own, so worked out once
    names: dict[int, str] = {}
    for index in range(start, stop):
        rng = random.Random(f"{profile.seed}:order:{index}")
        oid = order_id(profile.seed, index)
        line_count = rng.randint(1, profile.max_lines)
        skus = sorted(set(rng.choices(range(profile.skus), cum_weights=weights, k=line_count)))
        for s in skus:
            if s not in prices:
                prices[s], names[s] = sku_price_minor(profile.seed, s), sku_name(s)
        lines = tuple(
            OrderLine(sku=names[s], quantity=rng.choice((1, 1, 1, 2, 2, 3, 5)), unit_price_minor=prices[s])
            for s in skus
        )
        place_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        yield PlaceOrder(
            command_id=place_id,
            issued_at=now(),
            correlation_id=oid,
            order_id=oid,
            customer_id=f"c-{rng.randrange(profile.customers):06d}",
            currency=profile.currency,
            lines=lines,
            channel="generator",
        )
        if rng.random() < profile.cancel_ratio:
            yield CancelOrder(
                command_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                issued_at=now(),
                correlation_id=oid,
                order_id=oid,
                reason="changed my mind (generated)",
            )
