"""The processor's state cache: an append-only file per changelog partition. A checkpoint writes the keys changed
since the last one (from a background thread, off a snapshot); loading merges the records; a torn tail, a failed
write or a grown file makes the next checkpoint rewrite the file whole."""

from __future__ import annotations

from datetime import UTC, datetime

from orderstream.config import load_settings
from orderstream.runtime.processor import Processor, ProcessorSpec
from orderstream.runtime.state import Checkpoint, Handled, KeyState, PartitionState, StateCache

AT = datetime(2026, 1, 1, tzinfo=UTC)


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


def _state(keys: int, offset: int) -> PartitionState:
    return PartitionState(
        0, next_offset=offset, keys={f"k{n}": KeyState(n, {f"c{n}": Handled(1, 0, n, AT)}) for n in range(keys)}
    )


def _values(state: PartitionState) -> dict[str, int]:
    return {key: value.value for key, value in state.keys.items()}


def test_a_background_checkpoint_writes_the_state_as_it_was_when_it_was_taken(tmp_path):
    processor = _processor(tmp_path)
    state = processor._states[0] = _state(2000, offset=7)
    processor._owned = {0}

    processor._checkpoint({0}, wait=False)
    state.keys["k1"] = KeyState(999)  # what the loop does when a later batch commits
    state.keys["new"] = KeyState(1)
    state.next_offset = 9
    processor._await_checkpoint()

    saved = StateCache(tmp_path, "log").load(0)
    assert saved is not None and saved.next_offset == 7
    assert len(saved.keys) == 2000 and saved.keys["k1"].value == 1 and "new" not in saved.keys
    assert saved.keys["k5"].handled["c5"] == Handled(1, 0, 5, AT)


def test_later_checkpoints_append_only_the_changed_keys_and_loading_merges_them(tmp_path):
    processor = _processor(tmp_path)
    state = processor._states[0] = _state(2000, offset=7)
    processor._checkpoint({0})
    whole_size = StateCache(tmp_path, "log").path(0).stat().st_size

    state.keys["k1"] = KeyState(999)
    state.keys["new"] = KeyState(1)
    state.changed |= {"k1", "new"}
    state.next_offset = 9
    processor._checkpoint({0})
    assert StateCache(tmp_path, "log").path(0).stat().st_size < whole_size * 1.05  # a small record appended
    processor._checkpoint({0})  # nothing changed: nothing written

    saved = StateCache(tmp_path, "log").load(0)
    assert saved is not None and saved.next_offset == 9 and not saved.rewrite
    assert _values(saved) == _values(state)


def test_a_torn_last_record_leaves_the_checkpoint_before_it_and_a_whole_rewrite_next(tmp_path):
    cache = StateCache(tmp_path, "log")
    cache.save(Checkpoint(0, 5, {"a": KeyState(1), "b": KeyState(2)}, whole=True))
    cache.save(Checkpoint(0, 8, {"a": KeyState(3)}, whole=False))
    path = cache.path(0)
    path.write_bytes(path.read_bytes()[:-3])  # a crash in the middle of the append

    fresh = StateCache(tmp_path, "log")
    saved = fresh.load(0)
    assert saved is not None and saved.next_offset == 5 and _values(saved) == {"a": 1, "b": 2}
    assert saved.rewrite and fresh.whole_write_due(0, keys=2)


def test_a_file_for_another_format_or_partition_is_ignored(tmp_path):
    cache = StateCache(tmp_path, "log")
    cache.save(Checkpoint(1, 5, {"a": KeyState(1)}, whole=True))
    cache.path(1).rename(cache.path(0))
    assert StateCache(tmp_path, "log").load(0) is None
    cache.path(0).write_bytes(b"not a pickle")
    assert StateCache(tmp_path, "log").load(0) is None


def test_a_file_that_grew_past_twice_its_keys_is_rewritten_whole(tmp_path):
    processor = _processor(tmp_path)
    state = processor._states[0] = _state(10, offset=1)
    processor._checkpoint({0})
    for round_ in range(1200):  # each checkpoint appends the same key again
        state.keys["k1"] = KeyState(round_)
        state.changed.add("k1")
        state.next_offset += 1
        processor._checkpoint({0})
    saved = StateCache(tmp_path, "log").load(0)
    assert saved is not None and saved.keys["k1"].value == 1199 and saved.next_offset == 1201
    assert processor._cache._entries[0] < 2 * 10 + 1000 + 2  # compacted at least once


def test_a_failed_write_is_a_warning_and_the_next_checkpoint_rewrites_the_file(tmp_path, caplog):
    processor = _processor(tmp_path / "state")
    state = processor._states[0] = _state(3, offset=4)
    (tmp_path / "state").write_text("a file where the cache directory should be")
    processor._checkpoint({0})
    assert "not written" in caplog.text and state.rewrite
    (tmp_path / "state").unlink()
    processor._checkpoint({0})
    saved = StateCache(tmp_path / "state", "log").load(0)
    assert saved is not None and _values(saved) == _values(state)
