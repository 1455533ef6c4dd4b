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
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            from orderstream.config import ConfigError, load_settings

            try:
                self._settings = load_settings(self.config_file, **self.overrides)
            except ConfigError as exc:
                fail(str(exc))
        return self._settings


def settings_of(ctx: typer.Context) -> Settings:
    root = ctx.find_root()
    options = root.obj if isinstance(root.obj, GlobalOptions) else GlobalOptions()
    return options.settings()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line on stderr and exit non-zero. Nothing after this runs."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def print_json(value: Any) -> None:
    """Machine-readable output: JSON on stdout and nothing else there."""
    sys.stdout.write(json.dumps(value, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def console():
    from rich.console import Console

    return Console()


def err_console():
    from rich.console import Console

    return Console(stderr=True)
