"""The processor's checkpoint cache (runtime/checkpoints.py) over its state files (runtime/state.py): an append-only
file per changelog partition. A checkpoint writes the keys changed since the last one (from a background thread, off a
snapshot); loading merges the records; a torn tail, a failed write or a grown file makes the next checkpoint rewrite
the file whole. Only public methods are used."""

from __future__ import annotations

from datetime import UTC, datetime

from orderstream.runtime.checkpoints import CheckpointCache
from orderstream.runtime.state import Checkpoint, Handled, KeyState, PartitionState, StateCache

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _cache(directory) -> CheckpointCache:
    return CheckpointCache("counter", directory, "log")


def _state(keys: int, offset: int) -> PartitionState:
    return PartitionState(
        0, next_offset=offset, keys={f"k{n}": KeyState(n, {f"c{n}": Handled(1, 0, n, AT)}) for n in range(keys)}
    )


def _values(state: PartitionState) -> dict[str, int]:
    return {key: value.value for key, value in state.keys.items()}


def test_a_background_checkpoint_writes_the_state_as_it_was_when_it_was_taken(tmp_path):
    checkpoints = _cache(tmp_path)
    state = _state(2000, offset=7)

    checkpoints.write({0: state}, {0}, wait=False)
    state.keys["k1"] = KeyState(999)  # what the loop does when a later batch commits
    state.keys["new"] = KeyState(1)
    state.next_offset = 9
    checkpoints.wait()

    saved = StateCache(tmp_path, "log").load(0)
    assert saved is not None and saved.next_offset == 7
    assert len(saved.keys) == 2000 and saved.keys["k1"].value == 1 and "new" not in saved.keys
    assert saved.keys["k5"].handled["c5"] == Handled(1, 0, 5, AT)


def test_later_checkpoints_append_only_the_changed_keys_and_loading_merges_them(tmp_path):
    checkpoints = _cache(tmp_path)
    state = _state(2000, offset=7)
    checkpoints.write({0: state}, {0})
    whole_size = StateCache(tmp_path, "log").path(0).stat().st_size

    state.keys["k1"] = KeyState(999)
    state.keys["new"] = KeyState(1)
    state.changed |= {"k1", "new"}
    state.next_offset = 9
    checkpoints.write({0: state}, {0})
    assert StateCache(tmp_path, "log").path(0).stat().st_size < whole_size * 1.05  # a small record appended
    checkpoints.write({0: state}, {0})  # nothing changed: nothing written

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
    checkpoints = _cache(tmp_path)
    state = _state(10, offset=1)
    checkpoints.write({0: state}, {0})
    for round_ in range(1200):  # each checkpoint appends the same key again
        state.keys["k1"] = KeyState(round_)
        state.changed.add("k1")
        state.next_offset += 1
        checkpoints.write({0: state}, {0})
    loader = StateCache(tmp_path, "log")
    saved = loader.load(0)
    assert saved is not None and saved.keys["k1"].value == 1199 and saved.next_offset == 1201
    assert not loader.whole_write_due(0, keys=10), "compacted at least once: 1,210 entries would be due"


def test_a_failed_write_is_a_warning_and_the_next_checkpoint_rewrites_the_file(tmp_path, caplog):
    checkpoints = _cache(tmp_path / "state")
    state = _state(3, offset=4)
    (tmp_path / "state").write_text("a file where the cache directory should be")
    checkpoints.write({0: state}, {0})
    assert "not written" in caplog.text and state.rewrite
    (tmp_path / "state").unlink()
    checkpoints.write({0: state}, {0})
    saved = StateCache(tmp_path / "state", "log").load(0)
    assert saved is not None and _values(saved) == _values(state)


def test_without_a_directory_nothing_is_written_or_loaded(tmp_path):
    checkpoints = CheckpointCache("counter", None, "log", interval_s=0.0)
    checkpoints.write({0: _state(3, offset=4)}, {0})
    assert checkpoints.load(0) is None and not list(tmp_path.iterdir())
    assert checkpoints.due()


def test_a_cached_state_loads_back_with_its_keys_versions(tmp_path):
    checkpoints = _cache(tmp_path)
    state = PartitionState(0, next_offset=3, keys={"a": KeyState(2, {}, version=2)})
    checkpoints.write({0: state}, {0})
    checkpoints.close()
    loaded = _cache(tmp_path).load(0)
    assert loaded is not None and loaded.keys["a"].version == 2 and loaded.next_offset == 3
