"""The Spark engine next to the DuckDB engine on one events file, measured in one run.

Runs ``personas run --no-notebooks`` on the file with each engine, one after the other, each in
its own process (the forecast off, as in the docs/scale.md measurements made before Spark
computed it), then checks that the two gave the same features and the same assignments, and
prints one Markdown table of the steps' seconds, the Spark partitions' rows and task seconds,
and the per-core throughput that docs/scale.md extrapolates from, and the peak memory of each
run's driver: the
``personas run`` process (VmHWM, read every half second from /proc) and, on Spark, its JVM
(in local mode the JVM holds the tasks too)::

    .venv/bin/python bench/spark.py bench/data/sample-1000000.parquet --master 'local[2]'

``--code`` runs another checkout's package (an earlier commit, to compare) and ``--engines``
picks the engines; the check of equal features and assignments needs both.
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


def _peak(pid: int) -> int:
    """The peak resident memory (VmHWM, bytes) of process ``pid`` so far; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run(events: str, out: Path, engine: str, master: str, code: Path) -> tuple[dict, float]:
    """One run in a fresh process: (its run.json and features.json with the peak memory of
    the driver and its JVM added under ``peak_bytes``, wall seconds)."""
    command = [
        sys.executable, "-m", "personas", "run", "--no-notebooks", "-q", "--events", events,
        "--out", str(out), "-p", "forecast=false", "-p", f"engine={engine}",
        "-p", f"spark_master={master}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    peaks = {"driver": 0, "jvm": 0}
    while process.poll() is None:
        peaks["driver"] = max(peaks["driver"], _peak(process.pid))
        jvm = [c for c in _children(process.pid) if "java" in _command(c)]
        peaks["jvm"] = max([peaks["jvm"], *(_peak(c) for c in jvm)])
        time.sleep(0.5)
    wall = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"the {engine} run failed (exit {process.returncode})")
    record = json.loads((out / "run.json").read_text())
    record["features_record"] = json.loads((out / "features.json").read_text())
    record["peak_bytes"] = peaks
    return record, wall


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--engines", default="duckdb,spark")
    args = parser.parse_args()
    engines = args.engines.split(",")
    with tempfile.TemporaryDirectory(prefix="personas-spark-bench-") as folder:
        results = {}
        for engine in engines:
            results[engine] = run(
                args.events, Path(folder) / engine, engine, args.master, args.code
            )
        if len(results) == 2:
            same, worst, same_personas = _compare(Path(folder))
    first = results[engines[0]][0]
    users, events = first["counts"]["users"], first["counts"]["events"]
    print(f"{users:,} users, {events:,} events; Spark master {args.master}\n")
    print("| step (s) | " + " | ".join(results) + " |\n|---|" + "---:|" * len(results))
    for step in STEPS:
        row = [results[e][0]["timings_s"].get(step) for e in results]
        print(f"| {step} | " + " | ".join("" if v is None else f"{v:.1f}" for v in row) + " |")
    print("| wall, process | " + " | ".join(f"{results[e][1]:.1f}" for e in results) + " |")
    for who in ("driver", "jvm"):
        peaks = [results[e][0]["peak_bytes"][who] / 1e9 for e in results]
        print(f"| peak memory, {who} (GB) | " + " | ".join(f"{p:.2f}" for p in peaks) + " |")
    if "spark" in results:
        engine = results["spark"][0]["features_record"]["engine"]
        print(f"\nSpark: {json.dumps(engine)}")
        rate = engine["partition_rows"] / max(engine["partition_seconds"], 1e-9)
        print(f"per-core load of a partition's users (pass 2): {rate:,.0f} rows/s")
    if len(results) == 2:
        print(f"same features: {same} (largest difference {worst:.3g}); same assignments: "
              f"{same_personas}")  # fmt: skip


def _compare(folder: Path) -> tuple[bool, float, bool]:
    """(the same features, their largest difference, the same assignments) of the two runs."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package
    from personas.features import read_features  # a folder (Spark's dataset) or a file

    duck, spark = (read_features(folder / e / "features.parquet") for e in ("duckdb", "spark"))
    same = list(duck.index) == list(spark.index) and list(duck.columns) == list(spark.columns)
    a, b = duck.to_numpy("float64"), spark.to_numpy("float64")
    worst = float(np.nanmax(np.abs(a - b))) if same else float("nan")
    same = same and bool((np.isnan(a) == np.isnan(b)).all())
    assigned = [
        pd.read_parquet(folder / e / "assignments.parquet")[["user_id", "persona_id"]]
        for e in ("duckdb", "spark")
    ]
    return same, worst, assigned[0].equals(assigned[1])


if __name__ == "__main__":
    main()
