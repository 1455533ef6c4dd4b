"""Sending commands from an asyncio server and awaiting their replies, many at a time, over one producer and one
reply reader.

CommandSender (commands.py) is one command at a time: a throwaway reader per wait. A server has many requests in
flight, so here:
- one idempotent producer for every command topic; its delivery reports resolve asyncio futures (a poll thread
  serves them);
- one reader thread per process assigned to every partition of every replies topic, from the end offsets read when
  it starts (before any command is sent, so no reply to our commands can be missed); it matches a reply to a waiting
  command by the ce_causationid header (no decoding for other commands' replies), then decodes it;
- a waiter registers its command id BEFORE the command is sent.
A retried command id is answered by the service with its first reply again, so a retry gets the same answer.
Nothing is committed: the reader has a throwaway group and assigns its partitions itself.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

from orderstream.config import Settings
from orderstream.domain.commands import Command, Reply
from orderstream.kafka.clients import is_fatal
from orderstream.producers.commands import KAFKA_TIMEOUT_S, SOURCE, Outcome, ReplyTimeout, SendError, Sent
from orderstream.telemetry.producer import SenderTelemetry

log = logging.getLogger(__name__)


class AsyncCommandSender:
    """Guarantees: send() resolves once the broker acknowledged the command (acks=all, idempotent) or raises
    SendError; send_and_wait() resolves to the reply to exactly this command id or raises ReplyTimeout.
    start() before use (it reads where the replies topics end), close() after; both block (call them from a thread
    or at start-up)."""

    def __init__(self, settings: Settings, replies_topics: tuple[str, ...], source: str = SOURCE) -> None:
        from orderstream.schemas.wire import codec_for

        self.settings = settings
        self.replies_topics = tuple(settings.topic(t) for t in replies_topics)
        self.source = source
        self.codec = codec_for(settings)
        self._waiting: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._producer: Any = None
        self._reader: Any = None
        self._telemetry = SenderTelemetry(settings, "api")

    def start(self) -> None:
        from confluent_kafka import KafkaException

        try:
            self._start()
        except KafkaException as exc:
            self.close()
            raise SendError(
                f"cannot reach the broker at {self.settings.effective_bootstrap} to send commands: {exc.args[0].str()}"
            ) from None

    def _start(self) -> None:
        from confluent_kafka import Consumer, Producer, TopicPartition

        from orderstream.kafka.clients import consumer_config, live_fetch_wait_ms, producer_config
        from orderstream.kafka.offsets import watermarks

        self._producer = Producer(producer_config(self.settings, **{"linger.ms": 0}))
        group = f"orderstream-api-replies-{uuid.uuid4().hex}"
        wait = {"fetch.wait.max.ms": live_fetch_wait_ms(self.settings)}  # every POST waits on this reader
        self._reader = Consumer(consumer_config(self.settings, group, **wait))
        assignment = []
        for topic in self.replies_topics:
            metadata = self._reader.list_topics(topic, timeout=KAFKA_TIMEOUT_S).topics.get(topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                self.close()
                raise SendError(f"cannot read {topic}: it does not exist (run `orderstream topics init`)")
            for number in metadata.partitions:
                end = watermarks(self._reader, topic, number, KAFKA_TIMEOUT_S)[1]
                assignment.append(TopicPartition(topic, number, end))
        self._reader.assign(assignment)
        for target, name in ((self._read_replies, "reply-reader"), (self._serve_reports, "delivery-reports")):
            thread = threading.Thread(target=target, name=f"orderstream-api-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._producer is not None:
            self._producer.flush(KAFKA_TIMEOUT_S)
            self._producer = None

    async def send(self, command: Command, commands_topic: str) -> Sent:
        """Counted in commands_sent_total; with tracing on, sent in a span whose context the command carries."""
        return await self._telemetry.send_async(
            command, commands_topic, lambda trace_headers: self._send(command, commands_topic, trace_headers)
        )

    async def _send(self, command: Command, commands_topic: str, trace_headers: list[tuple[str, bytes]]) -> Sent:
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future = loop.create_future()

        def report(error, record) -> None:
            loop.call_soon_threadsafe(_settle, delivered, (error, record))

        topic = self.settings.topic(commands_topic)
        try:
            self._producer.produce(
                topic,
                key=command.aggregate_id.encode("utf-8"),
                value=self.codec.encode(command),
                headers=self.codec.headers(command, self.source) + trace_headers,
                on_delivery=report,
            )
        except BufferError:
            raise SendError("too many commands in flight: the producer's queue is full") from None
        try:
            error, record = await asyncio.wait_for(delivered, KAFKA_TIMEOUT_S)
        except TimeoutError:
            raise SendError(
                f"the broker at {self.settings.effective_bootstrap} did not acknowledge command {command.command_id} "
                f"within {KAFKA_TIMEOUT_S:.0f}s"
            ) from None
        if error is not None:
            raise SendError(f"command {command.command_id} was not written to {topic}: {error.str()}")
        return Sent(record.topic(), record.partition(), record.offset())

    async def send_and_wait(self, command: Command, commands_topic: str, timeout_s: float | None = None) -> Outcome:
        timeout_s = self.settings.wait_timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        replied: asyncio.Future = loop.create_future()
        with self._lock:
            self._waiting[command.command_id] = (loop, replied)
        try:
            sent = await self.send(command, commands_topic)
            try:
                reply = await asyncio.wait_for(replied, timeout_s)
            except TimeoutError:
                raise ReplyTimeout(
                    f"no reply to command {command.command_id} within {timeout_s:g}s (is the service running?)"
                ) from None
        finally:
            with self._lock:
                self._waiting.pop(command.command_id, None)
        return Outcome(sent, reply)

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _read_replies(self) -> None:
        from orderstream.kafka.reading import consume_available
        from orderstream.schemas.cloudevents import read_headers

        while not self._stop.is_set():
            for record in consume_available(self._reader, 100, 0.1):
                if record.error():
                    if is_fatal(record.error()):
                        log.error("reading replies: %s", record.error())
                        self._fail_all(SendError(f"reading replies: {record.error()}"))
                    continue
                command_id = read_headers(record.headers()).get("ce_causationid")
                with self._lock:
                    waiter = self._waiting.get(command_id) if command_id else None
                if waiter is None:
                    continue  # another command's reply (or a retry's repeat someone already took)
                try:
                    reply = self.codec.decode(record.value())
                except Exception as exc:  # noqa: BLE001 - a garbage reply fails its waiter, not the reader
                    loop, future = waiter
                    loop.call_soon_threadsafe(
                        _fail, future, SendError(f"the reply to {command_id} is unreadable: {exc}")
                    )
                    continue
                if isinstance(reply, Reply) and reply.command_id == command_id:
                    loop, future = waiter
                    loop.call_soon_threadsafe(_settle, future, reply)

    def _fail_all(self, error: Exception) -> None:
        with self._lock:
            waiters = list(self._waiting.values())
        for loop, future in waiters:
            loop.call_soon_threadsafe(_fail, future, error)


def _settle(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
