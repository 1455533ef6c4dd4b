"""order-view's bulk fold (order_view.bulk_fold, what rebuilds and far-behind batches use) against its incremental fold
(project), on real SQLite and PostgreSQL: for random valid histories cut into random batches, the bulk path (into a
generation loaded without its secondary indexes, indexed at the end), the incremental path, and bulk up to a random
offset then incremental from there all store identical tables and offsets, equal to the independent reference fold.
And for random broken logs (an event dropped, repeated or moved), both folds refuse the same batches."""

from __future__ import annotations

import uuid
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from orderstream.views.base import ProjectionError, RowChanges, follow_versions
from orderstream.views.order_view import bulk_fold, project
from orderstream.views.registry import spec_of
from orderstream.views.store import ProjectionStore, Record
from tests.support.databases import url_of
from tests.support.histories import interleaved, order_history, reference

SPEC = spec_of("order-view")
PARTITIONS = 2


@st.composite
def cut_log(draw):
    """(histories, records of the log on PARTITIONS partitions of a topic of its own, batch cuts, the index where the
    bulk path stops)."""
    prefix = f"{uuid.uuid4().hex[:6]}-"
    topic = f"orders.events.{prefix}"
    histories = [draw(order_history(prefix=prefix)) for _ in range(draw(st.integers(1, 6)))]
    log = draw(interleaved(histories))
    partition_of = {h[0].order_id: n % PARTITIONS for n, h in enumerate(histories)}  # an order stays on one
    next_offset = [0] * PARTITIONS
    records = []
    for event in log:
        partition = partition_of[event.order_id]
        records.append(Record(topic, partition, next_offset[partition], event))
        next_offset[partition] += 1
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(log) - 1)), max_size=4, unique=True)))
    switch = draw(st.integers(0, len(log)))
    return histories, records, cuts, switch


def batches(records, cuts):
    return [records[a:b] for a, b in pairwise([0, *cuts, len(records)]) if records[a:b]]


@pytest.fixture
def store(db_url):
    store = ProjectionStore(url_of(db_url, SPEC.name), SPEC, writer=True)
    store.ensure()  # live generation 1; the test writes shadow generations next to it
    yield store
    store.dispose()


def test_bulk_incremental_and_switched_paths_store_identical_tables(store):
    incremental, bulk, switched = 2, 3, 4  # three generations, filled side by side, example after example
    store.create_generation(incremental)
    store.create_generation(bulk, defer_indexes=True)
    store.create_generation(switched, defer_indexes=True)

    @hsettings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None,
               phases=[Phase.explicit, Phase.generate])  # fmt: skip
    @given(cut_log())
    def check(case):
        histories, records, cuts, switch = case
        for batch in batches(records, cuts):
            store.apply(batch, incremental, shadow=True)
            store.apply(batch, bulk, shadow=True, bulk=True)
        # the switch: every batch before `switch` in bulk, the rest incremental (a batch is cut there too)
        for batch in batches(records, sorted({*cuts, switch} - {0, len(records)})):
            store.apply(batch, switched, shadow=True, bulk=records.index(batch[-1]) < switch)
        expected = store.dump(incremental)
        prefix = histories[0][0].order_id.split("o-")[0]
        assert {role: sorted(r for r in rows if r[0].startswith(prefix)) for role, rows in expected.items()} == {
            role: sorted(rows) for role, rows in reference(histories)["order-view"].items()
        }, "the incremental fold differs from the reference"
        assert store.dump(bulk) == expected
        assert store.dump(switched) == expected
        offsets = store.next_offsets(incremental)
        assert offsets == store.next_offsets(bulk) == store.next_offsets(switched)
        assert sum(offsets[(records[0].topic, p)] for p in range(PARTITIONS) if (records[0].topic, p) in offsets) == (
            len(records)
        )

    check()
    store.create_indexes(bulk)
    store.create_indexes(switched)
    assert store.dump(bulk) == store.dump(switched) == store.dump(incremental)
    assert _index_names(store, bulk) == _index_names(store, switched) == _index_names(store, 1)


