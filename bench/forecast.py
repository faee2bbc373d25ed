"""What the forecast (issue 26) adds to a run: its time at ``--users`` users.

Loads a bundled-sample log of that size (``personas sample``; the load itself is not timed here,
see docs/benchmarks.md), then times, in this process, what a run does for the forecast:

1. ``purchases``: the purchase summary per buyer (DuckDB, the features step's part),
2. ``fit``: the Pareto/NBD and Gamma-Gamma MAP fits on at most FIT_SAMPLE buyers,
3. ``predict``: p_active, expected purchases and revenue, the chance to buy and the due dates of
   every user, and the per-persona figures (random persona labels: the forecast does not depend
   on them).

PyTensor compiles the models' C code on first use on a machine (cached in ~/.pytensor); the first
run of this script pays it in ``fit``, later runs not. Usage::

    .venv/bin/python bench/forecast.py --users 1000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args()
    data = ROOT / "bench" / "data" / f"sample-{args.users}.parquet"
    if not data.exists():
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "personas"),
                "sample",
                "--users",
                str(args.users),
                "--out",
                str(data),
            ],
            check=True,
        )
    from personas import PersonaParams, forecast
    from personas.load import load_events

    params = PersonaParams(events_path=str(data))
    start = time.perf_counter()
    log = load_events(params)
    print(f"load (not the forecast's): {time.perf_counter() - start:.1f} s", flush=True)
    timings = {}
    start = time.perf_counter()
    frames, record = forecast.purchase_history(log, params)
    timings["purchases"] = time.perf_counter() - start
    summary = frames[forecast.PURCHASES]
    start = time.perf_counter()
    fitted = forecast.fit(summary, 0)
    timings["fit"] = time.perf_counter() - start
    users = log.con.execute("SELECT user_id FROM users ORDER BY user_id").df()["user_id"]
    start = time.perf_counter()
    per_user = forecast.user_forecast(fitted, summary, users, 90, log.reference)
    labels = np.random.default_rng(0).integers(0, 8, len(per_user))
    forecast.persona_forecasts(per_user, labels, 90, log.reference)
    timings["predict"] = time.perf_counter() - start
    print(f"users {len(users):,}, buyers {len(summary):,}, fitted on {fitted.fitted_on:,}")
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.1f} s")
    print(f"forecast total: {sum(timings.values()):.1f} s")


if __name__ == "__main__":
    main()
