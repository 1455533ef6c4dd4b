"""The seeds `orderstream generate` has sent, per cluster and topic prefix, so a seed used again is said, not silent.

A seed fixes every order id and command id of a load (load_plan.order_id), so the same seed sent twice to the same
topics is a second copy of the same commands: the order service refuses them all (each order exists already), and
the run would "succeed" having placed nothing new. The ledger is a small JSON file in the data directory:
{"<cluster id>/<topic prefix>": [seeds...]}, written atomically after a run every record of which was acknowledged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "generated-seeds.json"


@dataclass(frozen=True)
class SeedLedger:
    path: Path
    scope: str  # "<cluster id>/<topic prefix>": the same seed on another cluster or prefix is new orders

    @classmethod
    def of(cls, data_dir: Path, cluster_id: str | None, topic_prefix: str) -> SeedLedger:
        return cls(data_dir / FILE_NAME, f"{cluster_id or 'unknown-cluster'}/{topic_prefix}")

    def _read(self) -> dict[str, list[int]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # a damaged ledger only costs the warning it exists for: start a new one
            return {}
        return data if isinstance(data, dict) else {}

    def used(self, seed: int) -> bool:
        return seed in self._read().get(self.scope, [])

    def record(self, seed: int) -> None:
        data = self._read()
        seeds = data.setdefault(self.scope, [])
        if seed in seeds:
            return
        seeds.append(seed)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        partial.write_text(json.dumps(data, indent=1) + "\n")
        partial.replace(self.path)  # atomic: a reader sees the old ledger or the new one, never half of one
