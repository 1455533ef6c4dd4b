"""Read-your-writes tokens: where the last event a command wrote sits in the log.

`place --wait` prints one; `query ... --after TOKEN` waits until the projection has applied that position, i.e. until
its stored next offset for that topic and partition is past the token's offset. The text form is
`<topic>:<partition>:<offset>` (the topic without any configured prefix), e.g. `orders.events:3:1041`.
"""

from __future__ import annotations

from dataclasses import dataclass


class TokenError(ValueError):
    """A token that is not <topic>:<partition>:<offset>."""


@dataclass(frozen=True, slots=True)
class ConsistencyToken:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> ConsistencyToken:
        parts = text.strip().rsplit(":", 2)
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
            raise TokenError(f"token {text!r} is not <topic>:<partition>:<offset> (as printed by `place --wait`)")
        return cls(parts[0], int(parts[1]), int(parts[2]))

    def is_applied(self, next_offset: int | None) -> bool:
        """True when a consumer whose next offset on this partition is next_offset has applied this token."""
        return next_offset is not None and next_offset > self.offset
