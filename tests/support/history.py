"""A history checker for fault tests, in the spirit of Jepsen's queue checks and Kafka's transaction system tests.

A test records what it was told (commands acknowledged, with their outcome) and what it observed (events read from
topics, rows read from projections); check() then reports every anomaly:
- lost: an accepted command none of whose events was ever read;
- duplicates: one event id read at two positions, or two different events at the same (aggregate, version);
- version gaps: an aggregate whose versions are not 1..n without holes;
- aborted or phantom reads: an event caused by a command that was acknowledged as rejected, or a projection row
  whose version is past every committed event of its aggregate (data from an aborted transaction);
- offsets going backwards: one reader seeing a partition's offsets out of order;
- stale rows: (optional) a projection row behind the last committed version once everything has caught up.
Pure: no I/O, so the checker itself is unit-tested.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Anomalies:
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    version_gaps: list[str] = field(default_factory=list)
    aborted_reads: list[str] = field(default_factory=list)
    backwards_offsets: list[str] = field(default_factory=list)
    stale_rows: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not any(vars(self).values())

    def summary(self) -> str:
        parts = [f"{name}: {len(items)} (e.g. {items[:3]})" for name, items in vars(self).items() if items]
        return "; ".join(parts) if parts else "clean"


@dataclass
class History:
    """What one fault test was told and saw."""

    accepted: dict[str, str] = field(default_factory=dict)  # command id -> aggregate id
    rejected: set[str] = field(default_factory=set)
    events: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # event id -> position
    anomalies: Anomalies = field(default_factory=Anomalies)
    _by_version: dict[tuple[str, int], str] = field(default_factory=dict)
    _causes: set[str] = field(default_factory=set)
    _last_offset: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _rows: dict[tuple[str, str], int] = field(default_factory=dict)

    def command_acknowledged(self, command_id: str, aggregate_id: str, accepted: bool) -> None:
        if accepted:
            self.accepted[command_id] = aggregate_id
        else:
            self.rejected.add(command_id)

    def event_observed(self, topic: str, partition: int, offset: int, event: Any, reader: str = "reader") -> None:
        position = (topic, partition, offset)
        cursor = (reader, topic, partition)
        if cursor in self._last_offset and offset <= self._last_offset[cursor]:
            self.anomalies.backwards_offsets.append(
                f"{reader} read {topic}[{partition}]@{offset} after @{self._last_offset[cursor]}"
            )
        self._last_offset[cursor] = offset
        seen_at = self.events.get(event.event_id)
        if seen_at is not None and seen_at != position:
            self.anomalies.duplicates.append(f"event {event.event_id} at {seen_at} and {position}")
            return
        if seen_at == position:
            return  # the same record read again (a second reader, or a rewind): not a duplicate
        self.events[event.event_id] = position
        slot = (event.aggregate_id, event.version)
        if slot in self._by_version and self._by_version[slot] != event.event_id:
            self.anomalies.duplicates.append(f"{event.aggregate_id} v{event.version} written twice")
        self._by_version[slot] = event.event_id
        self._causes.add(event.causation_id)
        if event.causation_id in self.rejected:
            self.anomalies.aborted_reads.append(f"{type(event).__name__} of rejected command {event.causation_id}")

    def row_observed(self, projection: str, aggregate_id: str, version: int) -> None:
        self._rows[(projection, aggregate_id)] = version

    def check(self, rows_must_be_current: bool = False) -> Anomalies:
        result = self.anomalies
        for command_id, aggregate_id in self.accepted.items():
            if command_id not in self._causes:
                result.lost.append(f"accepted command {command_id} ({aggregate_id}) has no event")
        versions: dict[str, list[int]] = defaultdict(list)
        for aggregate_id, version in self._by_version:
            versions[aggregate_id].append(version)
        for aggregate_id, seen in versions.items():
            if sorted(seen) != list(range(1, len(seen) + 1)):
                result.version_gaps.append(f"{aggregate_id}: versions {sorted(seen)}")
        for (projection, aggregate_id), version in self._rows.items():
            committed = max(versions.get(aggregate_id, [0]))
            if version > committed:
                result.aborted_reads.append(
                    f"{projection} shows {aggregate_id} v{version}, committed only v{committed}"
                )
            elif rows_must_be_current and version < committed:
                result.stale_rows.append(f"{projection} shows {aggregate_id} v{version}, committed v{committed}")
        return result
