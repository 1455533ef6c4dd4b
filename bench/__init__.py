"""orderstream's benchmark suite: `make bench` (python -m bench) writes bench/results/latest.{md,json}."""
