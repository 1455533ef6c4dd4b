"""The inventory deciders: a state x message table for each stage, and properties over random interleavings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderstream.domain import inventory
from orderstream.domain.commands import ReleaseStock, ReserveStock, RestockSku, ReturnStock, ShipStock
from orderstream.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderRejected,
    OrderReturned,
    OrderShipped,
    StockAdded,
    StockReleased,
    StockReservationRejected,
    StockReserved,
    StockReturned,
    StockShipped,
)
from orderstream.domain.inventory import (
    Context,
    EvolveError,
    OrderLinesState,
    Rejection,
    StockState,
    decide,
    order_evolve,
    react_to_order,
    stock_evolve,
    stock_fold,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SKU = "SKU-1"


# --- stage 2: stock per SKU ----------------------------------------------------------------------------------------


def restock(quantity: int, command_id: str = "r-1", sku: str = SKU) -> RestockSku:
    return RestockSku(command_id=command_id, issued_at=T0, correlation_id=command_id, sku=sku, quantity=quantity)


def reserve(order_id: str, quantity: int, command_id: str | None = None) -> ReserveStock:
    return ReserveStock(
        command_id=command_id or f"res-{order_id}",
        issued_at=T0,
        correlation_id=order_id,
        sku=SKU,
        order_id=order_id,
        quantity=quantity,
    )


def release(order_id: str, quantity: int = 1, command_id: str | None = None) -> ReleaseStock:
    return ReleaseStock(
        command_id=command_id or f"rel-{order_id}",
        issued_at=T0,
        correlation_id=order_id,
        sku=SKU,
        order_id=order_id,
        quantity=quantity,
    )


def ship(order_id: str, command_id: str | None = None) -> ShipStock:
    return ShipStock(
        command_id=command_id or f"ship-{order_id}",
        issued_at=T0,
        correlation_id=order_id,
        sku=SKU,
        order_id=order_id,
        quantity=1,
    )


def give_back(order_id: str, quantity: int, command_id: str | None = None) -> ReturnStock:
    return ReturnStock(
        command_id=command_id or f"ret-{order_id}-{quantity}",
        issued_at=T0,
        correlation_id=order_id,
        sku=SKU,
        order_id=order_id,
        quantity=quantity,
    )


def apply(state: StockState, message) -> tuple[StockState, tuple | Rejection]:
    decision = decide(message, state, Context.of(message, T0))
    if isinstance(decision, Rejection):
        return state, decision
    return stock_fold(state, decision), decision


def stocked(on_hand: int, reservations: dict[str, int] | None = None) -> StockState:
    state = StockState(sku=SKU)
    if on_hand:
        state, _ = apply(state, restock(on_hand))
    for order_id, quantity in (reservations or {}).items():
        state, _ = apply(state, reserve(order_id, quantity))
    return state


def shape(decision) -> tuple:
    """A decision without ids and times: (type, fields that matter)."""
    if isinstance(decision, Rejection):
        return ("Rejection",)
    out = []
    for e in decision:
        match e:
            case StockAdded():
                out.append(("StockAdded", e.quantity, e.on_hand))
            case StockReserved():
                out.append(("StockReserved", e.order_id, e.quantity, e.on_hand, e.reserved))
            case StockReservationRejected():
                out.append(("StockReservationRejected", e.order_id, e.quantity, e.available))
            case StockReleased():
                out.append(("StockReleased", e.order_id, e.quantity, e.on_hand, e.reserved))
            case StockShipped():
                out.append(("StockShipped", e.order_id, e.quantity, e.on_hand, e.reserved))
            case StockReturned():
                out.append(("StockReturned", e.order_id, e.quantity, e.on_hand))
    return tuple(out)


STATES = {
    "empty": lambda: stocked(0),
    "5 on hand": lambda: stocked(5),
    "5 on hand, o-1 holds 3": lambda: stocked(5, {"o-1": 3}),
    "5 on hand, all held by o-1": lambda: stocked(5, {"o-1": 5}),
}
MESSAGES = {
    "restock 2": lambda: restock(2, "r-2"),
    "restock 0": lambda: restock(0, "r-2"),
    "reserve o-2 x2": lambda: reserve("o-2", 2),
    "reserve o-1 x1": lambda: reserve("o-1", 1, "res-again"),
    "release o-1": lambda: release("o-1", 99),
    "release o-9": lambda: release("o-9"),
    "ship o-1": lambda: ship("o-1"),
    "return o-1 x2": lambda: give_back("o-1", 2),
    "return o-1 x0": lambda: give_back("o-1", 0),
}
# state -> message -> expected shape of the decision
TABLE = {
    "empty": {
        "restock 2": (("StockAdded", 2, 2),),
        "restock 0": ("Rejection",),
        "reserve o-2 x2": (("StockReservationRejected", "o-2", 2, 0),),
        "reserve o-1 x1": (("StockReservationRejected", "o-1", 1, 0),),
        "release o-1": (),
        "release o-9": (),
        "ship o-1": (),
        "return o-1 x2": (("StockReturned", "o-1", 2, 2),),
        "return o-1 x0": ("Rejection",),
    },
    "5 on hand": {
        "restock 2": (("StockAdded", 2, 7),),
        "restock 0": ("Rejection",),
        "reserve o-2 x2": (("StockReserved", "o-2", 2, 5, 2),),
        "reserve o-1 x1": (("StockReserved", "o-1", 1, 5, 1),),
        "release o-1": (),
        "release o-9": (),
        "ship o-1": (),  # nothing held: nothing leaves (shipped already)
        "return o-1 x2": (("StockReturned", "o-1", 2, 7),),
        "return o-1 x0": ("Rejection",),
    },
    "5 on hand, o-1 holds 3": {
        "restock 2": (("StockAdded", 2, 7),),
        "restock 0": ("Rejection",),
        "reserve o-2 x2": (("StockReserved", "o-2", 2, 5, 5),),
        "reserve o-1 x1": (),  # o-1 already holds a reservation of this SKU
        "release o-1": (("StockReleased", "o-1", 3, 5, 0),),  # what it holds, whatever the message says
        "release o-9": (),
        "ship o-1": (("StockShipped", "o-1", 3, 2, 0),),  # on hand and reserved both go down by what it holds
        "return o-1 x2": (("StockReturned", "o-1", 2, 7),),
        "return o-1 x0": ("Rejection",),
    },
    "5 on hand, all held by o-1": {
        "restock 2": (("StockAdded", 2, 7),),
        "restock 0": ("Rejection",),
        "reserve o-2 x2": (("StockReservationRejected", "o-2", 2, 0),),
        "reserve o-1 x1": (),
        "release o-1": (("StockReleased", "o-1", 5, 5, 0),),
        "release o-9": (),
        "ship o-1": (("StockShipped", "o-1", 5, 0, 0),),
        "return o-1 x2": (("StockReturned", "o-1", 2, 7),),
        "return o-1 x0": ("Rejection",),
    },
}


@pytest.mark.parametrize("state_name", TABLE)
@pytest.mark.parametrize("message_name", MESSAGES)
def test_stock_decisions_table(state_name, message_name):
    state = STATES[state_name]()
    after, decision = apply(state, MESSAGES[message_name]())
    assert shape(decision) == TABLE[state_name][message_name]
    if not isinstance(decision, Rejection):
        assert [e.version for e in decision] == list(range(state.version + 1, state.version + 1 + len(decision)))
    assert 0 <= after.reserved <= after.on_hand


def test_a_rejection_names_what_is_available_and_the_events_are_deterministic():
    state = stocked(1)
    _, (rejected,) = apply(state, reserve("o-1", 3))
    assert rejected.reason == "only 1 of SKU-1 available, 3 wanted"
    assert decide(reserve("o-1", 3), state, Context.of(reserve("o-1", 3), T0)) == (rejected,)
    assert rejected.causation_id == "res-o-1" and rejected.correlation_id == "o-1"


def test_invalid_restock_and_reservation_inputs():
    assert "limit per restock" in decide(restock(2_000_000), stocked(0), Context.of(restock(1), T0)).reason
    assert isinstance(
        decide(restock(1, sku="bad sku"), StockState(sku="bad sku"), Context.of(restock(1), T0)), Rejection
    )
    assert isinstance(decide(restock(1, sku="OTHER"), stocked(0), Context.of(restock(1), T0)), Rejection)
    _, (bad,) = apply(stocked(5), reserve("o-1", 0))
    assert isinstance(bad, StockReservationRejected) and bad.reason.startswith("invalid reservation")


def test_evolve_refuses_streams_that_do_not_add_up():
    state = stocked(5, {"o-1": 3})
    _, (released,) = apply(state, release("o-1"))
    from dataclasses import replace

    with pytest.raises(EvolveError, match="version"):
        stock_evolve(state, replace(released, version=state.version + 2))
    with pytest.raises(EvolveError, match="holds"):
        stock_evolve(state, replace(released, quantity=2))
    with pytest.raises(EvolveError, match="says reserved"):
        stock_evolve(state, replace(released, reserved=1))
    with pytest.raises(EvolveError, match="belongs to"):
        stock_evolve(state, replace(released, sku="OTHER"))
    over = StockReserved(
        event_id="x",
        version=state.version + 1,
        occurred_at=T0,
        correlation_id="o-2",
        causation_id="c",
        sku=SKU,
        order_id="o-2",
        quantity=3,
        on_hand=5,
        reserved=6,
    )
    with pytest.raises(EvolveError, match="leaves reserved 6 of on hand 5"):
        stock_evolve(state, over)


message_strategy = st.one_of(
    st.builds(lambda q, n: restock(q, f"r-{n}"), st.integers(1, 5), st.integers(0, 10**6)),
    st.builds(lambda o, q: reserve(f"o-{o}", q), st.integers(0, 7), st.integers(1, 6)),
    st.builds(lambda o, q: release(f"o-{o}", q), st.integers(0, 7), st.integers(1, 6)),
    st.builds(lambda o: ship(f"o-{o}"), st.integers(0, 7)),
    st.builds(lambda o, q, n: give_back(f"o-{o}", q, f"ret-{n}"), st.integers(0, 7), st.integers(1, 6), st.integers()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(message_strategy, max_size=60))
def test_no_interleaving_oversells(messages):
    state = StockState(sku=SKU)
    events = []
    for message in messages:
        state, decision = apply(state, message)
        assert state.available >= 0 and 0 <= state.reserved <= state.on_hand
        assert state.reserved == sum(state.reservations.values())
        if not isinstance(decision, Rejection):
            events.extend(decision)
    assert stock_fold(StockState(sku=SKU), events) == state, "the state is the fold of its events"
    added = sum(e.quantity for e in events if isinstance(e, StockAdded))
    shipped = sum(e.quantity for e in events if isinstance(e, StockShipped))
    returned = sum(e.quantity for e in events if isinstance(e, StockReturned))
    assert state.on_hand == added - shipped + returned
    held = {}
    for e in events:  # every order holds at most one reservation, released at most once
        if isinstance(e, StockReserved):
            assert e.order_id not in held
            held[e.order_id] = e.quantity
        elif isinstance(e, StockReleased | StockShipped):
            assert held.pop(e.order_id) == e.quantity
    assert held == dict(state.reservations)


# --- stage 1: orders re-keyed by SKU -------------------------------------------------------------------------------

OID = "o-1"
_meta = dict(occurred_at=T0, correlation_id=OID, causation_id="cmd", order_id=OID)


def placed(version: int = 1) -> OrderPlaced:
    lines = (OrderLine(sku="A", quantity=2, unit_price_minor=100), OrderLine(sku="B", quantity=1, unit_price_minor=50))
    return OrderPlaced(
        event_id=f"e-{version}",
        version=version,
        customer_id="c-1",
        currency="EUR",
        lines=lines,
        total_minor=250,
        **_meta,
    )


def rejected(version: int = 3) -> OrderRejected:
    return OrderRejected(event_id=f"e-{version}", version=version, reason="payment declined", **_meta)


def cancelled(version: int = 3) -> OrderCancelled:
    return OrderCancelled(event_id=f"e-{version}", version=version, reason="changed my mind", **_meta)


def confirmed(version: int = 2) -> OrderConfirmed:
    return OrderConfirmed(event_id=f"e-{version}", version=version, **_meta)


def commands_of(reaction) -> tuple:
    return tuple((type(c).__name__, c.sku, c.order_id, c.quantity) for c in reaction.commands)


def shipped(version: int = 6) -> OrderShipped:
    return OrderShipped(event_id=f"e-{version}", version=version, carrier="DHL", tracking_number="T", **_meta)


def returned(version: int = 8, restock: bool = True) -> OrderReturned:
    line = OrderLine(sku="A", quantity=1, unit_price_minor=100)
    return OrderReturned(
        event_id=f"e-{version}",
        version=version,
        lines=(line,),
        refund_minor=100,
        restock=restock,
        reason="too small",
        fully_returned=False,
        **_meta,
    )


NEW = OrderLinesState(order_id=OID)
PLACED = order_evolve(NEW, placed())
RELEASED = order_evolve(PLACED, rejected())
SHIPPED = order_evolve(PLACED, shipped())
RESERVE_ALL = (("ReserveStock", "A", OID, 2), ("ReserveStock", "B", OID, 1))
RELEASE_ALL = (("ReleaseStock", "A", OID, 2), ("ReleaseStock", "B", OID, 1))
SHIP_ALL = (("ShipStock", "A", OID, 2), ("ShipStock", "B", OID, 1))

ORDER_TABLE = [
    # (state, event, mirrored?, commands)
    (NEW, placed(), True, RESERVE_ALL),
    (NEW, rejected(), False, ()),  # never placed here: nothing to release
    (NEW, confirmed(), False, ()),
    (PLACED, placed(), False, ()),  # a repeat
    (PLACED, confirmed(), False, ()),  # other order events are not the inventory's business
    (PLACED, rejected(), True, RELEASE_ALL),
    (PLACED, cancelled(), True, RELEASE_ALL),
    (RELEASED, cancelled(4), False, ()),  # released once only
    (RELEASED, rejected(), False, ()),
    (PLACED, shipped(), True, SHIP_ALL),  # the accepted dispatch: the reserved units leave with the parcel
    (RELEASED, shipped(), False, ()),
    (SHIPPED, shipped(7), False, ()),  # shipped once only
    (SHIPPED, cancelled(7), False, ()),  # a shipped order is never released (the order refuses it anyway)
    (PLACED, returned(), False, ()),  # nothing left through this stage: nothing comes back
    (SHIPPED, returned(), True, (("ReturnStock", "A", OID, 1),)),
    (SHIPPED, returned(restock=False), False, ()),  # damaged goods stay off the shelf
]


@pytest.mark.parametrize(("state", "event", "mirrored", "commands"), ORDER_TABLE)
def test_order_stage_table(state, event, mirrored, commands):
    reaction = react_to_order(event, state, T0)
    assert reaction.mirror == ((event,) if mirrored else ())
    assert commands_of(reaction) == commands
    for command in reaction.commands:
        assert command.correlation_id == OID and command.issued_at == T0
    if mirrored:
        after = order_evolve(state, event)
        assert react_to_order(event, after, T0) == inventory.OrderReaction(), "handled once"


def test_order_stage_command_ids_are_stable_and_distinct():
    first, second = react_to_order(placed(), NEW, T0), react_to_order(placed(), NEW, datetime(2030, 1, 1, tzinfo=UTC))
    assert [c.command_id for c in first.commands] == [c.command_id for c in second.commands]
    releases = react_to_order(rejected(), PLACED, T0)
    ids = [c.command_id for c in first.commands + releases.commands]
    assert len(set(ids)) == 4


def test_order_stage_evolve_refuses_foreign_and_old_events():
    from dataclasses import replace

    with pytest.raises(EvolveError):
        order_evolve(PLACED, placed())
    with pytest.raises(EvolveError):
        order_evolve(NEW, replace(placed(), order_id="o-2"))
    with pytest.raises(EvolveError):
        order_evolve(PLACED, confirmed())
