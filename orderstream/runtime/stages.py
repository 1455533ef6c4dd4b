"""Running several stages of one service (anything with .name and .run(stop)) in threads of one process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


class StageFailed(RuntimeError):
    """One stage of a service stopped with an error; the other stages were stopped too."""


def run_stages(stages: Sequence[Any], stop: threading.Event) -> None:
    """Run every stage until stop is set. Guarantees: when one stage raises, every other stage is asked to stop and
    joined, then StageFailed is raised with the first error as its cause; nothing is swallowed."""
    halt = threading.Event()
    errors: list[tuple[str, BaseException]] = []

    def work(stage: Any) -> None:
        try:
            stage.run(halt)
        except BaseException as exc:  # noqa: BLE001 - re-raised below as StageFailed, once every thread has stopped
            log.error("%s failed: %s", stage.name, exc)
            errors.append((stage.name, exc))
            halt.set()

    threads = [threading.Thread(target=work, args=(s,), name=s.name, daemon=True) for s in stages]
    for thread in threads:
        thread.start()
    try:
        while not stop.is_set() and not halt.is_set():
            stop.wait(0.2)
    finally:
        halt.set()
        for thread in threads:
            thread.join()
    if errors:
        name, first = errors[0]
        raise StageFailed(f"stage {name} stopped: {first}") from first
