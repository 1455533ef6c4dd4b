"""Read-your-writes: wait until a view has applied a token (from `place --wait` or POST /orders), or say how far
behind it is.

One core, two drivers: `wait_until_applied` (blocking, for the CLI) and `await_applied` (asyncio, for the HTTP API:
it awaits between looks at the view and never parks a thread in a sleep; in a server every wait on a view shares one
PositionWatch, whose reads serve them all). Both:
1. parse the token and check it names a topic the view projects (TokenRefused);
2. read the view's stored next offset on the token's partition; done once it is past the token's offset;
3. once it has waited CHECK_AFTER_S in vain (or at the timeout, whichever is first), ask the broker once whether the
   token can exist at all (TokenUnreachable: a partition or offset its topic does not have would otherwise be waited
   for until the timeout, blaming the view). Not sooner: the usual token is applied within milliseconds, and a
   Kafka client per wait would cost more than the wait (an API answering 100 such reads a second spent its threads
   on them);
4. past the timeout, raise ViewBehind with how many events the view still has to apply.
A view that has no database yet counts as "applied nothing"; any other store error propagates.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from orderstream.config import Settings
from orderstream.kafka.consistency import ConsistencyToken, TokenError
from orderstream.views.queries import ReadModel
from orderstream.views.registry import spec_of
from orderstream.views.store import NotInitialized

FIRST_POLL_S, MAX_POLL_S = 0.005, 0.05  # looks at the view: soon after the first miss, then backing off to 50 ms
WATCH_INTERVAL_S = 0.003  # a PositionWatch's reads while waits are open: each a fraction of a millisecond of CPU
TOKEN_CHECK_TIMEOUT_S = 5.0  # the most asking the broker whether a token can exist takes
CHECK_AFTER_S = 0.5  # how long a wait goes on before the broker is asked whether its token can exist


class TokenRefused(ValueError):
    """The token is not <topic>:<partition>:<offset>, or names a topic the view does not project."""


class TokenUnreachable(ValueError):
    """The token names a partition or offset (or a topic) the cluster does not have: no view will ever reach it."""


class ViewBehind(TimeoutError):
    """The view had not applied the token when the wait timed out. behind: events still to apply on its partition."""

    def __init__(self, message: str, *, projection: str, token: ConsistencyToken, behind: int, timeout_s: float):
        super().__init__(message)
        self.projection, self.token, self.behind, self.timeout_s = projection, token, behind, timeout_s


def parse_token(projection: str, text: str) -> ConsistencyToken:
    """The token in `text`, which must name a topic `projection` reads."""
    try:
        token = ConsistencyToken.parse(text)
    except TokenError as exc:
        raise TokenRefused(str(exc)) from None
    topics = spec_of(projection).topics
    if token.topic not in topics:
        raise TokenRefused(f"token {token} names {token.topic}; {projection} projects {', '.join(topics)}")
    return token


def check_timeout(timeout_s: float) -> float:
    if not math.isfinite(timeout_s) or timeout_s < 0:
        raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout_s:g}")
    return timeout_s


@dataclass
class _Wait:
    """The state of one wait, shared by both drivers: what the view has applied, and whether the broker was asked."""

    settings: Settings
    projection: str
    token: ConsistencyToken
    timeout_s: float
    model: ReadModel | None = None
    owns_model: bool = False
    next_offset: int | None = None
    checked: bool = False

    def applied(self) -> bool:
        """Read the view's position once (blocking: a short SQL read)."""
        try:
            if self.model is None:
                self.model = ReadModel(self.settings.database_url_for(self.projection), self.projection)
                self.owns_model = True
            self.next_offset = self.model.next_offset(self.settings.topic(self.token.topic), self.token.partition)
        except NotInitialized:
            self.next_offset = None
        return self.token.is_applied(self.next_offset)

    def check_once(self, seconds_left: float) -> None:
        """On the first miss, refuse a token no event can ever sit at (blocking: broker requests, bounded)."""
        if not self.checked:
            self.checked = True
            check_token_exists(self.settings, self.token, min(TOKEN_CHECK_TIMEOUT_S, max(1.0, seconds_left)))

    def behind(self) -> ViewBehind:
        applied = self.next_offset or 0
        count = self.token.offset + 1 - applied
        return ViewBehind(
            f"{self.projection} is behind by {count} event(s) on {self.token.topic} partition {self.token.partition} "
            f"after {self.timeout_s:g}s (it has applied up to offset {applied - 1}, the token needs "
            f"{self.token.offset}); is `orderstream run projections` running?",
            projection=self.projection,
            token=self.token,
            behind=count,
            timeout_s=self.timeout_s,
        )

    def close(self) -> None:
        if self.owns_model and self.model is not None:
            self.model.close()


def wait_until_applied(
    settings: Settings,
    projection: str,
    token: ConsistencyToken,
    timeout_s: float | None = None,
    *,
    model: ReadModel | None = None,
) -> None:
    """Block until `projection` has applied `token`. model: an open ReadModel to use (default: one opened here).

    Raises ViewBehind past timeout_s (default: the wait_timeout_s setting), TokenUnreachable, StoreError."""
    timeout_s = check_timeout(settings.wait_timeout_s if timeout_s is None else timeout_s)
    wait = _Wait(settings, projection, token, timeout_s, model)
    began = time.monotonic()
    deadline = began + timeout_s
    pause = FIRST_POLL_S
    try:
        while not wait.applied():
            now = time.monotonic()
            if now >= deadline or now - began >= CHECK_AFTER_S:
                wait.check_once(deadline - now)
            if now >= deadline:
                raise wait.behind()
            time.sleep(pause)
            pause = min(MAX_POLL_S, pause * 2)
    finally:
        wait.close()


