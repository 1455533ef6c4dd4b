"""What the pipeline and dead-letter pages show, read through ops/status and ops/dlq (what `orderstream status` and
`orderstream dlq` call). A broker that does not answer becomes a `problem` line on the page, not an error page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from orderstream.api.console.letters import decode_value, headers_text, letter_id, provenance
from orderstream.config import Settings

STATE_LABELS = {"idle": "idle", "catching-up": "catching up", "stuck": "stuck", "stopped": "stopped"}


def _broker_problem(settings: Settings, exc: BaseException) -> str:
    return f"the broker at {settings.effective_bootstrap} did not answer: {exc}"


def load_pipeline(settings: Settings, sample_s: float) -> dict[str, Any]:
    """Every consumer and partition (lag, last event age, state), topic health and the broker's nodes.

    sample_s 0 (the first response) cannot tell catching-up from stuck; such rows say `behind` until the page's
    first live refresh samples them."""
    from confluent_kafka import KafkaException

    from orderstream.ops.status import StatusUnavailable, collect_status
    from orderstream.services.composition import watched_consumers

    values: dict[str, Any] = {"consumers": [], "topics": [], "broker": None, "problem": None, "sampled": sample_s > 0}
    try:
        report = collect_status(settings, watched_consumers(settings), sample_s=sample_s)
    except StatusUnavailable as exc:  # no topics yet, or the broker could not say (e.g. its coordinator is loading)
        values["problem"] = str(exc)
        return values
    except KafkaException as exc:
        values["problem"] = _broker_problem(settings, exc.args[0] if exc.args else exc)
        return values
    rows = []
    for row in report.consumers:
        state = row.state
        if sample_s <= 0 and state == "stuck":
            state = "behind"  # not sampled: it may as well be catching up
        rows.append(
            {
                "name": row.name,
                "kind": row.kind,
                "topic": row.topic.removeprefix(settings.topic_prefix),
                "partition": row.partition,
                "position": row.position,
                "end": row.end,
                "lag": row.lag,
                "age": row.last_event_age_s,
                "state": state,
            }
        )
    values["consumers"] = rows
    values["views"] = sorted({r["name"] for r in rows if r["kind"] == "projection"})
    values["topics"] = [{**t, "topic": t["topic"].removeprefix(settings.topic_prefix)} for t in report.topics]
    values["unhealthy_topics"] = [t for t in values["topics"] if t["health"] != "ok"]
    values["broker"] = report.broker
    values["totals"] = {
        "lag": sum(r["lag"] for r in rows),
        "stuck": sum(1 for r in rows if r["state"] == "stuck"),
        "stopped": len({r["name"] for r in rows if r["state"] == "stopped"}),
    }
    return values


def _read(settings: Settings):
    from orderstream.ops.dlq import read_letters

    return read_letters(settings)


def load_dead_letters(settings: Settings, topic: str, selected: str) -> dict[str, Any]:
    """Letters grouped by DLQ topic (waiting and retried counts); the chosen topic's letters; one letter in full."""
    from confluent_kafka import KafkaException

    values: dict[str, Any] = {"topics": [], "letters": [], "letter": None, "topic": topic, "problem": None}
    try:
        every = _read(settings)
    except (KafkaException, RuntimeError) as exc:
        values["problem"] = _broker_problem(settings, exc)
        return values
    by_topic: dict[str, list] = {}
    for letter in every:
        by_topic.setdefault(letter.dlq_topic.removeprefix(settings.topic_prefix), []).append(letter)
    values["topics"] = [
        {
            "topic": name,
            "waiting": sum(1 for x in items if not x.retried),
            "retried": sum(1 for x in items if x.retried),
        }
        for name, items in sorted(by_topic.items())
    ]
    if not topic and selected:
        topic = selected.rsplit(":", 2)[0].removeprefix(settings.topic_prefix)
    if not topic and values["topics"]:
        topic = values["topics"][0]["topic"]
    values["topic"] = topic
    values["letters"] = [
        {"id": letter_id(x), **x.summary()} for x in sorted(by_topic.get(topic, []), key=lambda x: x.dlq_offset)
    ]
    if selected:
        match = next((x for x in every if letter_id(x) == selected), None)
        if match is None:
            values["problem"] = f"no dead letter {selected!r} (it may be on another cluster or prefix)"
        else:
            values["letter"] = {
                "id": selected,
                "retried": match.retried,
                "provenance": provenance(match),
                "headers": headers_text(match),
                "value": decode_value(match.value),
                "size": len(match.value or b""),
            }
    return values


def retry_letter(settings: Settings, wanted: str) -> dict[str, Any]:
    """Send one waiting letter back to the group that wrote it (ops/dlq.retry, as `orderstream dlq retry ID`); the
    values of the page that says how it went."""
    from confluent_kafka import KafkaException

    from orderstream.ops.dlq import RetryRefused, retry

    topic = wanted.rsplit(":", 2)[0].removeprefix(settings.topic_prefix)
    back = {"back_url": "/console/dead-letters?" + urlencode({"topic": topic, "letter": wanted})}
    try:
        letters = [x for x in _read(settings) if letter_id(x) == wanted]
        if not letters:
            return {**back, "outcome": "failed", "message": f"no dead letter {wanted!r}"}
        if letters[0].retried:
            return {**back, "outcome": "failed", "message": f"{wanted} was retried already and is not sent twice"}
        retry(settings, letters)
    except RetryRefused as exc:
        return {**back, "outcome": "failed", "message": f"cannot retry: {exc}"}
    except (KafkaException, RuntimeError) as exc:
        return {**back, "outcome": "failed", "message": f"the retry failed: {exc}"}
    return {
        **back,
        "outcome": "retried",
        "message": f"sent {wanted} back to {letters[0].group} to process again (if it fails again, the letter "
        "waits here again, with the failure counted)",
    }
