"""How `replay projection --processes N` splits partitions between its workers (pure)."""

from __future__ import annotations

from orderstream.runtime.replay_workers import split_partitions


def test_partitions_are_split_into_groups_of_about_equal_size():
    sizes = {("t", p): size for p, size in enumerate([100, 90, 80, 70, 60, 50])}
    groups = split_partitions(sizes, 2)
    assert sorted(p for g in groups for p in g) == sorted(sizes)  # each partition in exactly one group
    totals = [sum(sizes[p] for p in g) for g in groups]
    assert len(groups) == 2 and max(totals) - min(totals) <= 10


def test_empty_partitions_are_left_out_and_no_group_is_empty():
    sizes = {("t", 0): 5, ("t", 1): 0, ("u", 0): 7}
    assert split_partitions(sizes, 8) == [[("u", 0)], [("t", 0)]]
    assert split_partitions({("t", 0): 0}, 3) == []


def test_one_group_holds_everything():
    sizes = {("t", p): p + 1 for p in range(4)}
    assert split_partitions(sizes, 1) == [sorted(sizes)]
