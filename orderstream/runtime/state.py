"""A processor's state: per key, the aggregate's state and which inputs it already handled; per partition, the
changelog offset that state reflects. Plus the on-disk cache of it.

The changelog topic is the truth. A PartitionState says "this is the fold of changelog partition p up to next_offset";
the cache merely saves replaying from offset 0 on start-up. Deleting the cache changes nothing but start-up time.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

S = TypeVar("S")

CACHE_FORMAT = 3  # 1: one pickle of every key per file, rewritten at every checkpoint; 2: KeyState had no version


@dataclass(slots=True)
class Handled:
    """An input (command id or event id) that produced changelog events: the version it left the key at, where its
    last event sits (offset is None until the transaction's flush learns it) and when it was handled."""

    version: int
    partition: int
    offset: int | None
    at: datetime


@dataclass(slots=True)
class KeyState(Generic[S]):
    """One key's aggregate state and the inputs that changed it (causation id -> Handled): the idempotency memory.
    version: the highest event version of the key's changelog folded into value (0: none), so a restore knows a
    repeated record (a copy written back) from a new one."""

    value: S
    handled: dict[str, Handled] = field(default_factory=dict)
    version: int = 0

    def copy(self) -> KeyState[S]:
        """A copy a batch may change freely (the value is immutable; Handled entries are replaced, never changed,
        once their offset is known)."""
        return KeyState(self.value, dict(self.handled), self.version)


@dataclass(slots=True)
class PartitionState:
    """The fold of one changelog partition up to (not including) next_offset.

    changed: the keys whose state changed since the last checkpoint (only they are written to the cache next);
    rewrite: the next checkpoint must write every key (a new or rebuilt state, or a cache file that is not whole)."""

    partition: int
    next_offset: int = 0
    keys: dict[str, KeyState[Any]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    rewrite: bool = True

    @property
    def dirty(self) -> bool:
        return self.rewrite or bool(self.changed)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What one checkpoint writes for a partition: every key (whole=True) or the keys changed since the last one."""

    partition: int
    next_offset: int
    keys: dict[str, KeyState[Any]]
    whole: bool


class StateCache:
    """One append-only file per changelog partition under `directory`: a header, then one record per checkpoint
    holding the keys changed since the previous one and the offset the state is at. Loading merges the records in
    order. A checkpoint costs what changed, not every key the service ever saw (pickling one order's state takes
    25-50 us here, 15k orders 350-760 ms: rewriting every key every 30 s grows with every order ever placed).

    A file is rewritten whole (temp file + rename) on the first checkpoint of a new or rebuilt state, after a
    failed or torn append, and once it holds more than twice as many entries as there are keys plus 1,000
    (compaction). A file that cannot be read, or that was written for another topic, format or partition, is ignored
    (with a warning) and the partition is rebuilt from the changelog; a torn last record (a crash mid-append) is
    dropped, leaving the state of the record before it. The cache is never trusted over the log.
    """

    def __init__(self, directory: Path, topic: str) -> None:
        self.directory = directory
        self.topic = topic
        self._entries: dict[int, int] = {}  # partition -> key entries in its file (absent: rewrite it)

    def path(self, partition: int) -> Path:
        return self.directory / f"{self.topic}-{partition}.pickle"

    def whole_write_due(self, partition: int, keys: int) -> bool:
        entries = self._entries.get(partition)
        return entries is None or entries > 2 * keys + 1000

    def load(self, partition: int) -> PartitionState | None:
        path = self.path(partition)
        if not path.is_file():
            return None
        self._entries.pop(partition, None)
        try:
            with path.open("rb") as handle:
                header = pickle.load(handle)
                if (header.get("format"), header.get("topic"), header.get("partition")) != (
                    CACHE_FORMAT,
                    self.topic,
                    partition,
                ):
                    raise ValueError("written for another format, topic or partition")
                keys: dict[str, KeyState[Any]] = {}
                next_offset, entries, torn = None, 0, False
                while True:
                    try:
                        record = pickle.load(handle)
                    except EOFError:
                        break
                    except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as exc:
                        log.warning(
                            "state cache %s ends in a torn record (%s); using the checkpoint before it", path, exc
                        )
                        torn = True
                        break
                    keys.update(record["keys"])
                    next_offset, entries = record["next_offset"], entries + len(record["keys"])
            if next_offset is None:
                raise ValueError("no checkpoint in it")
        except Exception as exc:  # noqa: BLE001 - an unreadable cache only costs a full replay; say so
            log.warning(
                "ignoring state cache %s (%s: %s); rebuilding from the changelog", path, type(exc).__name__, exc
            )
            return None
        if not torn:
            self._entries[partition] = entries
        return PartitionState(partition, next_offset, keys, rewrite=torn)

    def save(self, checkpoint: Checkpoint) -> None:
        """Write one checkpoint: the whole state (temp file + rename) or the changed keys (appended). Any failure
        leaves the partition to be written whole next time (whole_write_due) and is re-raised."""
        self.directory.mkdir(parents=True, exist_ok=True)
        number = checkpoint.partition
        record = {"next_offset": checkpoint.next_offset, "keys": checkpoint.keys}
        known = self._entries.pop(number, None)  # until this write is done, the file is not known to be whole
        if not checkpoint.whole and known is None:  # appended to nothing, a delta would read as the whole state
            raise ValueError(
                f"partition {number}: only changed keys, but no whole file under them (see whole_write_due)"
            )
        if checkpoint.whole:
            header = {"format": CACHE_FORMAT, "topic": self.topic, "partition": number}
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.topic}-{number}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    pickle.dump(header, handle, protocol=pickle.HIGHEST_PROTOCOL)
                    pickle.dump(record, handle, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temp, self.path(number))
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            self._entries[number] = len(checkpoint.keys)
            return
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        with self.path(number).open("ab") as handle:
            handle.write(data)
        self._entries[number] = known + len(checkpoint.keys)
