"""`orderstream security init|acls`: one SCRAM principal per service and for the CLI, and the Kafka ACLs that let each
service write only its own topics (services/access.py says which), on a cluster with an authorizer.

init runs as an administrator (the settings' SASL user must be a super user, or allowed to alter users and ACLs):
it creates or keeps each principal's password in a credentials file (mode 0600), upserts the SCRAM credentials and
creates the ACLs; it is idempotent. `run SERVICE` with service_credentials set authenticates as the service.
acls prints the same ACLs as kafka-acls.sh commands, for operators who manage an existing cluster by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orderstream.cli.common import fail, print_json, require_broker, settings_of

if TYPE_CHECKING:
    from orderstream.config import Settings

app = typer.Typer(no_args_is_help=True)

CredentialsOption = Annotated[
    Path | None,
    typer.Option(
        "--credentials", help="Where the principals' passwords are kept (default <data_dir>/credentials.toml)."
    ),
]


@app.command("init")
def init(
    ctx: typer.Context,
    credentials: CredentialsOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Create a SCRAM principal per service and for the CLI, and the ACLs: each service writes only its own topics
    and reads only its inputs; the CLI writes only the command topics. Needs SASL settings of an administrator."""
    from confluent_kafka.admin import AdminClient

    from orderstream.kafka.acls import create_acls, upsert_scram_users
    from orderstream.kafka.clients import admin_config
    from orderstream.services.access import accesses

    settings = settings_of(ctx)
    if not settings.sasl_mechanism or not settings.sasl_mechanism.upper().startswith("SCRAM"):
        fail(
            "security init needs SASL/SCRAM settings of an administrator (security_protocol SASL_PLAINTEXT or "
            "SASL_SSL, sasl_mechanism SCRAM-SHA-256 or -512, sasl_username, sasl_password)"
        )
    require_broker(settings)
    path = credentials or settings.data_dir / "credentials.toml"
    table = accesses(settings)
    passwords = _passwords(path, table)
    admin = AdminClient(admin_config(settings))
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):  # either works for every principal
        upsert_scram_users(admin, {table[name].principal: pw for name, pw in passwords.items()}, mechanism)
    created = create_acls(admin, list(table.values()))
    _write(path, {name: (table[name].principal, pw) for name, pw in passwords.items()})
    summary = {
        "credentials": str(path),
        "principals": {name: access.principal for name, access in table.items()},
        "acls": created,
    }
    if json_output:
        print_json(summary)
        return
    for name, access in table.items():
        typer.echo(f"{name}: principal {access.principal}")
    typer.echo(
        f"{created} ACLs in place; passwords in {path}. Run services with service_credentials = {str(path)!r} "
        "(ORDERSTREAM_SERVICE_CREDENTIALS), and the CLI as its principal (its entry [cli])"
    )


@app.command("acls")
def acls(
    ctx: typer.Context,
    command_config: Annotated[
        str, typer.Option(help="The admin client properties file kafka-acls.sh is given.")
    ] = "admin.properties",
) -> None:
    """Print the ACLs `security init` creates as kafka-acls.sh commands (for an existing cluster)."""
    from orderstream.kafka.acls import kafka_acls_commands
    from orderstream.services.access import accesses

    settings = settings_of(ctx)
    for line in kafka_acls_commands(list(accesses(settings).values()), settings.effective_bootstrap, command_config):
        typer.echo(line)


def _passwords(path: Path, table) -> dict[str, str]:
    """Each principal's password: the one already in the credentials file, else a new random one."""
    import secrets
    import tomllib

    known = {}
    if path.is_file():
        try:
            known = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            fail(f"credentials file {path} is not valid TOML ({exc}): fix or remove it")
    return {
        name: (known.get(name) or {}).get("password") or secrets.token_urlsafe(24) for name in table
    }  # fmt: skip


def _write(path: Path, entries: dict[str, tuple[str, str]]) -> None:
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        f"[{name}]\nusername = {json.dumps(user)}\npassword = {json.dumps(pw)}\n\n"
        for name, (user, pw) in entries.items()
    )
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    partial.replace(path)


def as_service(settings: Settings, name: str) -> Settings:
    """The settings `run NAME` uses: with service_credentials set, the SASL user and password of NAME's principal."""
    import tomllib

    from orderstream.config import with_overrides

    path = settings.service_credentials
    if path is None:
        return settings
    try:
        entry = tomllib.loads(Path(path).read_text()).get(name)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        fail(f"cannot read service_credentials {path}: {exc}")
    if not isinstance(entry, dict) or not entry.get("username") or not entry.get("password"):
        fail(f"service_credentials {path} has no [{name}] username and password: run `orderstream security init`")
    return with_overrides(settings, sasl_username=entry["username"], sasl_password=entry["password"])
