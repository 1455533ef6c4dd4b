"""Run the benchmark suite and write bench/results/latest.md and latest.json (with the machine's details).

python -m bench [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from bench.machine import machine_details

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run, not a measurement)")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="benchmarks to run: help, produce, rebuild, latency, query, memory, console, http, telemetry",
    )
    args = parser.parse_args()
    scale = 0.05 if args.quick else 1.0
    from bench.suite import SUITE

    selected = [name for name in SUITE if args.only is None or name in args.only]
    rows: list[dict] = []
    from bench.env import bench_env

    with bench_env() as env:
        for name in selected:
            print(f"running {name} ...", flush=True)
            try:
                rows += SUITE[name](env, scale)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark is reported, the others still run
                traceback.print_exc()
                rows.append(
                    {
                        "benchmark": name,
                        "value": None,
                        "unit": "",
                        "goal": "",
                        "met": False,
                        "notes": f"failed: {type(exc).__name__}: {exc}",
                    }
                )
    machine = machine_details()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps({"machine": machine, "quick": args.quick, "results": rows}, indent=2)
    )
    (RESULTS / "latest.md").write_text(render_markdown(machine, rows, args.quick))
    print((RESULTS / "latest.md").read_text())
    return 0


def render_markdown(machine: dict, rows: list[dict], quick: bool) -> str:
    lines = [
        f"Measured {machine['date']} on {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"{machine['os']}, Python {machine['python']}, {machine['java']}; broker on the same machine"
        + (" (QUICK smoke run: small counts, not a measurement)" if quick else "")
        + ".",
        "",
        "| benchmark | value | unit | goal | met | notes |",
        "|---|---:|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "no", None: ""}[row.get("met")]
        value = "" if row["value"] is None else (f"{row['value']:,}" if isinstance(row["value"], int) else row["value"])
        lines.append(f"| {row['benchmark']} | {value} | {row['unit']} | {row['goal']} | {met} | {row['notes']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
