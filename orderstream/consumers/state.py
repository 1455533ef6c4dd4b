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

CACHE_FORMAT = 1


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
    """One key's aggregate state and the inputs that changed it (causation id -> Handled): the idempotency memory."""

    value: S
    handled: dict[str, Handled] = field(default_factory=dict)

    def copy(self) -> KeyState[S]:
        """A copy a batch may change freely (the value is immutable; Handled entries are replaced, never changed,
        once their offset is known)."""
        return KeyState(self.value, dict(self.handled))


@dataclass(slots=True)
class PartitionState:
    """The fold of one changelog partition up to (not including) next_offset."""

    partition: int
    next_offset: int = 0
    keys: dict[str, KeyState[Any]] = field(default_factory=dict)
    dirty: bool = False  # changed since it was last written to the cache


class StateCache:
    """One pickle file per changelog partition under `directory`, written atomically (temp file + rename).

    A file that cannot be read, or that was written for another topic, format or partition, is ignored (with a
    warning) and the partition is rebuilt from the changelog: the cache is never trusted over the log.
    """

    def __init__(self, directory: Path, topic: str) -> None:
        self.directory = directory
        self.topic = topic

    def path(self, partition: int) -> Path:
        return self.directory / f"{self.topic}-{partition}.pickle"

    def load(self, partition: int) -> PartitionState | None:
        path = self.path(partition)
        if not path.is_file():
            return None
        try:
            with path.open("rb") as handle:
                saved = pickle.load(handle)
            if (saved.get("format"), saved.get("topic"), saved.get("partition")) != (CACHE_FORMAT, self.topic, partition):
                raise ValueError("written for another format, topic or partition")
            return PartitionState(partition, saved["next_offset"], saved["keys"])
        except Exception as exc:  # noqa: BLE001 - an unreadable cache only costs a full replay; say so
            log.warning("ignoring state cache %s (%s: %s); rebuilding from the changelog", path, type(exc).__name__, exc)
            return None

    def save(self, state: PartitionState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": CACHE_FORMAT,
            "topic": self.topic,
            "partition": state.partition,
            "next_offset": state.next_offset,
            "keys": state.keys,
        }
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.topic}-{state.partition}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, self.path(state.partition))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        state.dirty = False
