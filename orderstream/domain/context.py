"""What a decider is told and must not make up: when, on behalf of which workflow (correlation) and which cause.

Every decider (order, shipping, payment, inventory) stamps its events with a Context and derives their ids from it: a
name-based UUID of (aggregate id, version, causation id) in the decider's own namespace, so deciding the same input
on the same state twice yields identical events. Each domain module subclasses Context only to name its namespace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from orderstream.domain.commands import Command
from orderstream.domain.events import Event


@dataclass(frozen=True, slots=True)
class Context:
    occurred_at: datetime
    correlation_id: str
    causation_id: str

    namespace: ClassVar[uuid.UUID]  # the deciding domain's namespace of event ids, set by its subclass

    @classmethod
    def of(cls, message: Command | Event, occurred_at: datetime) -> Context:
        """The context of handling a command (caused by its command id) or an event (caused by its event id)."""
        cause = message.command_id if isinstance(message, Command) else message.event_id
        return cls(occurred_at=occurred_at, correlation_id=message.correlation_id, causation_id=cause)

    def event_id(self, aggregate_id: str, version: int) -> str:
        """The id of the aggregate's event number `version` decided in this context."""
        return str(uuid.uuid5(self.namespace, f"{aggregate_id}/{version}/{self.causation_id}"))
