"""The memory high-water mark of each step of a run, in one process.

Runs :data:`personas.pipeline.STEPS` (features, personas, report) one after the other on an
events file, and after each prints the process's peak resident memory during that step
(``VmHWM``, reset between steps through ``/proc/self/clear_refs``: Linux only) and what stays
resident. Used for the "Tenth pass" section of docs/benchmarks.md::

    .venv/bin/python bench/memory_steps.py bench/data/sample-1000000.parquet --memory-limit 1GB
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from personas import pipeline
from personas.params import PersonaParams


def memory() -> dict[str, float]:
    """Peak and current resident memory of this process, in GB."""
    figures = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            figures[key] = int(value.split()[0]) / 1e6
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", help="events file (e.g. from `personas sample`)")
    parser.add_argument("--memory-limit", default="3GB", help="the run's memory_limit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        params = PersonaParams(
            events_path=args.events,
            memory_limit=args.memory_limit,
            output_dir=str(Path(out) / "run"),
        )
        print("| step | high-water mark | resident after | seconds |\n|---|---:|---:|---:|")
        for name, step in pipeline.STEPS:
            Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again
            started = time.time()
            step(params, progress=False)
            figures = memory()
            print(
                f"| {name} | {figures['VmHWM']:.2f} GB | {figures['VmRSS']:.2f} GB | "
                f"{time.time() - started:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
