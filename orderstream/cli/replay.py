"""`orderstream replay projection NAME` and `orderstream replay topic SRC --to DST`.

replay projection: rebuild a projection next to the live one and swap it in atomically (runtime/replay.py);
queries keep answering from the old copy until the swap. Ctrl-C or a kill leaves the live projection untouched.
replay topic: copy events into another topic exactly once, with keys, headers and timestamps
(producers/topic_copy.py). Both draw a progress bar on stderr; --json prints only a summary on stdout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from orderstream.cli.common import err_console, fail, print_json, require_broker, settings_of, usage_error

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")

JsonOption = Annotated[bool, typer.Option("--json", help="Print only a JSON summary on stdout.")]


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        usage_error(f"{option} {text!r} is not an ISO 8601 time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Bar:
    """A rich progress bar: offsets covered against the targets, events applied or copied, events/s, time left."""

    def __init__(self, progress, label: str, unit: str) -> None:
        self.progress, self.label, self.unit = progress, label, unit
        self.task = None
        self.events = 0

    def phase(self, name: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=True)
            self.progress.stop_task(self.task)
        self.task = self.progress.add_task(f"{self.label} {name}", total=total or None, events=0, rate="")

    def start(self, total: int) -> None:
        self.phase("copy", total)

    def advance(self, offsets: int, events: int) -> None:
        self.events += events
        speed = next(t for t in self.progress.tasks if t.id == self.task).speed
        self.progress.update(self.task, advance=offsets, events=self.events, rate=f"{speed:,.0f} ev/s" if speed else "")


def _progress(json_output: bool, done: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[events]:,} " + done), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
        console=err_console(), transient=json_output, disable=json_output,
    )  # fmt: skip


@app.command("projection")
def projection(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The view to rebuild, e.g. order-view (an unknown name lists them all).")],
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="Rebuild the whole projection from the start of its topics.")
    ] = False,
    from_time: Annotated[
        str | None,
        typer.Option(
            "--from-time", help="Rebuild what the events appended at or after this ISO time affect (see docs)."
        ),
    ] = None,
    chase_timeout: Annotated[
        float,
        typer.Option("--chase-timeout", help="Seconds to catch up with the live projector before the swap.", min=1),
    ] = 60.0,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            help="Worker processes for the rebuild, each folding its share of the partitions (one process uses about "
            "one core; more processes than cores or partitions do not help).",
            min=1,
            max=64,
        ),
    ] = 1,
    json_output: JsonOption = False,
) -> None:
    """Rebuild a projection into a new generation next to the live one, then swap it in atomically."""
    from orderstream.runtime.replay import ReplayError, ReplayInterrupted
    from orderstream.runtime.replay_workers import projection_replay
    from orderstream.views.registry import spec_of
    from orderstream.views.store import StoreError

    if from_beginning == (from_time is not None):
        usage_error("choose one of --from-beginning or --from-time TIME")
    moment = _time(from_time, "--from-time")
    try:
        spec = spec_of(name)
    except KeyError as exc:
        usage_error(str(exc.args[0]))
    settings = settings_of(ctx)
    require_broker(settings)  # seconds, not the consumer's own timeouts, when no broker answers
    from orderstream.telemetry.exposition import MetricsServerError, serve

    try:
        serve(settings)  # with metrics_port set: /metrics shows the rebuild's progress while it runs
    except MetricsServerError as exc:
        fail(str(exc))
    with _progress(json_output, "applied") as progress:
        bar = _Bar(progress, name, "events")
        replay = projection_replay(
            settings, spec, from_time=moment, progress=bar, chase_timeout_s=chase_timeout, processes=processes
        )
        try:
            result = replay.run()
        except KeyboardInterrupt:
            fail(f"{name}: replay interrupted; the live projection is untouched (the next replay starts cleanly)", 130)
        except ReplayInterrupted as exc:
            fail(str(exc), 130)
        except (ReplayError, StoreError) as exc:
            fail(str(exc))
    summary = {
        "projection": result.projection, "generation": result.generation, "replaced": result.replaced,
        "schema_version": result.schema_version, "events_applied": result.events_applied,
        "events_skipped": result.events_skipped, "rebuilt_aggregates": result.rebuilt_aggregates,
        "records_rejected": result.records_rejected,
        "processes": processes, "seconds": round(result.seconds, 3),
    }  # fmt: skip
    if json_output:
        print_json(summary)
        return
    scope = "all" if result.rebuilt_aggregates is None else f"{result.rebuilt_aggregates}"
    typer.echo(
        f"{name}: generation {result.generation} is live (replaced {result.replaced}); {result.events_applied} events "
        f"applied, {result.events_skipped} skipped as copied, {scope} aggregates rebuilt, in {result.seconds:.2f}s"
        + (
            f"; {result.records_rejected} record(s) skipped that cannot be projected (the live projector "
            "dead-letters them: `orderstream dlq list`)"
            if result.records_rejected
            else ""
        )
    )


@app.command("topic")
def topic(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The topic to copy from (e.g. orders.events).")],
    destination: Annotated[str, typer.Option("--to", help="The topic to copy into (created like SRC if missing).")],
    from_time: Annotated[
        str | None, typer.Option("--from-time", help="Only records with a timestamp at or after this ISO time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only records with a timestamp before this ISO time.")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only this event type (e.g. OrderPlaced, or a whole ce_type).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Allow one of the pipeline's own topics as DST (a restore): its services will consume the copies.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Copy events into another topic exactly once: same keys, headers and timestamps; same partition numbers if DST
    has SRC's partition count, else re-partitioned by key (per-key order kept)."""
    from orderstream.producers.topic_copy import CopyError, CopyFilter, CopyInterrupted, TopicCopy, check_request

    start, end = _time(from_time, "--from-time"), _time(until, "--until")
    if start is not None and end is not None and end <= start:
        fail("--until must be after --from-time")
    copy_filter = CopyFilter.of(start, end, event_type)
    try:
        check_request(destination, copy_filter, force)
    except CopyError as exc:
        fail(str(exc))
    settings = settings_of(ctx)
    require_broker(settings)  # seconds, not the clients' own timeouts, when no broker answers
    notices = err_console()
    with _progress(json_output, "copied") as progress:
        bar = _Bar(progress, f"{source} -> {destination}", "records")
        try:
            copy = TopicCopy(
                settings, source, destination, copy_filter, progress=bar,
                on_notice=lambda text: None if json_output else notices.print(f"note: {text}", highlight=False),
                allow_pipeline_destination=force,
            )  # fmt: skip
            result = copy.run()
        except KeyboardInterrupt:
            fail("copy interrupted; what was committed stays, a re-run resumes from there", 130)
        except CopyInterrupted as exc:
            fail(str(exc), 130)
        except CopyError as exc:
            fail(str(exc))  # a Kafka error goes to the CLI's root, which names the broker and what to do
        except Exception:  # the root reports it in one line: the bar goes away first, so that line is all there is
            progress.live.transient = True
            progress.console.quiet = not progress.console.is_terminal  # elsewhere rich would still end with a newline
            raise
    summary = {
        "source": result.source, "destination": result.destination, "created": result.created,
        "same_partitioning": result.same_partitioning, "copied": result.copied, "examined": result.examined,
        "resumed": bool(result.resumed), "notices": result.notices, "seconds": round(result.seconds, 3),
    }  # fmt: skip
    if json_output:
        print_json(summary)
        return
    typer.echo(f"copied {result.copied} of {result.examined} records from {result.source} to {result.destination} "
               f"in {result.seconds:.2f}s")  # fmt: skip
