"""`orderstream run all|SERVICE...`: run services and projectors in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated

import typer

from orderstream.cli.common import fail, require_broker, settings_of, usage_error


def run(
    ctx: typer.Context,
    names: Annotated[
        list[str],
        typer.Argument(
            help="`all`, or service names: order, payment, inventory, shipping, projections.", show_default=False
        ),
    ],
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve Prometheus /metrics on this port (setting metrics_port); under `all`, one target for every "
            "child process.",
            show_default=False,
        ),
    ] = None,
    no_api: Annotated[bool, typer.Option("--no-api", help="With `all`: do not start the HTTP API (`serve`).")] = False,
) -> None:
    """Run services in the foreground. One name runs in this process; several (or `all`) run one child process each.

    Ctrl-C (SIGINT) or SIGTERM stops them all cleanly: open transactions finish or abort, consumers close.
    A second `run SERVICE` elsewhere joins the same consumer group and shares the partitions.
    """
    from orderstream.config import ConfigError, with_overrides
    from orderstream.services.composition import SERVICES, UnknownService, build_service
    from orderstream.telemetry.exposition import MetricsServerError, ProcessTree, serve

    try:
        settings = with_overrides(settings_of(ctx), metrics_port=metrics_port)
    except ConfigError as exc:
        fail(f"--metrics-port: {exc.reason or exc}")
    if "all" in names and names != ["all"]:
        usage_error("`all` runs every service: give it alone, or name the services")
    selected = list(SERVICES) if names == ["all"] else names
    unknown = [n for n in selected if n not in SERVICES]
    if unknown:
        usage_error(f"unknown service {unknown[0]!r}; choose from: all, {', '.join(SERVICES)}")
    lock = _lock_for_all(settings) if names == ["all"] else None
    require_broker(settings)  # seconds, not a 30 s transaction set-up that times out, when no broker answers
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("librdkafka").setLevel(logging.WARNING)  # a long-running service logs the client's warnings
    if len(selected) == 1:
        from orderstream.cli.supervision import stop_handler

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop_handler(stop, selected[0], settings.stop_timeout_s))
        from orderstream.cli.security import as_service

        settings = as_service(settings, selected[0])  # its own principal, when service_credentials is set
        try:
            service = build_service(selected[0], settings)
            metrics = serve(settings)  # None unless metrics_port is set (and no supervisor serves for us)
        except (UnknownService, MetricsServerError) as exc:
            fail(str(exc))
        try:
            service.run(stop)
        finally:
            if metrics is not None:
                metrics.shutdown()
        return
    try:
        tree = ProcessTree.start(settings)  # one /metrics for every child (prometheus-client multiprocess mode)
    except MetricsServerError as exc:
        fail(str(exc))
    try:
        _supervise(
            ctx, selected, api_port=None if names != ["all"] or no_api else settings.api_port, tree=tree, lock=lock
        )
    finally:
        if tree is not None:
            tree.close()
        if lock is not None:
            lock.release()


def _lock_for_all(settings):
    """One `run all` per data directory: a second one would run a second copy of every service."""
    from orderstream.cli.supervision import AlreadyRunning, lock_data_dir

    try:
        return lock_data_dir(settings.data_dir)
    except AlreadyRunning as exc:
        fail(str(exc))


def _supervise(ctx: typer.Context, names: list[str], api_port: int | None = None, tree=None, lock=None) -> None:
    """One child process per service (and the HTTP API on api_port unless None); a signal to the supervisor is passed
    to every child; a child that dies is reported. With a metrics ProcessTree, every child (the API too) writes its
    metrics where the supervisor's /metrics reads them.

    Each child dies with the supervisor, even one killed by SIGKILL (a parent-death signal), and holds the run lock
    (when there is one) until it exits."""
    from orderstream.cli.supervision import die_with_parent

    args = root_args(ctx)
    env = tree.child_env() if tree is not None else None
    keep = (lock.fileno(),) if lock is not None else ()
    children: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()

    def forward(signum, _frame):
        stopping.set()
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):  # before the children exist: a signal then stops them too
        signal.signal(signum, forward)
    commands = {name: [sys.executable, "-m", "orderstream.cli.main", *args, "run", name] for name in names}
    if api_port is not None:
        commands["api"] = [sys.executable, "-m", "orderstream.cli.main", *args, "serve", "--port", str(api_port)]
    for name, command in commands.items():
        if stopping.is_set():
            break
        children[name] = subprocess.Popen(
            command,
            env=env,
            preexec_fn=die_with_parent(os.getpid()),  # only prctl and getppid run in the child
            pass_fds=keep,
        )
    failed, api_reported = [], False
    while any(c.poll() is None for c in children.values()):
        for name, child in children.items():
            if name == "api":  # the services keep running without their HTTP door (e.g. its port was taken)
                if child.poll() not in (None, 0) and not api_reported and not stopping.is_set():
                    api_reported = True
                    typer.echo(f"error: the HTTP API exited with code {child.returncode}; the services go on", err=True)
                continue
            if child.poll() not in (None, 0) and name not in failed and not stopping.is_set():
                failed.append(name)
                typer.echo(f"error: service {name} exited with code {child.returncode}; stopping the others", err=True)
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    if tree is not None:
        for child in children.values():
            tree.child_exited(child.pid)
    stopped_by_signal = (0, -signal.SIGTERM, -signal.SIGINT)  # the signal itself ends a child still starting up
    for name, child in children.items():
        if name in failed or not stopping.is_set() or (name == "api" and api_reported):
            continue
        if child.returncode not in stopped_by_signal:  # e.g. past stop_timeout_s: it printed where it was stuck
            failed.append(name)
            typer.echo(f"error: {_named(name)} did not stop cleanly (exit code {child.returncode})", err=True)
    if failed:
        raise typer.Exit(code=1)


def _named(child: str) -> str:
    return "the HTTP API" if child == "api" else f"service {child}"


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
