"""The Grafana dashboard and docs/OBSERVABILITY.md name only metrics the code exports, and the docs name them all."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from orderstream.telemetry import metrics

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\borderstream_[a-z0-9_]+")


def _exported() -> dict[str, set[str]]:
    """Each metric's family name -> the sample names Prometheus stores for it."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names[value._name] = {f"{value._name}_total"}
        elif isinstance(value, Histogram):
            names[value._name] = {f"{value._name}_{suffix}" for suffix in ("bucket", "sum", "count")}
        elif isinstance(value, Gauge):
            names[value._name] = {value._name}
    return names


def _queries(dashboard: dict) -> list[str]:
    found = []
    for panel in dashboard["panels"]:
        found += [target["expr"] for target in panel.get("targets", [])]
        found += _queries(panel) if "panels" in panel else []
    return found


def test_every_dashboard_query_uses_exported_metric_names():
    exported = set().union(*_exported().values())
    dashboard = json.loads((ROOT / "docs/grafana/orderstream.json").read_text())
    queries = _queries(dashboard)
    assert len(queries) >= 10
    used = {name for query in queries for name in NAME.findall(query)}
    assert used, "the dashboard queries no orderstream metric"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    # throughput, lag, end-to-end age and errors are all on it
    for needed in (
        "orderstream_view_events_applied_total",
        "orderstream_consumer_lag_records",
        "orderstream_view_end_to_end_age_seconds_bucket",
        "orderstream_dead_letters_total",
    ):
        assert needed in used


def test_the_docs_list_every_exported_metric_and_no_other():
    text = (ROOT / "docs/OBSERVABILITY.md").read_text()
    families = _exported()
    missing = [family for family, samples in families.items() if not any(s in text for s in samples | {family})]
    assert not missing, f"docs/OBSERVABILITY.md does not describe {missing}"
    exported = set().union(*families.values()) | set(families)
    assert set(NAME.findall(text)) <= exported, sorted(set(NAME.findall(text)) - exported)


def test_metric_names_follow_prometheus_conventions():
    for family in _exported():
        assert family.startswith("orderstream_")
        assert "order_id" not in family
    for value in vars(metrics).values():
        if isinstance(value, Counter | Gauge | Histogram):
            labels = set(value._labelnames)
            assert not labels & {"order_id", "customer_id", "sku", "key"}, value._name
            assert len(labels) <= 4, value._name
        if isinstance(value, Histogram):
            assert value._name.endswith("_seconds"), value._name
