"""What every command shares: building the settings from the global options, failing with one clear line, JSON out.

Kept free of heavy imports so `orderstream --help` stays instant.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from orderstream.config import Settings


@dataclass
class GlobalOptions:
    """The root callback's options; each command turns them into Settings when it needs them."""

    config_file: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False  # --verbose: also the Kafka client's log lines, and the traceback of an unexpected error
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from orderstream.config import ConfigError, load_settings

            try:
                self._settings = load_settings(self.config_file, **self.overrides)
            except ConfigError as exc:
                fail(str(exc))
        return self._settings

    def bootstrap(self) -> str | None:
        """The brokers a command talked to, to name them in an error; None when no command built the settings."""
        if self._settings is not None:
            return self._settings.effective_bootstrap
        return self.overrides.get("bootstrap_servers")

    def built_settings(self) -> Settings | None:
        """The settings if a command built them (an error report must not build them: that can fail on its own)."""
        return self._settings


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    options = root.obj if isinstance(root.obj, GlobalOptions) else GlobalOptions()
    return options.settings()


# Exit codes, the same for every command: 0 done; 1 a well-formed value refused (out of range, unknown id, a rejected
# command) or a failure (no broker, ...); 2 a usage error: the command line does not parse, or a value is not of its
# parameter's type (not a number, not a time, not a token, not one of the listed choices); 3 no reply in time.
INVALID = 1
USAGE_ERROR = 2


def fail(message: str, code: int = INVALID) -> NoReturn:
    """Print one line on stderr and exit non-zero. Nothing after this runs."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def usage_error(message: str) -> NoReturn:
    """A value that is not of its parameter's type, or options that do not go together: one line, exit 2."""
    fail(message, USAGE_ERROR)


def fail_input(exc: Exception) -> NoReturn:
    """A domain ValidationError: exit 2 when the text is not of the kind asked for (NotParsable), else 1."""
    from orderstream.domain.validation import NotParsable

    fail(str(exc), USAGE_ERROR if isinstance(exc, NotParsable) else INVALID)


BROKER_CHECK_S = 5.0  # a broker that is up answers in milliseconds


def require_broker(settings: Settings) -> None:
    """Fail in seconds, naming the brokers and what to do, when none answers.

    Without it a command that talks to Kafka waits out its clients' own timeouts (10-120 s) before it can say
    anything. Called after the input is checked, so bad input is reported even without a broker."""
    from orderstream.broker.probe import ClusterUnreachable, check_connection
    from orderstream.kafka.clients import common_config

    try:
        check_connection(common_config(settings), timeout_s=BROKER_CHECK_S)
    except ClusterUnreachable as exc:
        fail(str(exc))


def id_column(header: str):
    """A rich table column for identifiers the user copies into the next command: folded onto a second line when the
    terminal is too narrow, never cut short with "…"."""
    from rich.table import Column

    return Column(header, overflow="fold")


def print_json(value: Any) -> None:
    """Machine-readable output: JSON on stdout and nothing else there."""
    sys.stdout.write(json.dumps(value, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


PIPED_WIDTH = 400  # columns of a table written to a pipe or file: as wide as its content, not rich's default 80


def console():
    """stdout for people. Piped (`| grep`, `> file`), tables keep their whole content on one line each: rich would
    otherwise lay them out for 80 columns and cut identifiers short."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=PIPED_WIDTH)


def err_console():
    from rich.console import Console

    return Console(stderr=True)
