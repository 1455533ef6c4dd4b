"""`orderstream run all|SERVICE...`: run services and projectors in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated

import typer

from orderstream.cli.common import fail, require_broker, settings_of


def run(
    ctx: typer.Context,
    names: Annotated[
        list[str],
        typer.Argument(
            help="`all`, or service names: order, payment, inventory, shipping, projections.", show_default=False
        ),
    ],
) -> None:
    """Run services in the foreground. One name runs in this process; several (or `all`) run one child process each.

    Ctrl-C (SIGINT) or SIGTERM stops them all cleanly: open transactions finish or abort, consumers close.
    A second `run SERVICE` elsewhere joins the same consumer group and shares the partitions.
    """
    from orderstream.services.composition import SERVICES, UnknownService, build_service

    settings = settings_of(ctx)
    if "all" in names and names != ["all"]:
        fail("`all` runs every service: give it alone, or name the services")
    selected = list(SERVICES) if names == ["all"] else names
    unknown = [n for n in selected if n not in SERVICES]
    if unknown:
        fail(f"unknown service {unknown[0]!r}; choose from: all, {', '.join(SERVICES)}")
    require_broker(settings)  # seconds, not a 30 s transaction set-up that times out, when no broker answers
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("librdkafka").setLevel(logging.WARNING)  # a long-running service logs the client's warnings
    if len(selected) == 1:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            service = build_service(selected[0], settings)
        except UnknownService as exc:
            fail(str(exc))
        service.run(stop)
        return
    _supervise(ctx, selected)


def _supervise(ctx: typer.Context, names: list[str]) -> None:
    """One child process per service; a signal to the supervisor is passed to every child; a child that dies is
    reported."""
    args = root_args(ctx)
    children = {
        name: subprocess.Popen([sys.executable, "-m", "orderstream.cli.main", *args, "run", name]) for name in names
    }
    stopping = threading.Event()

    def forward(signum, _frame):
        stopping.set()
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    failed = []
    while any(c.poll() is None for c in children.values()):
        for name, child in children.items():
            if child.poll() not in (None, 0) and name not in failed and not stopping.is_set():
                failed.append(name)
                typer.echo(f"error: service {name} exited with code {child.returncode}; stopping the others", err=True)
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    if failed:
        raise typer.Exit(code=1)


def root_args(ctx: typer.Context) -> list[str]:
    """The root options this command was given, to pass on to child processes."""
    options = ctx.find_root().obj
    args = []
    if options.config_file:
        args += ["--config", str(options.config_file)]
    for key, value in options.overrides.items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    if options.verbose:  # the children log the Kafka client's lines and report an error's traceback too
        args.append("--verbose")
    return args
