"""Benchmarks (`python -m bench`, `make bench`): how fast the platform is, against the engine's own floor.

The shop is simulated at several scales into bench-owned folders (`var/bench/<scale>/`), the real
pipeline runs headless over the full history and then one new day, and two baselines compute the
same core KPIs over the same lake files: one DuckDB SQL script (the floor) and a hand-written
pandas version. Both must equal the published marts. See `bench/README.md`.
"""
