"""A view rebuild's progress as metrics: a ReplayProgress that reports to the gauges and passes everything on."""

from __future__ import annotations

from typing import Any

from orderstream.telemetry import metrics


class RebuildProgress:
    """Wraps the replay's progress sink: orderstream_view_rebuild_progress_ratio{view, phase} (offsets read over the
    phase's total) and orderstream_view_rebuild_events_applied{view}, then calls the wrapped sink."""

    def __init__(self, view: str, inner: Any) -> None:
        self.view = view
        self.inner = inner
        self._applied = metrics.view_rebuild_applied.labels(view)
        self._applied.set(0)
        self._events = 0
        self._ratio: Any = None
        self._total = 0
        self._done = 0

    def phase(self, name: str, total: int) -> None:
        self._ratio = metrics.view_rebuild_progress.labels(self.view, name)
        self._total, self._done = total, 0
        self._ratio.set(0.0 if total else 1.0)
        self.inner.phase(name, total)

    def advance(self, offsets: int, events: int) -> None:
        self._done += offsets
        self._events += events
        if self._ratio is not None and self._total:
            self._ratio.set(min(1.0, self._done / self._total))
        if events:
            self._applied.set(self._events)
        self.inner.advance(offsets, events)
