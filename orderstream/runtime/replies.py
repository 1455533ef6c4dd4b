"""The Reply every command-handling service sends: accepted (with the read-your-writes token) or rejected.

A service's replies go to its replies topic, keyed by the command's aggregate id, on the command's partition number;
an accepted reply names where its events are (the service's changelog topic, partition and offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orderstream.domain.commands import Command, Reply
from orderstream.runtime.processor import HandleContext, Outcome, Output
from orderstream.runtime.state import Handled


class Refusal(Protocol):
    """What a decider's rejection carries into a reply (domain/order.Rejection, domain/inventory.Rejection)."""

    reason: str
    current_version: int


@dataclass(frozen=True)
class Replies:
    topic: str  # where the replies go
    events_topic: str  # the changelog the accepted commands' events are written to

    def rejected(self, command: Command, rejection: Refusal, context: HandleContext) -> Outcome:
        """The outcome of a refused command: no events, a reply saying why and at which version."""
        reply = Reply(
            command_id=command.command_id,
            aggregate_id=context.key,
            accepted=False,
            version=rejection.current_version,
            reason=rejection.reason,
            replied_at=context.now,
            correlation_id=command.correlation_id,
        )
        return Outcome(reply=lambda: Output(self.topic, context.key, reply, context.partition))

    def accepted(self, command: Command, handled: Handled) -> Output:
        """The reply of an accepted command; identical every time it is asked for (it derives from the stream only)."""
        reply = Reply(
            command_id=command.command_id,
            aggregate_id=command.aggregate_id,
            accepted=True,
            version=handled.version,
            reason="",
            replied_at=handled.at,
            correlation_id=command.correlation_id,
            events_topic=self.events_topic,
            events_partition=handled.partition,
            events_offset=handled.offset,
        )
        return Output(self.topic, command.aggregate_id, reply, handled.partition)
