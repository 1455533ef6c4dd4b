"""The one place that picks the wire format from the settings: every writer and reader gets its codec here.

Without schema_registry_url: the Avro single-object Codec (the default; no registry involved). With it: a
ConfluentCodec that writes the Confluent wire format and reads both. One per process and registry, so a schema id is
asked of the registry once per process, whatever number of stages, threads and consumers use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from orderstream.config import Settings
from orderstream.schemas.errors import RegistryUnavailable

_LOCK = threading.Lock()
_CODECS: dict[tuple, Any] = {}


def codec_for(settings: Settings) -> Any:
    """The codec the settings ask for (Codec or ConfluentCodec). Raises RegistryUnavailable when the registry does
    not answer, RegistryError when it lacks a schema (and auto-registration is off)."""
    from orderstream.schemas.codec import Codec

    if not settings.uses_schema_registry:
        return Codec()
    key = _key(settings)
    with _LOCK:
        codec = _CODECS.get(key)
        if codec is None:
            codec = _CODECS[key] = _registry_codec(settings)
        return codec


def registry_ids_for(settings: Settings) -> Any:
    """The SchemaIds of the process's registry codec (for re-encoding a copy between the two formats)."""
    return codec_for(settings).ids


def wait_for_codec(
    settings: Settings, stop: Callable[[], bool], say: Callable[[str], None], retry_s: float = 2.0
) -> Any | None:
    """codec_for(settings), waiting while the registry does not answer: says so in one line (once per outage) and
    retries every retry_s until it answers or stop() is true (then None)."""
    waiting = False
    while not stop():
        try:
            codec = codec_for(settings)
        except RegistryUnavailable as exc:
            if not waiting:
                say(f"schema registry at {settings.schema_registry_url} unreachable ({exc}); waiting for it")
                waiting = True
            time.sleep(retry_s)
            continue
        if waiting:
            say(f"schema registry at {settings.schema_registry_url} answers again")
        return codec
    return None


def _key(settings: Settings) -> tuple:
    secret = settings.schema_registry_password or settings.schema_registry_token
    return (
        settings.schema_registry_url,
        settings.schema_registry_username,
        secret.get_secret_value() if secret else None,
        settings.schema_registry_auto_register,
    )


def _registry_codec(settings: Settings) -> Any:
    from orderstream.schemas.catalog import default_catalog
    from orderstream.schemas.codec import Codec
    from orderstream.schemas.confluent import ConfluentCodec, SchemaIds, package_definitions, registry_client

    client = registry_client(
        settings.schema_registry_url,  # type: ignore[arg-type]
        username=settings.schema_registry_username,
        password=settings.schema_registry_password,
        token=settings.schema_registry_token,
        timeout_s=settings.schema_registry_timeout_s,
    )
    ids = SchemaIds(client, default_catalog(), package_definitions(), settings.schema_registry_auto_register)
    try:
        ids.resolve_all()
    except RegistryUnavailable as exc:
        raise RegistryUnavailable(f"schema registry at {settings.schema_registry_url} does not answer: {exc}") from None
    return ConfluentCodec(Codec(default_catalog()), ids, settings.schema_registry_url)  # type: ignore[arg-type]


def reframer_for(settings: Settings, to_format: str) -> Any:
    """(value, headers) -> (value, headers) in to_format ("confluent" or "single-object"), for a re-encoded copy."""
    from orderstream.schemas.confluent import Reframer

    codec = codec_for(settings)
    return Reframer(to_format, codec.ids, codec.catalog, settings.schema_registry_url)  # type: ignore[arg-type]
