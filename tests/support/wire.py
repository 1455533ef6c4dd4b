"""The one codec the tests encode and decode with: the production catalog, mapper and upcasters."""

from __future__ import annotations

from orderstream.schemas.codec import Codec

CODEC = Codec()
