"""Benchmark: ``personas run`` against the notebook approach (bench/naive.py), whole processes.

For each size in ``--users`` a planted sample is generated once (``personas sample``, reused when
``bench/data/sample-N.parquet`` exists), then three commands run in turn, ``--runs`` times each,
interleaved (A B C A B C ...) so that drift of a shared machine hits all of them alike:

* ``naive``          ``python bench/naive.py``: pandas + UMAP + HDBSCAN on all users
* ``personas run``   papermill: three notebooks, report included
* ``personas run --no-notebooks``  (the same steps in one process)

Each run is timed from outside by ``/usr/bin/time -v``: wall time and peak resident memory of the
largest single process (papermill's kernels included). Start-up, imports and numba compilation
(cached on disk after the first fit) are part of every figure. Agreement with the planted
personas is the adjusted Rand index over users that are not planted noise. The results go to
``docs/benchmarks.md``.

    .venv/bin/python bench/run.py                      # 20,000 users, 2 runs each
    .venv/bin/python bench/run.py --users 20000 100000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
STEPS = ("load", "per_user", "features", "model", "profile", "report", "total")
# docs/benchmarks.md: what follows this line is written by hand (or by other bench scripts) and
# kept when this script rewrites the file
KEEP_MARKER = (
    "<!-- kept by bench/run.py: everything below this line is kept when it rewrites this file -->"
)
NAIVE_MAX_USERS = 200_000  # above this the naive approach's pandas copy of the log nears memory


@dataclass
class Approach:
    """One command under test and what its runs measured."""

    name: str
    argv: list[str]
    out_dir: Path | None = None  # the personas run folder (None for the naive script)
    walls: list[float] = field(default_factory=list)
    peaks_mb: list[float] = field(default_factory=list)
    ari: float | None = None
    clusters: int | None = None
    timings: dict | None = None
    note: str = ""


# -- data and commands -----------------------------------------------------------------------------


def ensure_sample(users: int) -> tuple[Path, Path]:
    """The planted sample of ``users`` users and its truth file, generated when missing."""
    events = DATA / f"sample-{users}.parquet"
    truth = DATA / f"sample-{users}.truth.csv"
    if not (events.exists() and truth.exists()):
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(BIN / "personas"), "sample", "--users", str(users), "--out", str(events)],
            check=True,
        )
    return events, truth


def approaches(users: int, events: Path, truth: Path, naive_max: int) -> list[Approach]:
    """The commands compared at one size (the naive one only up to ``naive_max`` users)."""

    def personas(folder: str, *extra: str) -> Approach:
        out = RESULTS / folder
        name = " ".join(["personas run", *extra])
        return Approach(
            name,
            [
                str(BIN / "personas"),
                "run",
                "--events",
                str(events),
                "--out",
                str(out),
                "--quiet",
                *extra,
            ],
            out_dir=out,
        )

    naive = Approach(
        "naive",
        [
            sys.executable,
            str(ROOT / "bench" / "naive.py"),
            "--events",
            str(events),
            "--truth",
            str(truth),
        ],
    )
    return ([naive] if users <= naive_max else []) + [
        personas(f"run-{users}"),
        personas(f"run-{users}-no-notebooks", "--no-notebooks"),
    ]


# -- measuring -------------------------------------------------------------------------------------


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Run ``argv`` under ``/usr/bin/time -v``: (wall seconds, peak RSS MiB, its stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", report.name, *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode != 0:
            sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-3000:]}")
        text = report.read()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return seconds, peak_kb / 1024, proc.stdout


def planted_ari(assignments: Path, truth: Path) -> float:
    """Adjusted Rand index of a run's personas against the planted ones (planted noise left out)."""
    from sklearn.metrics import adjusted_rand_score

    found = pd.read_parquet(assignments, columns=["user_id", "persona_id"])
    planted = pd.read_csv(truth, dtype={"user_id": str})
    both = planted.merge(found.astype({"user_id": str}), on="user_id")
    both = both[both["persona"] != "noise"]
    return round(float(adjusted_rand_score(both["persona"], both["persona_id"])), 4)


def record(approach: Approach, stdout: str, truth: Path) -> None:
    """Read quality figures of the run just finished: from stdout (naive) or the run folder."""
    if approach.out_dir is None:
        result = json.loads(stdout.strip().splitlines()[-1])
        approach.ari, approach.clusters = result["ari_vs_planted"], result["clusters"]
        approach.note = f"{result['noise_share']:.1%} of users left as HDBSCAN noise"
        return
    info = json.loads((approach.out_dir / "run.json").read_text())
    approach.ari = planted_ari(approach.out_dir / "assignments.parquet", truth)
    approach.clusters = info["counts"]["personas"]
    approach.timings = {step: info["timings_s"].get(step) for step in STEPS}
    approach.note = "every user assigned"


def bench_size(users: int, runs: int, naive_max: int) -> list[Approach]:
    """Time every approach ``runs`` times at one size, interleaved."""
    events, truth = ensure_sample(users)
    todo = approaches(users, events, truth, naive_max)
    for i in range(runs):
        for approach in todo:
            wall, peak, stdout = timed(approach.argv)
            approach.walls.append(wall)
            approach.peaks_mb.append(peak)
            record(approach, stdout, truth)
            print(
                f"[{users} users] run {i + 1}/{runs} {approach.name}: {wall:.1f} s, "
                f"{peak:.0f} MiB, ARI {approach.ari}, {approach.clusters} groups",
                flush=True,
            )
    return todo


# -- report ----------------------------------------------------------------------------------------


