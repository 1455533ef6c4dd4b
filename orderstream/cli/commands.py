"""Sending one command from the CLI (place, cancel, ship, deliver, stock add) and printing its outcome.

Without --wait: the command is sent once the broker has it; print what it names (or, with --json, the result with
the command's partition and offset). With --wait: print the outcome (accepted with version and read-your-writes
token, or rejected with the reason). Exit codes: 0 sent or accepted, 1 not sent or rejected, 3 no reply in time.
`place --wait-for outcome` follows an accepted order to its outcome: 0 CONFIRMED, 1 REJECTED or CANCELLED (with the
reason), 3 no outcome in time.
Kept free of heavy imports (the producer is imported when a command is sent) so `orderstream --help` stays instant.
"""

from __future__ import annotations

from typing import Any

import typer

from orderstream.cli.common import fail, print_json, require_broker, settings_of

EXIT_TIMEOUT = 3


def send_command(
    ctx: typer.Context,
    command: Any,
    wait: bool,
    as_json: bool,
    *,
    commands_topic: str,
    replies_topic: str,
    name: str,
    fields: dict[str, Any],
    extra: dict[str, Any] | None = None,
    accepted_as: str,
    version_label: str = "version",
    rejected_as: str,
    outcome_model: Any = None,
    follow_outcome: bool = False,
) -> None:
    """Send `command` to commands_topic (and with wait, read its reply from replies_topic), print, exit.

    name: printed alone once sent; fields / extra: the JSON result's first / last keys (around accepted, version,
    reason, token, command_id); accepted_as, version_label: "<accepted_as> accepted: <version_label> N, token T";
    rejected_as: "<rejected_as> rejected: <reason>"; outcome_model: the pydantic model of the JSON result (shared
    with the HTTP API; default: producers.outcomes.OrderCommandOutcome).
    follow_outcome (place --wait-for outcome): after an accepted reply, wait for the order's outcome too and report it
    (version and token are then the outcome event's, and "outcome" says CONFIRMED, REJECTED or CANCELLED); an order
    REJECTED or CANCELLED exits 1 with its reason."""
    from orderstream.producers.commands import CommandSender, OutcomeTimeout, ReplyTimeout, SendError
    from orderstream.producers.outcomes import OrderCommandOutcome

    model = outcome_model or OrderCommandOutcome

    def result(accepted, version, reason, token) -> dict[str, Any]:
        outcome = {
            "accepted": accepted,
            "version": version,
            "reason": reason,
            "token": None if token is None else str(token),
            "command_id": command.command_id,
        }
        return model.model_validate(fields | outcome | (extra or {})).model_dump(mode="json", exclude_unset=True)

    settings = settings_of(ctx)
    require_broker(settings)  # seconds, not the sender's 10 s wait, when no broker answers
    final = None
    with CommandSender(settings, commands_topic, replies_topic) as sender:
        try:
            if not wait:
                sent = sender.send(command)
            else:
                outcome = sender.send_and_wait(command)
                if follow_outcome and outcome.reply.accepted:
                    final = sender.await_order_outcome(outcome)
        except SendError as exc:
            fail(str(exc))
        except ReplyTimeout as exc:  # OutcomeTimeout too: then the order was accepted, its outcome did not come
            if as_json:
                known = isinstance(exc, OutcomeTimeout)
                body = result(True, outcome.reply.version, str(exc), outcome.token) if known else None
                body = body or result(None, None, str(exc), None)
                print_json(body | ({"outcome": None} if follow_outcome else {}))
            fail(str(exc), code=EXIT_TIMEOUT)
    if final is not None:
        _report_outcome(result(True, final.version, final.reason or None, final.token), final, as_json, accepted_as)
        return
    if not wait:
        if as_json:
            print_json(result(None, None, None, None) | {"partition": sent.partition, "offset": sent.offset})
        else:
            typer.echo(name)
        return
    reply, token = outcome.reply, outcome.token
    if as_json:
        print_json(result(reply.accepted, reply.version, reply.reason or None, token))
    elif reply.accepted:
        typer.echo(f"{accepted_as} accepted: {version_label} {reply.version}, token {token}")
    if not reply.accepted:
        fail(f"{rejected_as} rejected: {reply.reason}")


def _report_outcome(body: dict[str, Any], final: Any, as_json: bool, name: str) -> None:
    """An accepted order's outcome: CONFIRMED exits 0; REJECTED or CANCELLED exits 1 with the reason."""
    if as_json:
        print_json(body | {"outcome": final.status})
    elif final.status == "CONFIRMED":
        typer.echo(f"{name} CONFIRMED: version {final.version}, token {final.token}")
    if final.status != "CONFIRMED":
        fail(f"{name} {final.status}: {final.reason or 'no reason given'}")
