"""The generator's seed ledger: a seed is used per cluster and topic prefix, recorded atomically."""

from __future__ import annotations

from orderstream.producers.seed_ledger import SeedLedger


def test_a_seed_is_used_only_on_its_own_cluster_and_prefix(tmp_path):
    ledger = SeedLedger.of(tmp_path, "cluster-a", "dev.")
    assert not ledger.used(42)
    ledger.record(42)
    ledger.record(42)
    assert ledger.used(42)
    assert not SeedLedger.of(tmp_path, "cluster-a", "test.").used(42)
    assert not SeedLedger.of(tmp_path, "cluster-b", "dev.").used(42)
    assert ledger.path.read_text().count("42") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["generated-seeds.json"]  # no partial file left behind


def test_a_damaged_ledger_is_started_again(tmp_path):
    (tmp_path / "generated-seeds.json").write_text("{not json")
    ledger = SeedLedger.of(tmp_path, "c", "")
    assert not ledger.used(1)
    ledger.record(1)
    assert ledger.used(1)
