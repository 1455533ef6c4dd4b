"""What the routers use, built once per process in the app's lifespan and handed in as dependencies (never module
globals): the settings, one ReadModel per view (opened on first use, so the API starts before the views exist)
and the command sender."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from orderstream.api.live import OrderEventsTail, TailUnavailable
from orderstream.config import Settings
from orderstream.ops.read_your_writes import PositionWatch
from orderstream.producers.async_sender import AsyncCommandSender
from orderstream.producers.commands import SendError
from orderstream.views.queries import ReadModel
from orderstream.views.store import NotInitialized

T = TypeVar("T")


@dataclass
class ReadModels:
    """One open ReadModel per view, shared by every request (a SQLAlchemy engine is a pool, safe across threads).

    A view without a database yet raises NotInitialized (the API answers 503) and is tried again next time."""

    settings: Settings
    _open: dict[str, ReadModel] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watches: dict[str, PositionWatch] = field(default_factory=dict)

    def get(self, projection: str) -> ReadModel:
        model = self._open.get(projection)  # the usual case: open already (a dict read is atomic)
        if model is not None:
            return model
        with self._lock:
            model = self._open.get(projection)
            if model is None:
                model = ReadModel(self.settings.database_url_for(projection), projection)
                self._open[projection] = model
            return model

    async def read(self, projection: str, query: Callable[..., T], *args: Any) -> T:
        """query(model, *args) on the view's open ReadModel (opened on first use), in a worker thread: the event
        loop goes on meanwhile. For queries whose cost grows with the data (pages, reports, CSV)."""
        return await asyncio.to_thread(lambda: query(self.get(projection), *args))

    async def point_read(self, projection: str, query: Callable[..., T], *args: Any) -> T:
        """query(model, *args) for a query bounded by one key (an order, a view's position). On a SQLite view it runs
        here, on the event loop: it takes a few hundred microseconds of CPU, and handing it to a worker thread cost
        more than that (GET /orders/{id} under wrk: 2.0-2.8 ms of the server's CPU per request through the thread
        pool, 1.0 ms in place; the loop and the workers passing the GIL back and forth at every SQLite call). On
        PostgreSQL it goes to a worker thread: a network round trip must not hold the loop."""
        model = self.get(projection)
        if model.local:
            return query(model, *args)
        return await asyncio.to_thread(query, model, *args)

    def watch(self, projection: str) -> PositionWatch:
        """The view's positions for every read-your-writes wait of this process (one event loop: no lock needed)."""
        watch = self._watches.get(projection)
        if watch is None:

            async def read() -> dict[tuple[str, int], int] | None:
                try:
                    return await self.point_read(projection, ReadModel.next_offsets)
                except NotInitialized:
                    return None  # no database yet: nothing applied

            watch = self._watches[projection] = PositionWatch(read)
        return watch

    def close(self) -> None:
        for watch in self._watches.values():
            watch.close()
        self._watches.clear()
        with self._lock:
            for model in self._open.values():
                model.close()
            self._open.clear()


BROKER_CHECK_S = 3.0  # a broker that is up answers in milliseconds


def require_broker(settings: Settings, error: type[Exception]) -> None:
    """Raise `error` in seconds, naming the brokers, when none answers (instead of the clients' own 10 s waits)."""
    from orderstream.broker.probe import ClusterUnreachable, check_connection
    from orderstream.kafka.clients import common_config

    try:
        check_connection(common_config(settings), timeout_s=BROKER_CHECK_S)
    except ClusterUnreachable as exc:
        raise error(str(exc)) from None


@dataclass
class Commands:
    """The command sender, started on the first command (so the API starts, and answers queries, without a
    broker); a start that fails raises SendError (503) and is tried again by the next command."""

    settings: Settings
    replies_topics: tuple[str, ...]
    _sender: AsyncCommandSender | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def sender(self) -> AsyncCommandSender:
        async with self._lock:
            if self._sender is None:
                await asyncio.to_thread(require_broker, self.settings, SendError)
                sender = AsyncCommandSender(self.settings, self.replies_topics, source="orderstream/api")
                await asyncio.to_thread(sender.start)
                self._sender = sender
            return self._sender

    async def close(self) -> None:
        if self._sender is not None:
            await asyncio.to_thread(self._sender.close)
            self._sender = None


@dataclass
class LiveEvents:
    """The one orders.events tail of this process, started by the first event stream (and again after it failed)."""

    settings: Settings
    _tail: OrderEventsTail | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def tail(self) -> OrderEventsTail:
        async with self._lock:
            if self._tail is not None and self._tail.failure is not None:
                await asyncio.to_thread(self._tail.close)
                self._tail = None
            if self._tail is None:
                await asyncio.to_thread(require_broker, self.settings, TailUnavailable)
                tail = OrderEventsTail(self.settings)
                await asyncio.to_thread(tail.start)
                self._tail = tail
            return self._tail

    async def close(self) -> None:
        if self._tail is not None:
            await asyncio.to_thread(self._tail.close)
            self._tail = None


@dataclass
class ApiContext:
    settings: Settings
    views: ReadModels
    commands: Commands
    live: LiveEvents


async def context_of(request: Request) -> ApiContext:
    """The context the lifespan built (Starlette hands lifespan state to every request). A coroutine on purpose:
    FastAPI runs a plain-function dependency in its thread pool, a thread hop per request for a dict read."""
    return request.state.context


Context = Annotated[ApiContext, Depends(context_of)]
