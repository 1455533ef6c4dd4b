"""Registry mode against a real Apicurio Registry (the session's `schema_registry`): registering and checking the
catalog, a refused incompatible change, both encodings on one topic, the stock Confluent deserializer, and the
registry going away and coming back (a restart keeps every schema and id)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.config import with_overrides
from orderstream.schemas.catalog import default_catalog
from orderstream.schemas.codec import Codec
from orderstream.schemas.confluent import CONTENT_TYPE, ConfluentCodec, package_definitions, registry_client
from orderstream.schemas.sources import package_root
from orderstream.services.projections import build_projections
from orderstream.topology import ORDERS_COMMANDS, ORDERS_EVENTS, ORDERS_REPLIES
from tests.support.event_log import EventLog, dump_all, wait_applied
from tests.support.histories import public_rows, random_history, reference
from tests.support.orders import place_order, read_topic

runner = CliRunner()


def _cli(settings, *args):
    root = ["-b", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix, "--data-dir",
            str(settings.data_dir)]  # fmt: skip
    env = {"ORDERSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url or ""}
    return runner.invoke(app, [*root, *args], env=env)


def test_register_is_idempotent_and_check_agrees_with_the_catalog(registry_settings):
    first = _cli(registry_settings, "schemas", "register", "--json")
    assert first.exit_code == 0, first.stderr
    ids = json.loads(first.stdout)
    again = json.loads(_cli(registry_settings, "schemas", "register", "--json").stdout)
    assert again == ids and len(ids) == len(default_catalog())
    assert {row["subject"] for row in ids} == {
        f"orderstream.{e.group}.{e.type_name}" for e in default_catalog().entries()
    }

    checked = _cli(registry_settings, "schemas", "check", "--registry", "--json")
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout) == {"ok": True, "problems": [], "schemas": len(default_catalog())}

    status = _cli(registry_settings, "registry", "status", "--json")
    assert status.exit_code == 0 and json.loads(status.stdout)["version"].startswith("3.")


def test_an_incompatible_change_is_refused_with_the_registry_reason(registry_settings, tmp_path: Path):
    schemas = tmp_path / "avro"
    shutil.copytree(str(package_root()), schemas)
    v1 = json.loads((schemas / "orders" / "OrderConfirmed.v1.avsc").read_text())
    v2 = dict(v1, fields=[*v1["fields"], {"name": "approved_by", "type": "string"}])  # no default: old readers break
    (schemas / "orders" / "OrderConfirmed.v2.avsc").write_text(json.dumps(v2))

    result = _cli(registry_settings, "schemas", "register", "--dir", str(schemas))

    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: orderstream.orders.OrderConfirmed v2 refused by the registry: "), line
    assert "compatib" in line.lower() and "409" in line, line
    check = _cli(registry_settings, "schemas", "check", "--registry", "--dir", str(schemas))
    assert check.exit_code == 1 and "orderstream.orders.OrderConfirmed v2: not in the registry" in check.stdout


def test_a_topic_with_both_encodings_projects_like_a_single_encoding_run(registry_settings):
    from orderstream.kafka.topics import ensure_topics
    from orderstream.schemas.wire import codec_for

    views = registry_settings.data_dir.resolve() / "views"
    url = f"sqlite:///{views}/{{projection}}.db"
    settings = with_overrides(registry_settings, projection_batch_size=50, database_url=url)
    ensure_topics(settings)
    confluent, single = codec_for(settings), Codec()
    assert isinstance(confluent, ConfluentCodec)
    rng = random.Random(19)
    histories = [random_history(rng, f"mix-{n}") for n in range(12)]
    log = EventLog(settings)
    for history in histories:  # each order's events alternate between the encodings, so every fold sees both
        for index, event in enumerate(history):
            log.codec = confluent if (index + len(history)) % 2 else single
            log.write([event])
    running = _Running(build_projections(settings))
    try:
        wait_applied(url, log, timeout_s=60, check=running.check)
        assert public_rows(dump_all(url)) == reference(histories)
    finally:
        running.stop()
        log.close()
    values = [record.value()[:1] for record, _ in read_topic(settings, ORDERS_EVENTS)]
    assert {b"\x00", b"\xc3"} == set(values)


def test_the_stock_confluent_deserializer_reads_what_registry_mode_writes(registry_settings):
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    from orderstream.kafka.topics import ensure_topics
    from orderstream.producers.commands import CommandSender

    ensure_topics(registry_settings)
    command = place_order("deser-1")
    with CommandSender(registry_settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as sender:
        sender.send(command)
    ((record, decoded),) = read_topic(registry_settings, ORDERS_COMMANDS)
    headers = dict(record.headers())
    assert headers["content-type"] == CONTENT_TYPE.encode() and b"/schemas/ids/" in headers["ce_dataschema"]
    deserializer = AvroDeserializer(registry_client(registry_settings.schema_registry_url))
    plain = deserializer(record.value(), SerializationContext(record.topic(), MessageField.VALUE))
    assert decoded == command and plain["order_id"] == "deser-1" and plain["customer_id"] == command.customer_id


def test_registry_down_services_wait_and_recover_and_a_restart_keeps_every_schema_id(
    registry_settings, schema_registry, tmp_path: Path
):
    from orderstream.kafka.topics import ensure_topics
    from orderstream.producers.commands import CommandSender

    settings = registry_settings
    ensure_topics(settings)
    client = registry_client(settings.schema_registry_url)
    before = {s: client.get_versions(s) for s in client.get_subjects()}
    ids = {e.location: client.lookup_schema(f"{e.namespace}.{e.type_name}", _schema(e)).schema_id
           for e in default_catalog().entries()}  # fmt: skip
    with CommandSender(settings, ORDERS_COMMANDS, ORDERS_REPLIES, source="orderstream/test") as sender:
        schema_registry.stop()
        try:
            root = ["-b", settings.effective_bootstrap, "--topic-prefix", settings.topic_prefix, "--data-dir",
                    str(settings.data_dir)]  # fmt: skip
            env = os.environ | {
                "ORDERSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
                "PYTHONUNBUFFERED": "1",
            }
            place_args = [*root, "place", "--customer", "c", "--item", "SKU-1:1:1.00"]
            place = subprocess.run([sys.executable, "-m", "orderstream.cli.main", *place_args], env=env,
                                   capture_output=True, text=True, timeout=120)  # fmt: skip
            assert place.returncode == 1 and len(place.stderr.strip().splitlines()) == 1, place.stderr
            assert "schema registry at" in place.stderr and "does not answer" in place.stderr

            log_path = tmp_path / "order.log"
            with log_path.open("w") as log:
                service = subprocess.Popen([sys.executable, "-m", "orderstream.cli.main", *root, "run", "order"],
                                           env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
            sender.send(place_order("down-1"))  # this process resolved its schema ids before: it still writes
            _until(lambda: "unreachable" in log_path.read_text(), 60, "the service to say the registry is down")
            time.sleep(3)
            assert read_topic(settings, ORDERS_EVENTS) == []  # nothing produced while it waits
            assert service.poll() is None
        finally:
            schema_registry.start(echo=lambda _: None)
        try:
            events = read_topic(settings, ORDERS_EVENTS, until=lambda found: len(found) >= 1, timeout_s=90)
            assert events[0][1].order_id == "down-1" and events[0][0].value()[:1] == b"\x00"
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(60)
    lines = [ln for ln in log_path.read_text().splitlines() if "schema registry" in ln]
    down = [ln for ln in lines if "unreachable" in ln]
    assert down and len(down) == len(set(down)) and any("answers again" in ln for ln in lines)  # once per stage

    restarted = registry_client(settings.schema_registry_url)
    assert {s: restarted.get_versions(s) for s in restarted.get_subjects()} == before
    assert {e.location: restarted.lookup_schema(f"{e.namespace}.{e.type_name}", _schema(e)).schema_id
            for e in default_catalog().entries()} == ids  # fmt: skip


def _schema(entry):
    from confluent_kafka.schema_registry import Schema

    return Schema(package_definitions()[entry.location], "AVRO")


def _until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


class _Running:
    """A service in a background thread; stop() re-raises what it failed with."""

    def __init__(self, service) -> None:
        import threading

        self.stop_event, self.error = threading.Event(), None
        self.thread = threading.Thread(target=self._run, args=(service,), daemon=True)
        self.thread.start()

    def _run(self, service) -> None:
        try:
            service.run(self.stop_event)
        except BaseException as exc:  # noqa: BLE001 - handed to the test in stop()
            self.error = exc

    def check(self) -> None:
        if not self.thread.is_alive():
            self.stop()
            raise AssertionError("the service stopped on its own")

    def stop(self, timeout: float = 30) -> None:
        self.stop_event.set()
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error


def test_replay_topic_to_format_re_encodes_a_copy_and_back_byte_for_byte(registry_settings):
    from orderstream.kafka.topics import ensure_topics

    settings = registry_settings
    ensure_topics(settings)
    log = EventLog(settings)
    log.codec = Codec()
    events = [e for n in range(3) for e in random_history(random.Random(n), f"copy-{n}")]
    log.write(events)
    log.close()

    to_confluent = _cli(
        settings, "replay", "topic", ORDERS_EVENTS, "--to", "copy.confluent", "--to-format", "confluent"
    )
    assert to_confluent.exit_code == 0, to_confluent.stderr
    back = _cli(settings, "replay", "topic", "copy.confluent", "--to", "copy.single", "--to-format", "single-object")
    assert back.exit_code == 0, back.stderr

    original = read_topic(settings, ORDERS_EVENTS)
    confluent = read_topic(settings, "copy.confluent")
    single = read_topic(settings, "copy.single")
    assert {r.value()[:1] for r, _ in confluent} == {b"\x00"}
    assert all(dict(r.headers())["content-type"] == CONTENT_TYPE.encode() for r, _ in confluent)
    assert sorted(e.event_id for _, e in confluent) == sorted(e.event_id for e in events)
    by_id = {e.event_id: r.value() for r, e in original}
    assert {e.event_id: r.value() for r, e in single} == by_id  # the round trip gives the same bytes back
    assert {e.event_id: e for _, e in confluent} == {e.event_id: e for _, e in original}


def test_to_format_without_a_registry_is_one_line_and_nothing_is_copied(settings):
    result = _cli(settings, "replay", "topic", ORDERS_EVENTS, "--to", "copy.x", "--to-format", "confluent")
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "error: --to-format needs a schema registry: set ORDERSTREAM_SCHEMA_REGISTRY_URL"
    ]


def test_registry_commands_fail_in_one_line_when_there_is_nothing_to_talk_to(settings):
    import socket

    from orderstream.broker.daemon import free_port

    dead = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    quiet = with_overrides(settings, schema_registry_url=dead)
    status = _cli(quiet, "registry", "status")
    assert status.exit_code == 1 and status.stderr.strip().splitlines() == [
        f"error: no Apicurio registry answers at {dead.removesuffix('/apis/ccompat/v7')}: start one with "
        "`orderstream registry start`"
    ]
    stopped = _cli(settings, "registry", "stop")
    assert stopped.exit_code == 0 and "no registry started by orderstream" in stopped.stdout
    unset = _cli(settings, "schemas", "register")
    assert (
        unset.exit_code == 1 and len(unset.stderr.strip().splitlines()) == 1 and "SCHEMA_REGISTRY_URL" in unset.stderr
    )
    down = _cli(quiet, "schemas", "register")
    assert down.exit_code == 1 and len(down.stderr.strip().splitlines()) == 1, down.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        start = _cli(settings, "registry", "start", "--port", str(port))
    assert start.exit_code == 1 and start.stderr.strip().splitlines()[-1].startswith(f"error: port {port} on 127.0.0.1")