async def await_applied(
    settings: Settings,
    projection: str,
    token: ConsistencyToken,
    timeout_s: float | None = None,
    *,
    model: ReadModel | None = None,
    watch: PositionWatch | None = None,
) -> None:
    """wait_until_applied for an event loop. With `watch` (a server's: every wait on the view shares its looks) each
    look is the watch's next read of the view's positions; without, each look is this wait's own short SQL read in
    a worker thread, backing off as the CLI's. The one broker check runs in a worker thread; no thread is held while
    waiting."""
    timeout_s = check_timeout(settings.wait_timeout_s if timeout_s is None else timeout_s)
    wait = _Wait(settings, projection, token, timeout_s, model)
    loop = asyncio.get_running_loop()
    began = loop.time()
    deadline = began + timeout_s
    pause = FIRST_POLL_S
    try:
        while not await _look(wait, watch):
            now = loop.time()
            if not wait.checked and (now >= deadline or now - began >= CHECK_AFTER_S):
                await asyncio.to_thread(wait.check_once, deadline - now)
            if now >= deadline:
                raise wait.behind()
            if watch is None:  # a watch paces the looks itself
                await asyncio.sleep(pause)
                pause = min(MAX_POLL_S, pause * 2)
    finally:
        wait.close()


async def _look(wait: _Wait, watch: PositionWatch | None) -> bool:
    if watch is None:
        return await asyncio.to_thread(wait.applied)
    positions = await watch.next_read()
    key = (wait.settings.topic(wait.token.topic), wait.token.partition)
    wait.next_offset = None if positions is None else positions.get(key)
    return wait.token.is_applied(wait.next_offset)


Positions = Mapping[tuple[str, int], int]


class PositionWatch:
    """One view's stored positions, read for every read-your-writes wait of one event loop at once: at most one read
    per `interval_s` while anyone waits, none otherwise.

    Each wait polling the view on its own schedule made the choice between latency and load: backing off from 5 to
    50 ms (the CLI's schedule) adds up to 50 ms to a wait, and polling every few ms per wait costs a read per wait
    per tick, so a backlog of waits multiplies it. Shared, a wait sees the view within one interval of its applying
    the token, and the reads cost the same for one wait or a thousand.

    read(): the positions (None while the view has no database), on a coroutine of the owner's choosing (in place for
    a local SQLite view, else in a worker thread). A failed read fails the waits it was for; the next wait reads
    again."""

    def __init__(self, read: Callable[[], Awaitable[Positions | None]], interval_s: float = WATCH_INTERVAL_S) -> None:
        self._read = read
        self._interval_s = interval_s
        self._next: asyncio.Future | None = None  # the outcome of the next read to start: what new waits await
        self._task: asyncio.Task | None = None

    async def next_read(self) -> Positions | None:
        """The positions as read by a read that starts after this call."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        future = self._next
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await asyncio.shield(future)  # a cancelled wait leaves the read to the others

    async def _run(self) -> None:
        while self._next is not None:
            future, self._next = self._next, None  # waits arriving from now on get the read after this one
            try:
                positions = await self._read()
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to the waits, which raise it (a 503, as before)
                future.set_exception(exc)
                future.exception()  # retrieved here too: a wait that was cancelled meanwhile leaves no warning
            else:
                future.set_result(positions)
            await asyncio.sleep(self._interval_s)

    def close(self) -> None:
        """Stop reading; waits still open are cancelled."""
        if self._next is not None:
            self._next.cancel()
            self._next = None
        if self._task is not None:
            self._task.cancel()


def check_token_exists(settings: Settings, token: ConsistencyToken, timeout_s: float) -> None:
    """Raise TokenUnreachable when the token's topic, partition or offset does not exist.

    One metadata and one watermark request, timeout_s each at most: a broker that does not answer proves nothing
    about the token, so then the wait goes on (it reads only the view's database).
    The high watermark is read_uncommitted: an event of a transaction still open counts, the view will apply it.
    """
    import uuid

    from confluent_kafka import Consumer, KafkaError, KafkaException

    from orderstream.kafka.clients import KafkaAuthenticationError, consumer_config
    from orderstream.kafka.offsets import watermarks

    topic = settings.topic(token.topic)
    group = f"orderstream.query.{uuid.uuid4().hex[:8]}"  # never joined: no subscribe, no commit
    consumer = Consumer(consumer_config(settings, group, **{"isolation.level": "read_uncommitted"}))
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is not None and metadata.error is not None:
            if metadata.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                return  # e.g. no leader yet: cannot say
            metadata = None
        if metadata is None:
            raise TokenUnreachable(
                f"topic {topic} does not exist at {settings.effective_bootstrap}, so token {token} cannot be "
                "reached: create the topics with `orderstream topics init` (with the same --topic-prefix)"
            )
        partitions, end = len(metadata.partitions), None
        if token.partition < partitions:
            end = watermarks(consumer, topic, token.partition, timeout_s=timeout_s)[1]
    except (KafkaException, KafkaAuthenticationError):
        return
    finally:
        consumer.close()
    reason = token.impossibility(partitions, end)
    if reason is not None:
        raise TokenUnreachable(
            f"token {token} cannot be reached: {reason}; use a token printed by `place --wait` or "
            "`stock add --wait` against this cluster and --topic-prefix"
        )
