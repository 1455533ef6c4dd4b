"""`orderstream run all|SERVICE...`: run services and projectors in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Annotated

import typer

from orderstream.cli.common import fail, require_broker, settings_of, usage_error

API = "the HTTP API"  # the supervisor's name for its `serve` child


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
    views: Annotated[
        list[str] | None,
        typer.Option(
            "--view",
            metavar="NAME",
            help="With `projections` alone: run only this view's projector (repeat for several), all of them in this "
            "process. Without it, each view's projector runs in a child process of its own.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run services in the foreground. One service runs in this process; several (or `all`) run one child process
    each, and `projections` one child process per view (or --view's views, in this process).

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
    if views:
        _check_views(selected, views)
    plan = plan_processes(selected, tuple(views or ()))
    lock = _lock_for_all(settings) if names == ["all"] else None
    require_broker(settings)  # seconds, not a 30 s transaction set-up that times out, when no broker answers
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("librdkafka").setLevel(logging.WARNING)  # a long-running service logs the client's warnings
    if len(plan) == 1:
        from orderstream.cli.supervision import stop_handler

        only = plan[0]
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop_handler(stop, only.label, settings.stop_timeout_s))
        from orderstream.cli.security import as_service

        settings = as_service(settings, only.name)  # its own principal, when service_credentials is set
        try:
            service = build_service(only.name, settings, only.views)
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
        _supervise(ctx, plan, api_port=None if names != ["all"] or no_api else settings.api_port, tree=tree, lock=lock)
    finally:
        if tree is not None:
            tree.close()
        if lock is not None:
            lock.release()


@dataclass(frozen=True)
class Planned:
    """One process of a `run`: a service of the composition root, or the projectors of some views."""

    name: str
    views: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How errors name it: "service order", "projection order-view"."""
        if not self.views:
            return f"service {self.name}"
        return ("projection " if len(self.views) == 1 else "projections ") + ", ".join(self.views)

    @property
    def args(self) -> list[str]:
        """Its `run` arguments."""
        return [self.name, *(arg for view in self.views for arg in ("--view", view))]


def plan_processes(names: list[str], views: tuple[str, ...] = ()) -> list[Planned]:
    """The processes `run NAMES [--view V...]` runs: one per service, and for `projections` one per view, or one for
    --view's views. Why a process per view: each projector then has the GIL of its process to itself; in one process
    a projector's writer thread waits for it behind the other views' threads at every SQLite call. Place -> visible
    at 500 orders/s (bench/latency.py, five alternating pairs of runs on one broker, 2026-12-07): p99 55-62 ms with a
    process per view, 58-76 ms with the five views in one; it costs memory (idle RSS 73 MB per view's process, 80 MB
    for all five in one)."""
    from orderstream.views.registry import ALL_SPECS

    plan = []
    for name in names:
        if name != "projections":
            plan.append(Planned(name))
        elif views:
            plan.append(Planned(name, views))
        else:
            plan += [Planned(name, (view,)) for view in ALL_SPECS]
    return plan


def _check_views(selected: list[str], views: list[str]) -> None:
    from orderstream.views.registry import ALL_SPECS

    if selected != ["projections"]:
        usage_error("--view names views of `projections`: give it with `run projections` alone")
    unknown = [view for view in views if view not in ALL_SPECS]
    if unknown:
        usage_error(f"unknown view {unknown[0]!r}; choose from: {', '.join(ALL_SPECS)}")


def _lock_for_all(settings):
    """One `run all` per data directory: a second one would run a second copy of every service."""
    from orderstream.cli.supervision import AlreadyRunning, lock_data_dir

    try:
        return lock_data_dir(settings.data_dir)
    except AlreadyRunning as exc:
        fail(str(exc))


def _supervise(ctx: typer.Context, plan: list[Planned], api_port: int | None = None, tree=None, lock=None) -> None:
    """One child process per planned process (and the HTTP API on api_port unless None); a signal to the supervisor
    is passed to every child; a child that dies is reported. With a metrics ProcessTree, every child (the API too)
    writes its metrics where the supervisor's /metrics reads them.

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
    commands = {each.label: [sys.executable, "-m", "orderstream.cli.main", *args, "run", *each.args] for each in plan}
    if api_port is not None:
        commands[API] = [sys.executable, "-m", "orderstream.cli.main", *args, "serve", "--port", str(api_port)]
    for name, command in commands.items():
        if stopping.is_set():
            break
        children[name] = subprocess.Popen(
            command,
            env=env,
            preexec_fn=die_with_parent(os.getpid()),  # only prctl and getppid run in the child
            pass_fds=keep,
        )
        if stopping.is_set():  # the signal came while this child started (Popen waits for its exec): forward() ran
            children[name].send_signal(signal.SIGTERM)  # before it was in `children`, so it is told here
    failed, api_reported = [], False
    while any(c.poll() is None for c in children.values()):
        for name, child in children.items():
            if name == API:  # the services keep running without their HTTP door (e.g. its port was taken)
                if child.poll() not in (None, 0) and not api_reported and not stopping.is_set():
                    api_reported = True
                    typer.echo(f"error: the HTTP API exited with code {child.returncode}; the services go on", err=True)
                continue
            if child.poll() not in (None, 0) and name not in failed and not stopping.is_set():
                failed.append(name)
                typer.echo(f"error: {name} exited with code {child.returncode}; stopping the others", err=True)
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    if tree is not None:
        for child in children.values():
            tree.child_exited(child.pid)
    stopped_by_signal = (0, -signal.SIGTERM, -signal.SIGINT)  # the signal itself ends a child still starting up
    for name, child in children.items():
        if name in failed or not stopping.is_set() or (name == API and api_reported):
            continue
        if child.returncode not in stopped_by_signal:  # e.g. past stop_timeout_s: it printed where it was stuck
            failed.append(name)
            typer.echo(f"error: {name} did not stop cleanly (exit code {child.returncode})", err=True)
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
