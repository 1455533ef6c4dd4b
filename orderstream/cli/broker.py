"""`orderstream broker start|stop|status`: the local Apache Kafka broker (KRaft), or a Docker one."""

from __future__ import annotations

from typing import Annotated

import typer

from orderstream.cli.common import fail, print_json, settings_of

app = typer.Typer(no_args_is_help=True)


@app.command()
def start(
    ctx: typer.Context,
    docker: Annotated[bool, typer.Option("--docker", help="Run Kafka in a testcontainers container instead.")] = False,
    port: Annotated[int | None, typer.Option(help="Broker port (default 9092).", show_default=False)] = None,
    heap: Annotated[str | None, typer.Option(help="Java max heap, e.g. 512m.", show_default=False)] = None,
) -> None:
    """Fetch Apache Kafka with Maven (once), format KRaft storage, and start the broker in the background.

    Returns once the broker answers a metadata request. When ORDERSTREAM_BOOTSTRAP_SERVERS names an existing cluster,
    nothing is started.
    """
    from orderstream.broker.errors import BrokerError

    settings = settings_of(ctx)
    overrides = {k: v for k, v in {"broker_port": port, "broker_heap": heap}.items() if v is not None}
    settings = settings.model_copy(update=overrides) if overrides else settings
    if not settings.uses_local_broker:
        typer.echo(f"using the configured cluster at {settings.bootstrap_servers}; nothing to start")
        return
    try:
        if docker:
            from orderstream.broker.docker import start_docker_kafka

            bootstrap = start_docker_kafka()
            typer.echo(f"Kafka container answering at {bootstrap}; export ORDERSTREAM_BOOTSTRAP_SERVERS={bootstrap}")
            return
        from orderstream.broker.local import local_broker

        broker = local_broker(settings)
        if broker.start(echo=lambda line: typer.echo(line, err=True)):
            typer.echo(f"broker started at {broker.spec.bootstrap} (pid {broker.pid()}, log {broker.log_file})")
        else:
            typer.echo(f"broker already running at {broker.spec.bootstrap} (pid {broker.pid()})")
    except BrokerError as exc:
        fail(str(exc))


@app.command()
def stop(ctx: typer.Context) -> None:
    """Stop the broker that `broker start` started (by its pid file), cleanly."""
    from orderstream.broker.local import local_broker

    broker = local_broker(settings_of(ctx))
    if broker.stop():
        typer.echo("broker stopped")
    else:
        typer.echo("no broker started by orderstream is running here")


@app.command()
def status(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Whether a broker answers at the configured bootstrap servers: Kafka version, nodes and topics."""
    from confluent_kafka import KafkaException

    from orderstream.broker.distribution import KafkaDistribution
    from orderstream.broker.errors import BrokerError
    from orderstream.broker.java import find_java
    from orderstream.broker.local import local_broker
    from orderstream.broker.probe import (
        ClusterUnreachable,
        check_connection,
        describe_cluster,
        kafka_release,
        reported_features,
    )
    from orderstream.kafka.clients import admin_config, common_config

    settings = settings_of(ctx)
    try:
        check_connection(common_config(settings), timeout_s=5)
        info = describe_cluster(admin_config(settings), timeout_s=10)
    except ClusterUnreachable as exc:
        fail(str(exc))
    except KafkaException as exc:
        fail(f"the cluster at {settings.effective_bootstrap} did not describe itself: {exc.args[0].str()}")
    distribution = KafkaDistribution(settings.kafka_version, settings.cache_dir)
    if distribution.is_complete:
        try:
            info.features = reported_features(settings.effective_bootstrap, find_java(settings.java_home), distribution)
        except (BrokerError, OSError):
            info.features = {}
    info.kafka_version = kafka_release(info.features)
    pid = local_broker(settings).pid() if settings.uses_local_broker else None
    if json_output:
        print_json({**info.__dict__, "local_pid": pid})
        return
    typer.echo(f"broker answering at {info.bootstrap} (cluster {info.cluster_id})")
    typer.echo(
        f"Apache Kafka version: {info.kafka_version or 'unknown'}"
        + (f" (metadata.version {info.features['metadata.version']})" if info.features else "")
    )
    typer.echo(
        "nodes: " + ", ".join(f"{n} at {addr}" for n, addr in info.nodes.items()) + f"; controller {info.controller_id}"
    )
    if pid:
        typer.echo(f"started by orderstream: pid {pid}")
    typer.echo(f"topics ({len(info.topics)}): " + (", ".join(info.topics) if info.topics else "none"))
