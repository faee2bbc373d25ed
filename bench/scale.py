"""How far one machine goes: the bundled sample's shop at 10M users and beyond (docs/scale.md).

Two commands::

    .venv/bin/python bench/scale.py generate --users 10000000 --out bench/data/scale-10M
    .venv/bin/python bench/scale.py run bench/data/scale-10M --out /tmp/scale-run [-p name=value...]

``generate`` writes the log as a folder of Parquet parts (``events/part-NNN.parquet``) and the
planted personas beside it (``truth/part-NNN.parquet``), one part of ``--part-users`` users at a
time, so the generator never holds more than one part: the bundled sample's
:func:`personas.sample.make_events` builds a part in pandas, which at 10M users at once would
need well over the machine's memory. Part ``p`` is the same shop drawn with seed ``p``; its user
ids get the suffix ``-p`` so they are unique across parts.

``run`` runs ``personas run --no-notebooks`` on the folder in a child process, as a scheduler
would, and prints its figures: the wall time, the child's peak resident memory (from ``wait4``'s
rusage), each step's seconds from run.json, the size of the exports and the agreement with the
planted personas (adjusted Rand index over the users of planted personas, as in docs/model.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from personas.sample import make_events


def generate(users: int, out: Path, part_users: int, seed: int) -> None:
    """Write ``users`` users of the bundled shop as Parquet parts under ``out``."""
    (out / "events").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    parts = -(-users // part_users)
    started = time.time()
    rows = 0
    for part in range(parts):
        n = min(part_users, users - part * part_users)
        target = out / "events" / f"part-{part:03d}.parquet"
        if target.exists():  # a part written by an earlier, interrupted call
            continue
        events, truth = make_events(n, seed + part)
        suffix = f"-{part:03d}"
        ids = events["user_id"].astype("category")
        events["user_id"] = ids.cat.rename_categories(ids.cat.categories + suffix).astype(str)
        truth["user_id"] = truth["user_id"] + suffix
        truth.to_parquet(out / "truth" / f"part-{part:03d}.parquet", index=False)
        temp = target.with_suffix(".tmp")
        events.to_parquet(temp, index=False)
        os.replace(temp, target)
        rows += len(events)
        print(
            f"part {part + 1}/{parts}: {n:,} users, {len(events):,} events "
            f"({time.time() - started:.0f} s)",
            flush=True,
        )
    print(f"{users:,} users under {out} ({rows:,} events written this call)")


def run(folder: Path, out: Path, extra: list[str]) -> None:
    """Run ``personas run`` on ``folder`` in a child process and print its figures."""
    command = [
        str(Path(sys.executable).with_name("personas")),
        "run",
        "--events",
        str(folder / "events"),
        "--out",
        str(out),
        "--no-notebooks",
        *extra,
    ]
    print("$", " ".join(command), flush=True)
    started = time.time()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.time() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(
            f"personas run failed after {wall:.0f} s (exit {os.waitstatus_to_exitcode(status)})"
        )
    info = json.loads((out / "run.json").read_text())
    steps = info["timings_s"]
    sizes = {p.name: p.stat().st_size / 1e6 for p in out.iterdir() if p.is_file()}
    ari = agreement(folder, out)
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"wall {wall:.0f} s, CPU {cpu:.0f} s (user + system: on a machine shared with other work "
        f"the wall time grows, this much less), peak RSS {usage.ru_maxrss / 1e6:.2f} GB, "
        f"ARI {ari:.3f}, load average at the end {os.getloadavg()[0]:.1f}"
    )
    print("steps (s):", ", ".join(f"{k} {v:.0f}" for k, v in steps.items()))
    print("exports (MB):", ", ".join(f"{k} {v:.0f}" for k, v in sorted(sizes.items())))
    print(f"users {info['counts']}")


def agreement(folder: Path, out: Path) -> float:
    """Adjusted Rand index between the run's personas and the planted ones, over the users of
    planted personas (the sample's noise users have no right answer; as in docs/model.md)."""
    from sklearn.metrics import adjusted_rand_score

    con = duckdb.connect()
    pairs = con.sql(
        f"""
        SELECT t.persona, a.persona_id
        FROM read_parquet('{folder / "truth" / "*.parquet"}') t
        JOIN read_parquet('{out / "assignments.parquet"}') a USING (user_id)
        WHERE t.persona <> 'noise'
        """
    ).fetchnumpy()
    return adjusted_rand_score(pairs["persona"], pairs["persona_id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="write the log as Parquet parts")
    make.add_argument("--users", type=int, required=True)
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--part-users", type=int, default=250_000)
    make.add_argument("--seed", type=int, default=0)
    time_it = commands.add_parser("run", help="time personas run on a generated folder")
    time_it.add_argument("folder", type=Path)
    time_it.add_argument("--out", type=Path, required=True)
    args, extra = parser.parse_known_args()  # the rest goes to personas run
    if args.command == "generate":
        generate(args.users, args.out, args.part_users, args.seed)
    else:
        run(args.folder, args.out, extra)


if __name__ == "__main__":
    main()
