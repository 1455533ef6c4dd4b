"""librdkafka's log lines, one per broker per interval while a broker is away.

Every client retries a broker that is down many times a second and logs each attempt ("Connect to ... failed:
Connection refused"), so a service of ten clients wrote about 175 lines a second through a broker restart. The filter
below lets the first line about a broker through, counts the next ones for `interval_s`, and lets the next line after
the interval through with the count of those it held back. Lines that do not name a broker pass unchanged.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

LOGGER_NAME = "librdkafka"
INTERVAL_S = 10.0

# "[thrd:127.0.0.1:9092/1]: 127.0.0.1:9092/1: Connect to ..." -> the broker "127.0.0.1:9092" (its bootstrap and its
# id connection are one broker; also "[thrd:sasl_ssl://host:9093/bootstrap]"). librdkafka's main and app threads
# ("thrd:main", "thrd:app") are no broker.
_BROKER = re.compile(r"\[thrd:(?:[a-z_]+://)?(?P<broker>[^\]/]+:\d+)/[^\]]+\]")
_ALL_DOWN = re.compile(r"\d+/\d+ brokers are down")
# After a broker restart every client reports each partition's leader change ("new leader-1 not found in cache"),
# one line per partition per refresh: counted per client facility like the connection errors.
_BY_FACILITY = ("METADATAUPDATE",)


def broker_of(message: str) -> str | None:
    """The broker a librdkafka line is about, or None. "N/N brokers are down" is about all of them, and a partition
    leader change about the cluster's metadata."""
    if _ALL_DOWN.search(message):
        return "all brokers"
    if message.startswith(_BY_FACILITY):
        return "the cluster's partition leaders"
    match = _BROKER.search(message)
    return match.group("broker") if match else None


class PerBrokerThrottle(logging.Filter):
    """A logging filter: at most one warning-or-worse line per broker per interval, with the count of those held back.

    Thread-safe (librdkafka's lines arrive from every client's poll). Lines below WARNING are not throttled: they only
    show with --verbose, where every line is wanted."""

    def __init__(self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval_s, self.clock = interval_s, clock
        self._lock = threading.Lock()
        self._window: dict[str, tuple[float, int]] = {}  # broker -> (when its last line went out, lines held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        broker = broker_of(record.getMessage())
        if broker is None:
            return True
        now = self.clock()
        with self._lock:
            since, held = self._window.get(broker, (None, 0))
            if since is not None and now - since < self.interval_s:
                self._window[broker] = (since, held + 1)
                return False
            self._window[broker] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} (and {held} more about {broker} in the last {now - since:.0f} s)"
            record.args = ()
        return True


def client_logger() -> logging.Logger:
    """The logger every client is given: "librdkafka", with the per-broker throttle installed once per process."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, PerBrokerThrottle) for f in logger.filters):
        logger.addFilter(PerBrokerThrottle())
    return logger
