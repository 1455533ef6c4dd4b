"""The processor's periodic state checkpoint is written by a background thread from a snapshot: what it writes is the
state at the moment of the checkpoint, whatever the loop commits meanwhile, and the next load reads it back."""

from __future__ import annotations

from datetime import UTC, datetime

from orderstream.config import load_settings
from orderstream.consumers.processor import Processor, ProcessorSpec
from orderstream.consumers.state import Handled, KeyState, PartitionState, StateCache


class _Counter:
    def initial(self, key):
        return 0

    def evolve(self, state, event):
        return state + 1

    def handle(self, message, state, context):
        raise NotImplementedError


def _processor(tmp_path) -> Processor:
    spec = ProcessorSpec(name="counter", group_id="g", input_topics=("in",), changelog_topic="log", logic=_Counter(),
                         transactional_id="t", state_dir=tmp_path, source="test")  # fmt: skip
    return Processor(load_settings(data_dir=tmp_path), spec, codec=object())


def test_a_background_checkpoint_writes_the_state_as_it_was_when_it_was_taken(tmp_path):
    processor = _processor(tmp_path)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    state = PartitionState(0, next_offset=7, keys={f"k{n}": KeyState(n, {f"c{n}": Handled(1, 0, n, at)}) for n in range(2000)})
    state.dirty = True
    processor._states[0] = state
    processor._owned = {0}

    processor._checkpoint({0}, wait=False)
    state.keys["k1"] = KeyState(999)  # what the loop does when a later batch commits
    state.keys["new"] = KeyState(1)
    state.next_offset = 9
    processor._await_checkpoint()

    saved = StateCache(tmp_path, "log").load(0)
    assert saved is not None and saved.next_offset == 7
    assert len(saved.keys) == 2000 and saved.keys["k1"].value == 1 and "new" not in saved.keys
    assert saved.keys["k5"].handled["c5"] == Handled(1, 0, 5, at)
    assert not state.dirty  # the changes after it are marked again by the loop's next commit, not here


def test_nothing_is_written_when_nothing_changed(tmp_path):
    processor = _processor(tmp_path)
    processor._states[0] = PartitionState(0, next_offset=3)
    processor._checkpoint({0}, wait=False)
    processor._await_checkpoint()
    assert not list(tmp_path.glob("*.pickle"))
