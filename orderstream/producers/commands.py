"""Sending a command, and optionally waiting for its reply: what `place`, `cancel`, `stock add`, `ship` and `deliver`
share (and the demo, which restocks, ships, delivers and cancels through it).

Waiting without missing the reply: before sending, note the end offset of every partition of the replies topic; send
(idempotent producer, acks=all); the delivery report names the command's partition; the service replies on the same
partition number; read that replies partition (read_committed) from the noted end offset until the reply with our
command id arrives. Nothing is committed: the reader has a throwaway group and assigns its partition itself.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from orderstream.config import Settings
from orderstream.domain.commands import Command, Reply
from orderstream.kafka.clients import is_fatal
from orderstream.kafka.consistency import ConsistencyToken
from orderstream.telemetry.producer import SenderTelemetry

SOURCE = "orderstream/cli"
KAFKA_TIMEOUT_S = 10.0


class SendError(RuntimeError):
    """The command could not be sent, or the broker did not acknowledge it: then it may or may not have been written
    (resending the same command id is safe: the service handles a command id once)."""


class ReplyTimeout(TimeoutError):
    """The command was written but no reply arrived in time (is the service running?)."""


class OutcomeTimeout(ReplyTimeout):
    """The order was accepted but reached no outcome in time (are the payment and inventory services running?)."""


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """Where an accepted order ended up: CONFIRMED, REJECTED (with the reason) or CANCELLED (with the reason), at
    which version, and the read-your-writes token of that event."""

    status: str
    reason: str
    version: int
    token: ConsistencyToken


@dataclass(frozen=True, slots=True)
class Sent:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: Sent
    reply: Reply

    @property
    def token(self) -> ConsistencyToken | None:
        """Where the last event the command wrote sits (None when it wrote nothing)."""
        r = self.reply
        if r.events_topic is None or r.events_partition is None or r.events_offset is None:
            return None
        return ConsistencyToken(r.events_topic, r.events_partition, r.events_offset)


class CommandSender:
    """Writes commands to one command topic, keyed by their aggregate id; reads replies from its replies topic.

    Guarantees: send() returns only once the broker acknowledged the record (acks=all, idempotent), and waits for
    that KAFKA_TIMEOUT_S at most, closing included; send_and_wait() returns the reply to exactly this command id, or
    raises ReplyTimeout. Use as a context manager.
    """

    def __init__(self, settings: Settings, commands_topic: str, replies_topic: str, source: str = SOURCE) -> None:
        from confluent_kafka import Producer

        from orderstream.kafka.clients import producer_config
        from orderstream.schemas.wire import codec_for

        self.settings = settings
        self.commands_topic = settings.topic(commands_topic)
        self.replies_topic = settings.topic(replies_topic)
        self.source = source
        self.codec = codec_for(settings)
        self._producer = Producer(producer_config(settings, **{"linger.ms": 0}))
        self._reader: Any = None
        self._telemetry = SenderTelemetry(settings)
        self._logical_topic = commands_topic  # spans and metrics name topics without the prefix

    def __enter__(self) -> CommandSender:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the reply reader, and drop a record send() gave up on instead of waiting for it a second time.

        send() flushes, so only a record it already reported (SendError: may or may not be written) can be left."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if len(self._producer):
            self._producer.purge()
            self._producer.flush(0)  # serves the purged records' reports; waits for nothing

    def send(self, command: Command, timeout_s: float = KAFKA_TIMEOUT_S) -> Sent:
        """Write the command (with its trace context when tracing is on); counted in commands_sent_total."""
        return self._telemetry.send(
            command, self._logical_topic, lambda trace_headers: self._send(command, timeout_s, trace_headers)
        )

    def _send(self, command: Command, timeout_s: float, trace_headers: list[tuple[str, bytes]]) -> Sent:
        results: list[Any] = []
        self._producer.produce(
            self.commands_topic,
            key=command.aggregate_id.encode("utf-8"),
            value=self.codec.encode(command),
            headers=self.codec.headers(command, self.source) + trace_headers,
            on_delivery=lambda error, record: results.append((error, record)),
        )
        self._producer.flush(timeout_s)
        if not results:
            raise SendError(
                f"the broker at {self.settings.effective_bootstrap} did not acknowledge command {command.command_id} "
                f"within {timeout_s:.0f}s{self._topic_problem()}"
            )
        error, record = results[0]
        if error is not None:
            raise SendError(f"command {command.command_id} was not written to {self.commands_topic}: {error.str()}")
        return Sent(record.topic(), record.partition(), record.offset())

    def _topic_problem(self) -> str:
        """Why a record may sit unacknowledged although the broker answers: its topic is missing (the producer
        waits for it to appear). Asked only after a timeout, so a healthy send pays nothing for it."""
        from confluent_kafka import KafkaException

        from orderstream.kafka.topics import topic_exists

        try:
            exists = topic_exists(self._producer, self.commands_topic, timeout_s=2)
        except KafkaException:
            return " (the broker does not answer: is it running? `orderstream status` checks)"
        if not exists:
            return f": topic {self.commands_topic} does not exist (run `orderstream topics init`)"
        return ""

    def send_and_wait(self, command: Command, timeout_s: float | None = None) -> Outcome:
        timeout_s = self.settings.wait_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        starts = self._reply_ends()
        sent = self.send(command)
        reply = self._await_reply(command.command_id, sent.partition, starts[sent.partition], deadline)
        if reply is None:
            raise ReplyTimeout(
                f"no reply to command {command.command_id} within {timeout_s:g}s (is the service running?)"
            )
        return Outcome(sent, reply)

    def await_order_outcome(self, accepted: Outcome, timeout_s: float | None = None) -> OrderOutcome:
        """After an accepted PlaceOrder: read the order's partition of its events topic from the reply's token on,
        until the order's outcome event (OrderConfirmed, OrderRejected or OrderCancelled), or raise OutcomeTimeout.

        A record that does not decode is passed over: this reader only watches; the services dead-letter it."""
        from confluent_kafka import TopicPartition

        from orderstream.domain.events import OrderCancelled, OrderConfirmed, OrderRejected
        from orderstream.schemas.errors import DecodeError

        statuses = {OrderConfirmed: "CONFIRMED", OrderRejected: "REJECTED", OrderCancelled: "CANCELLED"}
        token, order_id = accepted.token, accepted.reply.aggregate_id
        timeout_s = self.settings.wait_timeout_s if timeout_s is None else timeout_s
        if token is None:
            raise SendError(f"the reply to command {accepted.reply.command_id} names no event to follow")
        deadline = time.monotonic() + timeout_s
        topic, key = self.settings.topic(token.topic), order_id.encode("utf-8")
        reader = self._reader_consumer()
        reader.assign([TopicPartition(topic, token.partition, token.offset + 1)])
        try:
            while (left := deadline - time.monotonic()) > 0:
                for record in reader.consume(100, min(left, 0.5)):
                    if record.error() is not None or record.key() != key:
                        continue
                    try:
                        event = self.codec.decode(record.value())
                    except DecodeError:  # garbage on the topic: the services dead-letter it, a watcher passes
                        continue
                    status = statuses.get(type(event))
                    if status is not None:
                        at = ConsistencyToken(token.topic, record.partition(), record.offset())
                        return OrderOutcome(status, getattr(event, "reason", ""), event.version, at)
        finally:
            reader.unassign()
        raise OutcomeTimeout(
            f"order {order_id} was accepted but reached no outcome within {timeout_s:g}s "
            "(are the payment and inventory services running? `orderstream status` shows)"
        )

    def _reader_consumer(self) -> Any:
        if self._reader is None:
            from confluent_kafka import Consumer

            from orderstream.kafka.clients import consumer_config, live_fetch_wait_ms

            group = f"orderstream-reply-reader-{uuid.uuid4().hex}"
            wait = {"fetch.wait.max.ms": live_fetch_wait_ms(self.settings)}  # `--wait` waits on this reader
            self._reader = Consumer(consumer_config(self.settings, group, **wait))
        return self._reader

    def _reply_ends(self) -> dict[int, int]:
        """The (last stable) end offset of every replies partition, taken before sending."""
        from confluent_kafka import KafkaException

        from orderstream.kafka.offsets import watermarks

        reader = self._reader_consumer()
        try:
            metadata = reader.list_topics(self.replies_topic, timeout=KAFKA_TIMEOUT_S).topics.get(self.replies_topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                problem = metadata.error.str() if metadata is not None and metadata.error else "it does not exist"
                raise SendError(f"cannot read {self.replies_topic}: {problem} (run `orderstream topics init`)")
            return {
                number: watermarks(reader, self.replies_topic, number, KAFKA_TIMEOUT_S)[1]
                for number in metadata.partitions
            }
        except KafkaException as exc:  # nothing was sent yet: say so, and where the broker should have been
            raise SendError(
                f"nothing sent: cannot read {self.replies_topic} from the broker at "
                f"{self.settings.effective_bootstrap} ({exc.args[0].str()}); is it running? `orderstream status` checks"
            ) from None

    def _await_reply(self, command_id: str, partition: int, start: int, deadline: float) -> Reply | None:
        from confluent_kafka import TopicPartition

        reader = self._reader_consumer()
        reader.assign([TopicPartition(self.replies_topic, partition, start)])
        try:
            return self._scan(reader, command_id, deadline)
        finally:
            reader.unassign()

    def _scan(self, reader: Any, command_id: str, deadline: float) -> Reply | None:
        from orderstream.schemas.cloudevents import read_headers

        while (left := deadline - time.monotonic()) > 0:
            for record in reader.consume(1, min(left, 0.5)):
                if record.error():
                    if is_fatal(record.error()):
                        raise SendError(f"reading {self.replies_topic}: {record.error()}")
                    continue
                if read_headers(record.headers()).get("ce_causationid") != command_id:
                    continue  # another command's reply (the header says so without decoding)
                reply = self.codec.decode(record.value())
                if isinstance(reply, Reply) and reply.command_id == command_id:
                    return reply
        return None
