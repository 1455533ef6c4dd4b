"""API tokens: with the setting api_token, every request needs `Authorization: Bearer <token>` (401 otherwise).

A pure ASGI middleware in front of everything (routes, /docs, /openapi.json, unknown paths alike), so no route can
forget it. The comparison is hmac.compare_digest (constant time); the token is never logged nor echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable

from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderstream.api.problems import problem_response


class BearerTokenMiddleware:
    def __init__(self, app: ASGIApp, token: SecretStr, public: Callable[[Scope], bool] = lambda _: False) -> None:
        self.app = app
        self._public = public  # requests that pass without the token (the console's data-free page frames)
        self._expected = f"Bearer {token.get_secret_value()}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self._expected) and not self._public(scope):
            detail = "a valid `Authorization: Bearer <token>` header is required" if given else "no API token given"
            response = problem_response(401, "Unauthorized", detail, {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BodyLimitMiddleware:
    """Refuse a request body over max_bytes with a 413 Problem: at once when its Content-Length says so, else (a
    chunked body) as soon as the bytes received pass the limit, before a route sees any of it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"the request body is larger than {self.max_bytes} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await problem_response(413, "Content Too Large", detail)(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)
