"""Read-your-writes tokens: where the last event a command wrote sits in the log.

`place --wait` prints one; `query ... --after TOKEN` waits until the projection has applied that position, i.e. until
its stored next offset for that topic and partition is past the token's offset. The text form is
`<topic>:<partition>:<offset>` (the topic without any configured prefix), e.g. `orders.events:3:1041`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ASCII digits only (str.isdigit() also takes '²', which int() refuses); at most what Kafka's int32 partition and
# int64 offset can hold in digits, so int() never sees thousands of them.
_TOKEN = re.compile(r"(?P<topic>.+):(?P<partition>[0-9]{1,10}):(?P<offset>[0-9]{1,19})")


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
        match = _TOKEN.fullmatch(text.strip())
        if match is None:
            raise TokenError(
                f"token {text!r} is not <topic>:<partition>:<offset> with digits 0-9 (as printed by `place --wait`)"
            )
        return cls(match["topic"], int(match["partition"]), int(match["offset"]))

    def is_applied(self, next_offset: int | None) -> bool:
        """True when a consumer whose next offset on this partition is next_offset has applied this token."""
        return next_offset is not None and next_offset > self.offset

    def impossibility(self, partitions: int, end_offset: int | None) -> str | None:
        """Why no event can ever sit at this token in a topic of `partitions` partitions whose token partition ends
        at end_offset (its high watermark); None when one can. Such a token would otherwise be waited for until the
        timeout, and the wait would end blaming the projections for an event that was never written."""
        if self.partition >= partitions:
            return f"{self.topic} has {partitions} partition(s), numbered 0 to {partitions - 1}"
        if end_offset is not None and self.offset >= end_offset:
            last = f"its last event is at offset {end_offset - 1}" if end_offset else "it holds no events"
            return f"{self.topic} partition {self.partition} ends before offset {self.offset} ({last})"
        return None
