"""The poison policy's version rule for views (views/base.follow_versions): a repeat is left out, a gap refused."""

from __future__ import annotations

import random

import pytest

from orderstream.views.base import ProjectionError, follow_versions
from tests.support.histories import random_history


def _history(order_id: str, at_least: int = 3):
    rng = random.Random(order_id)
    history = random_history(rng, order_id)
    while len(history) < at_least:
        history = random_history(rng, order_id)
    return history


def test_events_that_follow_their_rows_pass_in_log_order():
    a, b = _history("a"), _history("b")
    mixed = [a[0], b[0], a[1], b[1], a[2]]
    assert follow_versions(mixed, {}) == mixed


def test_a_repeated_version_is_left_out_against_the_row_and_within_the_batch():
    a = _history("a")
    assert follow_versions([a[0], a[1], a[1], a[2]], {}) == [a[0], a[1], a[2]]
    assert follow_versions([a[0], a[1], a[2]], {"a": {"version": 2}}) == [a[2]]


def test_a_skipped_version_is_refused():
    a = _history("a")
    with pytest.raises(ProjectionError, match="a version is missing"):
        follow_versions([a[0], a[2]], {})
    with pytest.raises(ProjectionError, match="at v0"):
        follow_versions([a[1]], {})  # never placed: version 2 over nothing
