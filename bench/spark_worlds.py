"""Both engines on random worlds the project never designed: the same features, assignments and
forecast? Each world (personas.worlds: its own archetypes, event vocabulary or an order table,
column names, file format) is written with a few thousand users and run end to end once with
``engine=duckdb`` and once with ``engine=spark`` (``local[*]``), then compared.

    .venv/bin/python bench/spark_worlds.py --worlds 7,9,3 --users 3000

Prints a line per world: users, the largest difference of any feature of any user, and whether
the assignments and run.json's forecast record are identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from personas import PersonaParams, pipeline  # noqa: E402
from personas.worlds import draw_world, write_world  # noqa: E402


def features(run: Path) -> pd.DataFrame:
    """The run's feature table (a file, or Spark's dataset), by user, columns sorted."""
    table = pd.read_parquet(run / "features.parquet")
    if "user_id" in table.columns:
        table = table.set_index("user_id")
    return table.sort_index()[sorted(table.columns)]


def compare(seed: int, users: int, folder: Path) -> str:
    world = draw_world(seed)
    events, _, columns = write_world(world, folder / "logs", users)
    runs = {}
    for engine in ("duckdb", "spark"):
        params = PersonaParams(
            events_path=str(events), output_dir=str(folder / f"world-{seed}-{engine}"),
            engine=engine, **columns,
        )  # fmt: skip
        pipeline.run(params, progress=False)
        runs[engine] = params.run_dir()
    duck, spark = (features(run) for run in runs.values())
    numbers = duck.select_dtypes("number").columns
    gap = np.nanmax(np.abs(duck[numbers].to_numpy(float) - spark[numbers].to_numpy(float)))
    ours, theirs = (
        pd.read_parquet(run / "assignments.parquet").sort_values("user_id", ignore_index=True)
        for run in runs.values()
    )
    forecasts = [json.loads((run / "run.json").read_text())["forecast"] for run in runs.values()]
    return (
        f"world {seed} ({world.describe()}): {len(duck):,} users, same users "
        f"{duck.index.equals(spark.index)}, largest feature difference {gap:.3g}, same "
        f"assignments {ours.equals(theirs)}, same forecast {forecasts[0] == forecasts[1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worlds", default="7,9,3")
    parser.add_argument("--users", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for seed in (int(s) for s in args.worlds.split(",")):
            print(compare(seed, args.users, Path(folder)), flush=True)


if __name__ == "__main__":
    main()