def _index_names(store, generation: int) -> list[str]:
    from sqlalchemy import inspect

    with store.engine.connect() as conn:
        inspector = inspect(conn)
        return sorted(
            index["name"].replace(f"_g{generation}_", "_g_")
            for table in store.tables(generation).values()
            for index in inspector.get_indexes(table.name)
        )


@st.composite
def broken_log(draw):
    """A valid log with one event dropped, repeated or moved (what check_next must refuse), and a batch size."""
    prefix = f"{uuid.uuid4().hex[:6]}-"
    histories = [draw(order_history(prefix=prefix)) for _ in range(draw(st.integers(1, 3)))]
    log = draw(interleaved(histories))
    at = draw(st.integers(0, len(log) - 1))
    how = draw(st.sampled_from(["drop", "repeat", "move"]))
    if how == "drop":
        del log[at]
    elif how == "repeat":
        log.insert(draw(st.integers(at, len(log))), log[at])
    else:
        log.insert(draw(st.integers(0, len(log))), log.pop(at))
    return log, draw(st.integers(1, max(1, len(log))))


@hsettings(max_examples=200, deadline=None, database=None)
@given(broken_log())
def test_both_folds_refuse_the_same_batches(case):
    """Batch by batch over the same state rows: where the poison policy and project() raise ProjectionError (what the
    store runs for the incremental path) the bulk fold does too, and where they fold, the bulk fold's rows are
    theirs. The bulk fold applies the poison policy itself (BulkForm.follows_versions), so it takes the batch as it
    comes."""
    assert SPEC.bulk is not None and SPEC.bulk.follows_versions
    log, size = case
    state: dict[str, dict] = {}
    for start in range(0, len(log), size):
        events = log[start : start + size]
        current = {e.order_id: state[e.order_id] for e in events if e.order_id in state}
        try:
            changes = project(follow_versions(events, current), current)
        except ProjectionError:
            with pytest.raises(ProjectionError):
                bulk_fold(events, current)
            return
        rows = bulk_fold(events, current)
        if isinstance(rows, RowChanges):  # a batch with a return is folded by project() itself
            assert rows == changes
            state.update({key[0]: row for key, row in changes.upserts["orders"].items()})
            continue
        assert {role for role, _, _ in rows} == {"orders"}
        written = [(kind, row) for _, kind, tuples in rows for row in tuples]
        expected = changes.upserts.get("orders", {})
        assert sorted(row for _, row in written) == sorted(tuple(row.values()) for row in expected.values())
        for kind, row in written:  # an order the table holds is replaced, one placed in the batch appended
            assert kind == ("upsert" if row[0] in current else "append"), row[0]
        state.update({key[0]: row for key, row in changes.upserts["orders"].items()})


def test_broken_logs_fold_the_same_through_the_store_on_both_paths(store):
    """Through the store (the poison policy first: repeats left out, a gap refused): a batch that fails on one path
    fails on the other, and applied record by record as the projector and a replay then do, both store the same."""
    incremental, bulk = 5, 6
    store.create_generation(incremental)
    store.create_generation(bulk, defer_indexes=True)

    @hsettings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None,
               phases=[Phase.explicit, Phase.generate])  # fmt: skip
    @given(broken_log())
    def check(case):
        log, size = case
        topic = f"orders.events.{uuid.uuid4().hex[:6]}"
        records = [Record(topic, 0, offset, event) for offset, event in enumerate(log)]
        for start in range(0, len(records), size):
            batch = records[start : start + size]
            failed = []
            for generation, in_bulk in ((incremental, False), (bulk, True)):
                try:
                    store.apply(batch, generation, shadow=True, bulk=in_bulk)
                    failed.append(False)
                except ProjectionError:
                    failed.append(True)
                    for record in batch:
                        try:
                            store.apply([record], generation, shadow=True, bulk=in_bulk)
                        except ProjectionError:
                            store.apply([record._replace(event=None)], generation, shadow=True, bulk=in_bulk)
            assert failed[0] == failed[1]
        assert store.dump(bulk) == store.dump(incremental)
        assert store.next_offsets(bulk) == store.next_offsets(incremental)

    check()
