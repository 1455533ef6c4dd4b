"""The handle() of a processor keyed by order id that takes commands and reactions (the order and shipping services).

Commands are answered on the service's replies topic: rejected, or accepted with the read-your-writes token. A repeated
command id (the causation id of events already in the stream) produces nothing new and gets the first reply again.
Reactions (other services' events about the order) are never answered; a repeated one changes nothing, and so does
one the decider refuses. A command under another order's key is rejected; a reaction under one raises, which
dead-letters it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from orderstream.domain.commands import Command
from orderstream.domain.events import Event
from orderstream.domain.order import Rejection, RejectionCode
from orderstream.runtime.processor import HandleContext, Outcome
from orderstream.runtime.replies import Replies
from orderstream.runtime.state import KeyState


class OrderKeyedLogic:
    """A ProcessorLogic's handle(); a subclass names its aggregate, replies and logger, and decides."""

    aggregate: ClassVar[str]  # what the logs call the key: "order", "shipment"
    replies: ClassVar[Replies]
    logger: ClassVar[logging.Logger]  # the service module's logger
    unchanged_level: ClassVar[int] = logging.INFO  # the level of "a reaction changes nothing"

    def decide(self, message: Any, state: Any, context: HandleContext) -> tuple[Event, ...] | Rejection:
        raise NotImplementedError

    def handle(self, message: Any, state: KeyState[Any], context: HandleContext) -> Outcome:
        is_command = isinstance(message, Command)
        order_id = getattr(message, "order_id", None)
        if order_id != context.key:
            reason = f"record key {context.key!r} is not the order id {order_id!r} of the {type(message).__name__}"
            if not is_command:
                raise ValueError(f"{context.topic}[{context.partition}]@{context.offset}: {reason}")
            return self.replies.rejected(
                message, Rejection(reason, state.value.version, RejectionCode.INVALID), context
            )
        input_id = message.command_id if is_command else message.event_id
        seen = state.handled.get(input_id)
        if seen is not None:  # handled before: nothing new, the same answer
            self.logger.info(
                "%s %s: %s %s was already handled (version %d)",
                self.aggregate,
                context.key,
                type(message).__name__,
                input_id,
                seen.version,
            )
            return Outcome(reply=(lambda: self.replies.accepted(message, seen)) if is_command else None)

        decision = self.decide(message, state.value, context)
        if isinstance(decision, Rejection):
            if is_command:
                return self.replies.rejected(message, decision, context)
            self.logger.log(
                self.unchanged_level,
                "%s %s: %s %s changes nothing: %s",
                self.aggregate,
                context.key,
                type(message).__name__,
                input_id,
                decision.reason,
            )
            return Outcome()
        if not is_command:
            return Outcome(events=decision)
        # the processor records state.handled[input_id] for these events and fills in the offset before reply()
        return Outcome(events=decision, reply=lambda: self.replies.accepted(message, state.handled[input_id]))
