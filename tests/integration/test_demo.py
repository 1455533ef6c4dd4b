"""`orderstream demo` end to end on the session broker, with a small load: it exits 0 and its views add up."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_the_whole_pipeline(settings, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orderstream.cli.main",
            "-b",
            settings.effective_bootstrap,
            "--topic-prefix",
            settings.topic_prefix,
            "--data-dir",
            str(tmp_path / "demo"),
            "demo",
            "--orders",
            "150",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "placed 150 orders" in out and "every projection has caught up" in out
    statuses = "PLACED|CONFIRMED|REJECTED|CANCELLED|SHIPPED|DELIVERED|PARTIALLY_RETURNED|RETURNED"
    counts = dict(re.findall(rf"│ ({statuses}) +│ ([\d,]+) +│", out))
    assert sum(int(n.replace(",", "")) for n in counts.values()) == 150, counts
    assert "PLACED" not in counts, "every order was decided"
    assert {"CONFIRMED", "REJECTED"} <= set(counts)
    assert {"RETURNED", "PARTIALLY_RETURNED"} <= set(counts), "the demo returns a few delivered orders"
    assert "Returned orders (order view)" in out and re.search(r"returned \d+; every projection has caught up", out)
    assert "Next, try" in out
    assert "stopped the services and projections it started" in out
