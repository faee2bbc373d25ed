"""The load's per-user pass alone, in a given number of buckets of users: its wall and CPU time.

Runs the load's steps as :func:`personas.load.load_events` does (read and clean, codes, the
marks) and then :func:`personas.activity.summarise` with ``--buckets`` buckets (1: one sort of
every event, as below ``EVENTS_PER_GB``), and prints the seconds of the pass. Used for the
comparison of one sort and ten buckets at 10M users in docs/scale.md::

    .venv/bin/python bench/per_user_pass.py bench/data/scale-10M/events --buckets 1
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from personas import activity
from personas.load.encoding import code_names, mark_rows
from personas.load.stage import connect, read_and_clean
from personas.params import PersonaParams
from personas.progress import Progress


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", help="events file or folder of Parquet parts")
    parser.add_argument("--buckets", type=int, default=1, help="buckets of users (1: one sort)")
    parser.add_argument("--memory-limit", default="3GB", help="the run's memory_limit")
    args = parser.parse_args()
    params = PersonaParams(events_path=args.events, memory_limit=args.memory_limit)
    con = connect(params.memory_limit, params.temp_dir)
    wall, cpu = time.perf_counter(), cpu_seconds()
    clean = read_and_clean(params, con, Progress(quiet=True))
    print(f"read and clean: {time.perf_counter() - wall:.1f} s, CPU {cpu_seconds() - cpu:.1f} s")
    wall, cpu = time.perf_counter(), cpu_seconds()
    code_names(con, params.roles_path, clean.has_event)
    mark_rows(con, params, clean.kept_span[0])
    span = clean.kept_span
    activity.summarise(
        con,
        gap_sessions=not params.session_col,
        span=span,
        year=activity.spans_year(*span),
        buckets=args.buckets,
    )
    users = con.execute("SELECT count(*) FROM user_activity").fetchone()[0]
    print(
        f"per-user pass, {args.buckets} bucket(s): {time.perf_counter() - wall:.1f} s, "
        f"CPU {cpu_seconds() - cpu:.1f} s, {users:,} users, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