def machine() -> str:
    """nproc, memory and CPU model of this machine."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 2**20:.1f} GiB memory, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def size_table(users: int, results: list[Approach], naive_max: int = NAIVE_MAX_USERS) -> str:
    """A markdown table of one size: every approach side by side, ratios against naive."""
    base = results[0] if results[0].name == "naive" else None
    rows = [f"### {users:,} users", ""]
    if base is None:
        rows += [
            f"The naive approach was not run at this size (above {naive_max:,} users, "
            "`--naive-max-users`): it copies the whole log into pandas (about 100 bytes an "
            "event, 16 GB at 1M users) and runs UMAP on every user; see its memory and time "
            "at the smaller size.",
            "",
        ]
    rows += [
        "| approach | wall min (s) | wall median (s) | × naive (median) | peak RSS, max of runs (MiB) "
        "| × naive | ARI vs planted | groups | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for a in results:
        wall, peak = statistics.median(a.walls), max(a.peaks_mb)
        ratio_wall = f"{wall / statistics.median(base.walls):.2f}" if base else "–"
        ratio_peak = f"{peak / max(base.peaks_mb):.2f}" if base else "–"
        rows.append(
            f"| {a.name} | {min(a.walls):.1f} | {wall:.1f} | {ratio_wall} | {peak:.0f} "
            f"| {ratio_peak} | {a.ari} | {a.clusters} | {a.note} |"
        )
    rows += [
        "",
        "Per-step `timings_s` from `run.json` (last run of each):",
        "",
        "| run | " + " | ".join(STEPS) + " |",
        "|---|" + "---:|" * len(STEPS),
    ]
    rows += [
        f"| {a.name} | " + " | ".join(f"{a.timings[s]}" for s in STEPS) + " |"
        for a in results
        if a.timings
    ]
    return "\n".join(rows)


def write_report(path: Path, tables: list[str], argv: list[str], runs: int) -> None:
    """docs/benchmarks.md: machine, date, how to reproduce, the tables and notes."""
    command = " ".join([".venv/bin/python bench/run.py", *argv])
    text = f"""# Benchmarks

`personas run` against the notebook approach an analyst would write by hand
([`bench/naive.py`](../bench/naive.py): pandas `read_parquet` of the whole log, `groupby`
features, `StandardScaler`, `umap.UMAP(random_state=0)` with default settings and
`hdbscan.HDBSCAN(min_cluster_size=1% of users)` on all users), on planted samples from
`personas sample`.

- **Machine**: {machine()}
- **Date**: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}
- **Runs**: {runs} per command, interleaved (naive, personas, personas --no-notebooks, ...)

Reproduce (`make bench` runs the default, 20,000 users):

```bash
make setup
{command}
```

which, per size N, runs `personas sample --users N --out bench/data/sample-N.parquet` once and
then times, each under `/usr/bin/time -v`:

```bash
.venv/bin/python bench/naive.py --events bench/data/sample-N.parquet --truth bench/data/sample-N.truth.csv
.venv/bin/personas run --events bench/data/sample-N.parquet --out bench/results/run-N --quiet
.venv/bin/personas run --events bench/data/sample-N.parquet --out bench/results/run-N-no-notebooks --quiet --no-notebooks
```

{(chr(10) * 2).join(tables)}

## How to read this

- **Wall time** is the whole process, start to exit: interpreter start-up, imports and numba
  compilation of UMAP included, for both approaches, as an analyst or a scheduler would pay it.
  numba caches compiled code on disk, so after the very first run the compile cost is mostly
  loading from cache. `personas run` (papermill) also pays one Jupyter kernel start-up (its
  three notebooks share it) and writes the executed notebooks, the HTML report and every
  export; the naive script writes nothing.
- **Peak RSS** is the largest single process (for papermill, the largest kernel), as
  `/usr/bin/time -v` reports it; it is not the sum over processes.
- **ARI vs planted** is the adjusted Rand index against the planted personas in
  `bench/data/sample-N.truth.csv`, over users that are not planted noise. For `personas` it is
  computed from `assignments.parquet` (`agreement_with_planted_ari` in `run.json` is filled only
  for the bundled sample). HDBSCAN's noise label (-1) counts as one more group for the naive
  approach; `personas` assigns every user to a persona.
- **groups**: personas for `personas`, HDBSCAN clusters (noise not counted) for naive.
- The naive approach has no naming, profiles, report, assignment of new users or input
  validation; the comparison is of cost and of how well the planted structure is recovered.
- The machine is shared; with few runs, min and median are both given. A wide gap between them
  says the machine was noisy.
"""
    path.write_text(text + "\n" + KEEP_MARKER + kept_tail(path), encoding="utf-8")


def kept_tail(path: Path) -> str:
    """What follows KEEP_MARKER in the current file (empty when there is no marker)."""
    if not path.exists():
        return "\n"
    old = path.read_text(encoding="utf-8")
    return old.split(KEEP_MARKER, 1)[1] if KEEP_MARKER in old else "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=int, nargs="+", default=[20000], help="sample sizes (default 20000)"
    )
    parser.add_argument("--runs", type=int, default=2, help="runs per command (default 2)")
    parser.add_argument(
        "--naive-max-users",
        type=int,
        default=NAIVE_MAX_USERS,
        help=f"largest size the naive approach runs at (default {NAIVE_MAX_USERS})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="markdown report (default docs/benchmarks.md)",
    )
    args = parser.parse_args()
    tables = [
        size_table(users, bench_size(users, args.runs, args.naive_max_users), args.naive_max_users)
        for users in args.users
    ]
    write_report(args.out, tables, sys.argv[1:], args.runs)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
