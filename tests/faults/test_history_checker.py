"""The history checker finds each anomaly it claims to (it guards every fault test, so it is tested itself)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from orderstream.domain.events import OrderConfirmed
from tests.support.history import History


def event(order: str, version: int, cause: str, event_id: str | None = None) -> OrderConfirmed:
    return OrderConfirmed(
        event_id=event_id or str(uuid.uuid4()),
        version=version,
        occurred_at=datetime.now(UTC),
        correlation_id=order,
        causation_id=cause,
        order_id=order,
    )


def test_a_clean_history_is_clean():
    h = History()
    h.command_acknowledged("c1", "o1", True)
    h.command_acknowledged("c2", "o1", True)
    h.event_observed("t", 0, 0, event("o1", 1, "c1"))
    h.event_observed("t", 0, 1, event("o1", 2, "c2"))
    h.row_observed("order-view", "o1", 2)
    assert h.check(rows_must_be_current=True).clean


def test_lost_event():
    h = History()
    h.command_acknowledged("c1", "o1", True)
    assert h.check().lost == ["accepted command c1 (o1) has no event"]


def test_duplicate_by_event_id_and_by_version():
    h = History()
    e = event("o1", 1, "c1")
    h.event_observed("t", 0, 0, e)
    h.event_observed("t", 0, 0, e, reader="other")  # the same record read by another reader is fine
    h.event_observed("t", 0, 1, e)
    h.event_observed("t", 0, 2, event("o1", 1, "c1"))
    assert len(h.check().duplicates) == 2


def test_version_gap_backwards_offset_aborted_and_stale_rows():
    h = History()
    h.command_acknowledged("bad", "o2", False)
    h.event_observed("t", 0, 5, event("o1", 1, "c1"))
    h.event_observed("t", 0, 3, event("o1", 3, "c3"))
    h.event_observed("t", 1, 0, event("o2", 1, "bad"))
    h.row_observed("order-view", "o1", 7)
    h.row_observed("order-view", "o2", 0)
    anomalies = h.check(rows_must_be_current=True)
    assert anomalies.version_gaps == ["o1: versions [1, 3]"]
    assert anomalies.backwards_offsets and "after @5" in anomalies.backwards_offsets[0]
    assert len(anomalies.aborted_reads) == 2
    assert anomalies.stale_rows == ["order-view shows o2 v0, committed v1"]
    assert not anomalies.clean and "version_gaps" in anomalies.summary()
