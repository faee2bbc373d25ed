"""Who moved where at 1,000,000 users a run: the time and memory of the migration step.

Two run folders are made up (no model is fitted: the migration reads only personas.json,
run.json and the assignment files): an earlier run of ``--users`` users in 8 personas, and a
later run in which ``--stay`` of them are still present, each moved to another persona with
probability ``--move``, plus new users up to ``--users`` again. Then, in a fresh process each time
(spawned, so the memory is the step's own), the work the report step does for ``compare_to``:

1. ``relabel`` the later run's assignments to the kept persona ids (1 Series.map),
2. ``migrate``: the DuckDB full outer join of the two ``assignments.parquet`` on user_id, with
   its duplicate check, into flows,
3. ``write_csv`` (migration.csv) and ``to_dict`` (run.json's ``comparison.migration``),
4. the report section: the flow chart and the words (``render.render_html`` is not timed: the
   rest of the report does not depend on the migration).

The figure checked against the issue is the sum of 1-3 (time) and the peak resident memory of
the process during 1-4 minus its resident memory before them, with pandas, DuckDB and matplotlib
already imported ("extra"). Every table row is checked against the two files' persona counts.

Usage::

    .venv/bin/python bench/migration.py                      # 1,000,000 users, 3 runs
    .venv/bin/python bench/migration.py --users 200000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PERSONAS = (
    "Frequent Browser",
    "Loyal Big Spender",
    "Bargain Hunter",
    "Cart Abandoner",
    "New Visitor",
    "Lapsed",
    "Email-Engaged",
    "Window Shopper",
)
SHARES = np.array([0.18, 0.10, 0.15, 0.14, 0.12, 0.13, 0.08, 0.10])


def _ids(numbers: np.ndarray) -> np.ndarray:
    return np.char.add("u", np.char.zfill(numbers.astype(str), 8)).astype(object)


def _write_run(
    folder: Path, numbers: np.ndarray, persona: np.ndarray, window: tuple[str, str], highest: int
) -> None:
    folder.mkdir(parents=True)
    frame = pd.DataFrame(
        {
            "user_id": _ids(numbers),
            "persona_id": persona.astype("int64"),
            "persona": np.array(PERSONAS, dtype=object)[persona],
            "confidence": np.float64(0.9),
        }
    )
    frame.to_parquet(folder / "assignments.parquet", index=False)
    sizes = np.bincount(persona, minlength=len(PERSONAS))
    (folder / "personas.json").write_text(
        json.dumps(
            [
                {
                    "id": i,
                    "name": name,
                    "size": int(sizes[i]),
                    "share": float(sizes[i] / len(persona)),
                }
                for i, name in enumerate(PERSONAS)
            ]
        ),
        encoding="utf-8",
    )
    (folder / "run.json").write_text(
        json.dumps(
            {
                "input": {"window": {"start": window[0], "end": window[1]}},
                "identities": {"highest_id": highest},
            }
        ),
        encoding="utf-8",
    )


def make_runs(work: Path, users: int, stay: float, move: float, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    before = rng.choice(len(PERSONAS), size=users, p=SHARES / SHARES.sum())
    numbers = np.arange(users)
    kept = rng.random(users) < stay
    after = before[kept].copy()
    moved = rng.random(after.size) < move
    after[moved] = rng.choice(len(PERSONAS), size=int(moved.sum()), p=SHARES / SHARES.sum())
    new = users - after.size
    later_numbers = np.concatenate([numbers[kept], users + np.arange(new)])
    later_persona = np.concatenate(
        [after, rng.choice(len(PERSONAS), size=new, p=SHARES / SHARES.sum())]
    )
    order = rng.permutation(later_numbers.size)  # files are not in the same user order
    _write_run(work / "earlier", numbers, before, ("2024-01-01", "2024-12-31"), 7)
    _write_run(
        work / "later", later_numbers[order], later_persona[order], ("2025-01-01", "2025-12-31"), 7
    )
    return work / "earlier", work / "later"


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _measure(earlier: str, later: str, queue) -> None:
    """One migration step in this (fresh) process; puts its figures on ``queue``."""
    import duckdb  # noqa: F401  -- imported before the baseline, as in a report step
    import matplotlib  # noqa: F401

    from personas.migration import migrate, read_side, relabel
    from personas.report import charts, flows

    base = _rss_kib()
    frame = pd.read_parquet(Path(later) / "assignments.parquet", columns=["persona_id"])
    t1 = time.perf_counter()
    ids = relabel(frame["persona_id"], {i: (i + 3) % len(PERSONAS) for i in range(len(PERSONAS))})
    t2 = time.perf_counter()
    m = migrate(read_side(earlier), read_side(later))
    t3 = time.perf_counter()
    out = Path(tempfile.mkdtemp())
    m.write_csv(out)
    json.dumps(m.to_dict())
    t4 = time.perf_counter()
    flows.flow_chart(m, charts.persona_colours([p.id for p in m.later.personas]))
    [flows.flow_alt(m), flows.migration_view(m, None)]
    t5 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # the table agrees with both files
    table = m.table()
    then = pd.read_parquet(Path(earlier) / "assignments.parquet", columns=["persona"])
    now = pd.read_parquet(Path(later) / "assignments.parquet", columns=["persona"])
    out_of = table[table["from_persona"] != "(new)"].groupby("from_persona")["users"].sum()
    into = table[table["to_persona"] != "(gone)"].groupby("to_persona")["users"].sum()
    assert out_of.to_dict() == then["persona"].value_counts().to_dict()
    assert into.to_dict() == now["persona"].value_counts().to_dict()
    queue.put(
        {
            "relabel_s": t2 - t1,
            "migrate_s": t3 - t2,
            "write_s": t4 - t3,
            "chart_s": t5 - t4,
            "step_s": (t2 - t1) + (t4 - t2),
            "extra_mib": (peak - base) / 1024,
            "base_mib": base / 1024,
            "rows": len(table),
            "users": [m.earlier_users, m.later_users, m.both, m.new, m.gone, int(ids.size)],
        }
    )


def measure(earlier: Path, later: Path) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(str(earlier), str(later), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stay", type=float, default=0.8, help="share of users in both runs")
    parser.add_argument("--move", type=float, default=0.3, help="share of those who move")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        earlier, later = make_runs(Path(work), args.users, args.stay, args.move)
        made = time.perf_counter() - start
        results = [measure(earlier, later) for _ in range(args.runs)]
    cpu = platform.processor() or platform.machine()
    print(
        f"- **Machine**: {multiprocessing.cpu_count()} CPUs ({cpu}), Python "
        f"{platform.python_version()}; **date** {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    users = results[0]["users"]
    print(
        f"- **Input**: {users[0]:,} users then, {users[1]:,} now ({users[2]:,} in both, "
        f"{users[3]:,} new, {users[4]:,} gone), 8 personas; {results[0]['rows']} rows in "
        f"migration.csv; made in {made:.1f} s; {args.runs} runs, each a fresh process\n"
    )
    print("| figure | min | median | max |")
    print("|---|---:|---:|---:|")
    for key, label in (
        ("relabel_s", "relabel the assignments to kept ids (s)"),
        ("migrate_s", "join on user_id, duplicate check, flows (s)"),
        ("write_s", "migration.csv + run.json entry (s)"),
        ("step_s", "**migration step: the three above (s)**"),
        ("chart_s", "report section: flow chart and words (s)"),
        ("extra_mib", "**extra peak memory of the process (MiB)**"),
        ("base_mib", "process before the step, libraries loaded (MiB)"),
    ):
        values = [r[key] for r in results]
        print(
            f"| {label} | {min(values):.2f} | {statistics.median(values):.2f} | {max(values):.2f} |"
        )


if __name__ == "__main__":
    main()
