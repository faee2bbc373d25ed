"""The Spark engine next to the DuckDB engine on one events file, measured in one run.

Runs ``personas run --no-notebooks`` on the file with each engine, one after the other, each in
its own process (the forecast off, as the Spark engine does not compute it yet), then checks
that the two gave the same features and the same assignments, and prints one Markdown table of
the steps' seconds, the Spark partitions' rows and task seconds, and the per-core throughput
that docs/scale.md extrapolates from::

    .venv/bin/python bench/spark.py bench/data/sample-1000000.parquet --master 'local[2]'
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

STEPS = ("load", "per_user", "features", "model", "profile", "report", "total")


def run(events: str, out: Path, engine: str, master: str) -> tuple[dict, float]:
    """One run in a fresh process: (its run.json and features.json, wall seconds)."""
    command = [
        sys.executable, "-m", "personas", "run", "--no-notebooks", "-q", "--events", events,
        "--out", str(out), "-p", "forecast=false", "-p", f"engine={engine}",
        "-p", f"spark_master={master}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    record = json.loads((out / "run.json").read_text())
    record["features_record"] = json.loads((out / "features.json").read_text())
    return record, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="personas-spark-bench-") as folder:
        results = {}
        for engine in ("duckdb", "spark"):
            results[engine] = run(args.events, Path(folder) / engine, engine, args.master)
        duck, spark = (pd.read_parquet(Path(folder) / e / "features.parquet") for e in results)
        same = list(duck.index) == list(spark.index) and list(duck.columns) == list(spark.columns)
        a, b = duck.to_numpy("float64"), spark.to_numpy("float64")
        worst = float(np.nanmax(np.abs(a - b))) if same else float("nan")
        same = same and bool((np.isnan(a) == np.isnan(b)).all())
        assigned = [
            pd.read_parquet(Path(folder) / e / "assignments.parquet")[["user_id", "persona_id"]]
            for e in results
        ]
        same_personas = assigned[0].equals(assigned[1])
    users = results["duckdb"][0]["counts"]["users"]
    events = results["duckdb"][0]["counts"]["events"]
    print(f"{users:,} users, {events:,} events; Spark master {args.master}\n")
    print("| step (s) | duckdb | spark |\n|---|---:|---:|")
    for step in STEPS:
        row = [results[e][0]["timings_s"].get(step) for e in results]
        print(f"| {step} | " + " | ".join("" if v is None else f"{v:.1f}" for v in row) + " |")
    print("| wall, process | " + " | ".join(f"{results[e][1]:.1f}" for e in results) + " |")
    engine = results["spark"][0]["features_record"]["engine"]
    print(f"\nSpark: {json.dumps(engine)}")
    rate = engine["partition_rows"] / max(engine["partition_seconds"], 1e-9)
    print(f"per-core load of a partition's users (pass 2): {rate:,.0f} rows/s")
    print(f"same features: {same} (largest difference {worst:.3g}); same assignments: "
          f"{same_personas}")  # fmt: skip


if __name__ == "__main__":
    main()
