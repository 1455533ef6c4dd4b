"""Running the API under uvicorn: the app factory uvicorn's worker processes import, and the rule for binding.

`orderstream serve` passes its settings to workers the way every orderstream process gets them: ORDERSTREAM_*
variables and the TOML file (so api_token never travels on a command line and is never printed)."""

from __future__ import annotations

from fastapi import FastAPI

from orderstream.api.app import create_app
from orderstream.api.security import is_loopback
from orderstream.config import Settings, load_settings


class UnsafeBind(ValueError):
    """A non-loopback address without api_token: anyone on the network could place and cancel orders."""


def check_bind(host: str, settings: Settings) -> None:
    if not is_loopback(host) and settings.api_token is None:
        raise UnsafeBind(
            f"refusing to listen on {host} without an API token: set api_token (ORDERSTREAM_API_TOKEN or the TOML "
            "file), or bind 127.0.0.1"
        )


def app_from_environment() -> FastAPI:
    """uvicorn's factory (`orderstream.api.serving:app_from_environment`): the settings from env and TOML."""
    return create_app(load_settings())
