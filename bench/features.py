"""Benchmark: the feature step (DuckDB SQL) against the pandas ``groupby`` code an analyst would write.

Issue 6 asks for the behaviour features of 100,000 users (~16M events) in at most 5 s, and of
1,000,000 users (~165M events, Parquet) in at most 60 s and 4 GB peak memory, read straight from
Parquet without a pandas copy of the events, compared in the same run with plain pandas.

Two sides, each run as its own process under ``/usr/bin/time -v`` (wall time, peak RSS),
interleaved (pandas, duckdb, pandas, duckdb, ...) ``--runs`` times per size:

* ``pandas``  :func:`pandas_features`: ``pd.read_parquet`` of the whole log, sort, cut sessions at
  30 minutes of silence, ``groupby``. Rates are plain ratios (DuckDB smooths them towards the
  population rate), nothing is cleaned or validated.
* ``duckdb``  ``personas.load.load_events`` (read, clean, code, then one sort with duplicates
  dropped and sessions marked, summed per user as it comes out of the sort into the small table
  ``user_activity``, see ``personas.activity``) then ``personas.features.compute_features``
  (``feature_sql``: features and role counts from those tallies), exactly what ``personas run``
  does in its load and features steps. The features step alone is now small: most of the
  feature work happens in the load's one pass, so compare load + features.

Each process prints one JSON line with its own split (pandas: read / features, duckdb: load /
features), so the feature step alone and load + features are both reported. Pandas is skipped at
sizes where ``rows * 100 bytes`` is more than 60 % of the machine's memory (1M users: ~16.5 GB).
Before the timings, a check on ``--check-users`` users (20,000) compares the two sides' values
for the features both define the same way. Writes ``docs/features-bench.md`` and links it from
the end of ``docs/benchmarks.md``.

    .venv/bin/python bench/features.py                          # 20,000 users, 2 runs each
    .venv/bin/python bench/features.py --users 20000 100000 1000000
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
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
BYTES_PER_ROW = 100  # pandas needs about this much per event (columns, sort copy, groupby)
PANDAS_MEMORY_SHARE = 0.6  # pandas runs only where rows * BYTES_PER_ROW fits in this much memory
# must match KEEP_MARKER in bench/run.py: what follows it in docs/benchmarks.md survives rewrites
KEEP_MARKER = (
    "<!-- kept by bench/run.py: everything below this line is kept when it rewrites this file -->"
)
LINK_LINE = (
    "The behaviour features alone (load + features in DuckDB SQL against the pandas "
    "`groupby` an analyst would write, up to 1,000,000 users): "
    "[features-bench.md](features-bench.md), written by `bench/features.py`."
)
# issue 6 targets: users -> (seconds for the features, peak RSS MiB or None)
TARGETS = {100_000: (5.0, None), 1_000_000: (60.0, 4000 * 1e6 / 2**20)}


# -- the pandas side: what an analyst would write ------------------------------------------------

# raw event names of the sample (personas/sample.py) -> role, as personas/roles.yaml maps them
ROLE = {
    "page_view": "view",
    "view_item": "view",
    "search": "search",
    "add_to_cart": "cart",
    "begin_checkout": "checkout",
    "purchase": "purchase",
    "email_open": "email_open",
    "email_click": "email_click",
}
SESSION_GAP = pd.Timedelta(minutes=30)
DAY_S = 86_400


def pandas_features(events: pd.DataFrame) -> pd.DataFrame:
    """One row per user (index ``user_id``), the catalogue's features in plain pandas.

    Columns are named as in ``personas.features.CATALOGUE``, followed by event counts per role
    (``role_<role>``), as ``compute_features`` returns them. Rates are plain ratios, empty
    (NaN) where the denominator is 0; ``personas`` smooths them instead.
    """
    ev = events.sort_values(["user_id", "timestamp"], ignore_index=True)
    ev["role"] = ev["event"].map(ROLE).fillna("other")
    t0, t_ref = ev["timestamp"].min(), ev["timestamp"].max()  # "today" = the last event

    # sessions: a new one after more than 30 minutes of silence (ids unique over all users)
    gap = ev.groupby("user_id")["timestamp"].diff()
    ev["session"] = (gap.isna() | (gap > SESSION_GAP)).cumsum()

    for role in ("view", "search", "cart", "purchase", "email_open", "email_click"):
        ev[f"is_{role}"] = ev["role"] == role
    ev["is_discounted"] = ev["is_purchase"] & ev["discount"].fillna(False).astype(bool)
    ev["day"] = ev["timestamp"].dt.normalize()
    ev["week"] = ev["day"] - pd.to_timedelta(ev["timestamp"].dt.day_of_week, unit="D")  # Monday
    ev["weekend"] = ev["timestamp"].dt.day_of_week >= 5
    ev["night"] = ev["timestamp"].dt.hour < 6
    ev["app"] = ev["platform"] == "app"
    ev["recent"] = ev["timestamp"] >= t_ref - (t_ref - t0) / 3  # last third of the data

    u = ev.groupby("user_id").agg(
        n_events=("timestamp", "size"),
        first_ts=("timestamp", "min"),
        last_ts=("timestamp", "max"),
        n_views=("is_view", "sum"),
        n_searches=("is_search", "sum"),
        n_carts=("is_cart", "sum"),
        n_orders=("is_purchase", "sum"),
        n_opens=("is_email_open", "sum"),
        n_clicks=("is_email_click", "sum"),
        n_discounted=("is_discounted", "sum"),
        active_days=("day", "nunique"),
        active_weeks=("week", "nunique"),
        weekend_share=("weekend", "mean"),
        night_share=("night", "mean"),
        app_share=("app", "mean"),
        recent_share=("recent", "mean"),
        categories=("category", "nunique"),
    )

    purchases = ev[ev["is_purchase"]].copy()
    purchases["gap_days"] = (
        purchases.groupby("user_id")["timestamp"].diff().dt.total_seconds() / DAY_S
    )
    buys = purchases.groupby("user_id").agg(
        revenue=("amount", "sum"),
        n_priced=("amount", "count"),
        last_purchase=("timestamp", "max"),
        days_between_orders=("gap_days", "mean"),
    )
    u = u.join(buys)

    sess = ev.groupby("session").agg(
        user_id=("user_id", "first"),
        start=("timestamp", "min"),
        end=("timestamp", "max"),
        has_cart=("is_cart", "any"),
        has_purchase=("is_purchase", "any"),
    )
    sess["minutes"] = (sess["end"] - sess["start"]).dt.total_seconds() / 60
    sess["abandoned"] = sess["has_cart"] & ~sess["has_purchase"]
    # idle time: from the end of the previous session to this one's start
    previous_end = sess.groupby("user_id")["end"].shift()
    sess["gap_days"] = (sess["start"] - previous_end).dt.total_seconds() / DAY_S
    s = sess.groupby("user_id").agg(
        sessions=("start", "size"),
        session_minutes=("minutes", "mean"),
        abandoned_carts=("abandoned", "sum"),
        gap_mean=("gap_days", "mean"),
        gap_std=("gap_days", "std"),
        gap_count=("gap_days", "count"),
    )
    u = u.join(s)

    days = lambda delta: delta.dt.total_seconds() / DAY_S  # noqa: E731
    span_days = days(u["last_ts"] - u["first_ts"])
    f = pd.DataFrame(index=u.index)
    f["orders"] = u["n_orders"]
    f["revenue"] = u["revenue"].fillna(0)
    f["avg_order_value"] = u["revenue"] / u["n_priced"].where(u["n_priced"] > 0)
    f["days_since_purchase"] = days(t_ref - u["last_purchase"])
    f["days_between_orders"] = u["days_between_orders"]
    f["discount_share"] = u["n_discounted"] / u["n_orders"].where(u["n_orders"] > 0)
    f["sessions"] = u["sessions"]
    f["active_days"] = u["active_days"]
    f["events_per_session"] = u["n_events"] / u["sessions"]
    f["views_per_session"] = u["n_views"] / u["sessions"]
    f["session_minutes"] = u["session_minutes"]
    f["sessions_per_week"] = u["sessions"] / np.maximum(span_days / 7, 1)
    f["active_weeks"] = u["active_weeks"]
    f["sessions_per_active_week"] = u["sessions"] / u["active_weeks"]
    f["days_since_seen"] = days(t_ref - u["last_ts"])
    f["email_opens"] = u["n_opens"]
    f["email_clicks"] = u["n_clicks"]
    f["email_click_rate"] = u["n_clicks"] / u["n_opens"].where(u["n_opens"] > 0)
    f["app_share"] = u["app_share"]
    f["view_to_cart"] = u["n_carts"] / u["n_views"].where(u["n_views"] > 0)
    f["cart_to_purchase"] = u["n_orders"] / u["n_carts"].where(u["n_carts"] > 0)
    f["abandoned_carts"] = u["abandoned_carts"]
    f["search_share"] = u["n_searches"] / u["n_events"]
    f["weekend_share"] = u["weekend_share"]
    f["night_share"] = u["night_share"]
    # busiest calendar month's share of active days (plain: personas smooths it)
    active = ev.drop_duplicates(["user_id", "day"])
    month_days = active.groupby(["user_id", active["day"].dt.month]).size()
    f["peak_month_share"] = month_days.groupby(level=0).max() / u["active_days"]
    f["regularity"] = (u["gap_std"] / u["gap_mean"]).where(
        (u["gap_count"] >= 2) & (u["gap_mean"] > 0)
    )
    f["tenure_days"] = span_days
    f["days_since_first_seen"] = days(t_ref - u["first_ts"])
    f["recent_share"] = u["recent_share"]
    f["categories"] = u["categories"]
    f = f.astype("float64")

    roles = ev.groupby(["user_id", "role"]).size().unstack(fill_value=0)
    roles.columns = [f"role_{c}" for c in roles.columns]
    return f.join(roles.astype("float64"))


# -- the two sides as processes ------------------------------------------------------------------


def run_pandas(events: Path) -> dict:
    start = time.perf_counter()
    frame = pd.read_parquet(events)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    table = pandas_features(frame)
    features_s = time.perf_counter() - start
    return {
        "side": "pandas",
        "load_s": round(read_s, 3),
        "features_s": round(features_s, 3),
        "events": len(frame),
        "users": len(table),
        "columns": table.shape[1],
    }


def run_duckdb(events: Path) -> dict:
    from personas.features import compute_features
    from personas.load import load_events
    from personas.params import PersonaParams

    start = time.perf_counter()
    log = load_events(PersonaParams(events_path=str(events)))
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    table, _ = compute_features(log)
    features_s = time.perf_counter() - start
    return {
        "side": "duckdb",
        "load_s": round(load_s, 3),
        "features_s": round(features_s, 3),
        "events": log.counts["events"],
        "users": len(table),
        "columns": table.shape[1],
    }


# features whose pandas and DuckDB definitions are the same (no smoothing): compared in the check
EXACT = (
    "orders",
    "sessions",
    "active_days",
    "days_since_seen",
    "abandoned_carts",
    "revenue",
    "avg_order_value",
    "days_since_purchase",
    "days_between_orders",
    "events_per_session",
    "views_per_session",
    "session_minutes",
    "sessions_per_week",
    "active_weeks",
    "sessions_per_active_week",
    "email_clicks",
    "email_opens",
    "app_share",
    "weekend_share",
    "night_share",
    "regularity",
    "tenure_days",
    "days_since_first_seen",
    "recent_share",
    "categories",
)
# smoothed in DuckDB: feature -> its denominator's column (``events``: all of the user's events);
# the check smooths pandas' plain rate the same way, to show smoothing is the whole difference
SMOOTHED = {
    "discount_share": "role_purchase",
    "email_click_rate": "role_email_open",
    "view_to_cart": "role_view",
    "cart_to_purchase": "role_cart",
    "search_share": "events",
}


def smoothed_like_duckdb(table: pd.DataFrame, name: str) -> np.ndarray:
    """pandas' plain rate ``name`` smoothed as feature_sql does: (k + w p) / (n + w)."""
    from personas.features import PRIOR_WEIGHT

    counts = table.assign(events=table.filter(like="role_").sum(axis=1))
    n = counts[SMOOTHED[name]].to_numpy()
    k = np.nan_to_num(table[name].to_numpy() * n)  # plain rate x denominator; 0 where n = 0
    p = k.sum() / max(n.sum(), 1)
    return (k + PRIOR_WEIGHT * p) / (n + PRIOR_WEIGHT)


def run_check(events: Path) -> dict:
    """Both sides on one log: per feature, the largest absolute difference and the users where
    only one side has a value; for smoothed rates, how far smoothing moves them."""
    from personas.features import compute_features
    from personas.load import load_events
    from personas.params import PersonaParams

    ours, _ = compute_features(load_events(PersonaParams(events_path=str(events))))
    theirs = pandas_features(pd.read_parquet(events))
    out = {
        "users": [len(ours), len(theirs)],
        "same_users": bool(ours.index.sort_values().equals(theirs.index.sort_values())),
    }
    theirs = theirs.reindex(ours.index)
    rows = {}
    for name in (*EXACT, *SMOOTHED, *[c for c in ours.columns if c.startswith("role_")]):
        if name not in ours or name not in theirs:
            rows[name] = {"missing": True}
            continue
        a, b = ours[name].to_numpy(), theirs[name].to_numpy()
        only_one = int((np.isnan(a) != np.isnan(b)).sum())
        both = ~np.isnan(a) & ~np.isnan(b)
        diff = np.abs(a[both] - b[both])
        rows[name] = {
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "users_differing": int((diff > 1e-9).sum()),
            "nan_in_one_side": only_one,
            "smoothed": name in SMOOTHED,
        }
        if name in SMOOTHED:
            rows[name]["max_abs_diff_smoothed_alike"] = float(
                np.nanmax(np.abs(a - smoothed_like_duckdb(theirs, name)))
            )
    out["features"] = rows
    return out


# -- timing from outside --------------------------------------------------------------------------


@dataclass
class Side:
    """One side at one size and what its runs measured."""

    name: str
    walls: list[float] = field(default_factory=list)
    peaks_mb: list[float] = field(default_factory=list)
    load_s: list[float] = field(default_factory=list)
    features_s: list[float] = field(default_factory=list)
    events: int | None = None
    users: int | None = None
    skipped: str = ""
    failed: str = ""


def timed(argv: list[str]) -> tuple[float, float, str, str]:
    """Run ``argv`` under ``/usr/bin/time -v``: (wall s, peak RSS MiB, stdout, error or '')."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", report.name, *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        text = report.read()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    seconds = (
        sum(float(p) * 60**i for i, p in enumerate(reversed(wall.group(1).split(":"))))
        if wall
        else float("nan")
    )
    peak_mb = int(peak.group(1)) / 1024 if peak else float("nan")
    error = ""
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:200]
        error = f"exit {proc.returncode}: {tail}"
    return seconds, peak_mb, proc.stdout, error


def mem_total_bytes() -> int:
    return int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) * 1024


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def warm_cache(path: Path) -> None:
    """Read the file once so that the first timed run does not alone pay the cold disk read."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def bench_size(users: int, runs: int) -> tuple[list[Side], int]:
    events = DATA / f"sample-{users}.parquet"
    if not events.exists():
        sys.exit(
            f"{events} does not exist; make it with "
            f".venv/bin/personas sample --users {users} --out {events}"
        )
    rows = parquet_rows(events)
    pandas_side, duckdb_side = Side("pandas"), Side("duckdb")
    need, limit = rows * BYTES_PER_ROW, PANDAS_MEMORY_SHARE * mem_total_bytes()
    if need > limit:
        pandas_side.skipped = (
            f"not run: {rows:,} rows × {BYTES_PER_ROW} B ≈ {need / 1e9:.1f} GB, "
            f"more than {PANDAS_MEMORY_SHARE:.0%} of this machine's "
            f"{mem_total_bytes() / 2**30:.1f} GiB"
        )
    sides = [s for s in (pandas_side, duckdb_side) if not s.skipped]
    warm_cache(events)
    for i in range(runs):
        for side in sides:
            argv = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--side",
                side.name,
                "--events",
                str(events),
            ]
            wall, peak, stdout, error = timed(argv)
            if error:
                side.failed = error
                print(
                    f"[{users} users] run {i + 1}/{runs} {side.name}: failed ({error}), "
                    f"{wall:.1f} s, {peak:.0f} MiB",
                    flush=True,
                )
                continue
            result = json.loads(stdout.strip().splitlines()[-1])
            side.walls.append(wall)
            side.peaks_mb.append(peak)
            side.load_s.append(result["load_s"])
            side.features_s.append(result["features_s"])
            side.events, side.users = result["events"], result["users"]
            print(
                f"[{users} users] run {i + 1}/{runs} {side.name}: {wall:.1f} s wall, "
                f"{peak:.0f} MiB, load {result['load_s']:.2f} s, "
                f"features {result['features_s']:.2f} s",
                flush=True,
            )
    return [pandas_side, duckdb_side], rows


# -- report ----------------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import duckdb

    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_total_bytes() / 2**30:.1f} GiB memory, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"pandas {pd.__version__}, DuckDB {duckdb.__version__}"
    )


def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or b == 0 else f"{a / b:.1f}×"


def size_table(users: int, sides: list[Side], rows: int) -> str:
    pandas_side, duckdb_side = sides
    lines = [
        f"### {users:,} users ({rows:,} events)",
        "",
        "| side | wall min (s) | wall median (s) | load / read (s) | features (s) "
        "| load + features (s) | peak RSS, max of runs (MiB) | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for side in sides:
        if side.skipped or not side.walls:
            lines.append(f"| {side.name} | – | – | – | – | – | – | {side.skipped or side.failed} |")
            continue
        load, feats = _med(side.load_s), _med(side.features_s)
        both = _med([a + b for a, b in zip(side.load_s, side.features_s)])
        note = side.failed and f"a run failed: {side.failed}"
        lines.append(
            f"| {side.name} | {min(side.walls):.1f} | {_med(side.walls):.1f} "
            f"| {load:.2f} | {feats:.2f} | {both:.2f} | {max(side.peaks_mb):.0f} "
            f"| {note} |"
        )
    if pandas_side.walls and duckdb_side.walls:
        p_both = _med([a + b for a, b in zip(pandas_side.load_s, pandas_side.features_s)])
        d_both = _med([a + b for a, b in zip(duckdb_side.load_s, duckdb_side.features_s)])
        lines += [
            "",
            f"**pandas / duckdb** (medians): wall "
            f"{_ratio(_med(pandas_side.walls), _med(duckdb_side.walls))}, load + features "
            f"{_ratio(p_both, d_both)}, features step alone "
            f"{_ratio(_med(pandas_side.features_s), _med(duckdb_side.features_s))}, "
            f"peak RSS {_ratio(max(pandas_side.peaks_mb), max(duckdb_side.peaks_mb))}.",
        ]
    if users in TARGETS and duckdb_side.walls:
        seconds, peak_limit = TARGETS[users]
        feats = _med(duckdb_side.features_s)
        both = _med([a + b for a, b in zip(duckdb_side.load_s, duckdb_side.features_s)])
        peak = max(duckdb_side.peaks_mb)
        verdict = lambda ok: "met" if ok else "**not met**"  # noqa: E731
        text = (
            f"Issue 6 target ≤ {seconds:.0f} s: features step {feats:.1f} s "
            f"({verdict(feats <= seconds)}), load + features {both:.1f} s "
            f"({verdict(both <= seconds)})"
        )
        if peak_limit is not None:
            text += (
                f"; ≤ 4 GB peak memory: {peak:.0f} MiB = {peak * 2**20 / 1e9:.2f} GB "
                f"({verdict(peak <= peak_limit)})"
            )
        lines += ["", text + "."]
    return "\n".join(lines)


def check_table(check: dict) -> str:
    rows = [
        "| feature | max abs difference | users differing (> 1e-9) | empty on one side only "
        "| max abs difference, pandas smoothed alike |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in check["features"].items():
        if r.get("missing"):
            rows.append(f"| {name} | (missing on one side) | | | |")
            continue
        label = f"{name} (smoothed in DuckDB)" if r["smoothed"] else name
        alike = (
            f"{r['max_abs_diff_smoothed_alike']:.3g}" if "max_abs_diff_smoothed_alike" in r else ""
        )
        rows.append(
            f"| {label} | {r['max_abs_diff']:.3g} | {r['users_differing']:,} "
            f"| {r['nan_in_one_side']:,} | {alike} |"
        )
    return "\n".join(rows)


def write_report(
    path: Path, tables: list[str], check: dict | None, check_users: int, argv: list[str], runs: int
) -> None:
    command = " ".join([".venv/bin/python bench/features.py", *argv])
    if check is None:
        check_text = "Not run (`--check-users 0`)."
    else:
        check_text = (
            f"On the {check_users:,}-user sample ({check['users'][0]:,} users in "
            f"DuckDB, {check['users'][1]:,} in pandas; same set of users: "
            f"{'yes' if check['same_users'] else 'no'}), per feature, the largest "
            "absolute difference between DuckDB's value and pandas', over users where "
            "both have one. The smoothed rates differ by design (pandas' are plain "
            "ratios, empty where the denominator is 0); the last column smooths "
            "pandas' counts the way `feature_sql` does, (k + 5 p) / (n + 5) with p the "
            "population rate, to show that smoothing is the whole difference.\n\n"
            + check_table(check)
        )
    text = f"""# The feature step: DuckDB SQL against pandas

Time and memory of the behaviour features (issue 6) in `personas` (DuckDB SQL:
`personas.load.load_events` then `personas.features.compute_features`) against the pandas
`groupby` code an analyst would write for the same features
([`bench/features.py`](../bench/features.py), `pandas_features`: `pd.read_parquet` of the whole
log, sort, sessions cut at 30 minutes of silence, `groupby`), on planted samples from
`personas sample`.

- **Machine**: {machine()}
- **Date**: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}
- **Runs**: {runs} per side and size, interleaved (pandas, duckdb, pandas, duckdb, ...), each a
  fresh process under `/usr/bin/time -v`; the Parquet file is read once before the first run so
  that neither side alone pays a cold disk

Reproduce:

```bash
{command}
```

{chr(10).join(tables)}

## Do the two sides compute the same thing?

{check_text}

## How to read this

- **Wall** is the whole process under `/usr/bin/time -v`: interpreter start-up and imports
  included. **load / read** and **features** are measured inside the process: for pandas,
  `pd.read_parquet` of every column, then everything else (sort, sessions, `groupby`); for DuckDB,
  `load_events` (read the Parquet file, type and clean the rows, map event names to roles, then
  one sort per user that drops exact duplicates and cuts sessions, summed per user as it leaves
  the sort into the table `user_activity`), then `compute_features` (the feature SQL over those
  tallies, the role counts, and the result as a pandas frame of one row per user).
- The **features step alone is not like for like**: DuckDB does most of the feature work in its
  load step's one pass, pandas in its features step. **load + features** and **wall** compare the same work, from
  the file on disk to one row per user; the ratios are pandas divided by DuckDB, medians.
- **Peak RSS** is the process's largest resident memory. DuckDB is capped at 3 GB
  (`DUCKDB_MEMORY_LIMIT` in `personas/load/stage.py`) and spills to a temporary folder beyond it;
  its events never become a pandas frame. pandas holds the whole log, a sorted copy and the
  helper columns in memory, so it is not run where `rows × 100 bytes` exceeds 60 % of the
  machine's memory.
- The pandas side computes the same 31 catalogue features and role counts, but rates
  (discount_share, email_click_rate, view_to_cart, cart_to_purchase, search_share) are **plain**
  ratios, empty where the denominator is 0, where `personas` smooths them towards the population
  rate. It does no input validation, cleaning or de-duplication and has no role vocabulary: it
  knows the sample's eight event names. It is vectorised `groupby` throughout (no `apply`, no
  per-user loop), as a careful analyst would write it, and not tuned beyond that.
- At small sizes the wall times are dominated by fixed costs: interpreter start-up and imports
  (`personas` imports DuckDB, pandas and PyYAML), which the in-process columns leave out.
- The machine is shared and has 2 cores; with few runs min and median are both given. A wide gap
  between them says the machine was busy.
"""
    path.write_text(text, encoding="utf-8")


def link_from_benchmarks(path: Path) -> None:
    """Put LINK_LINE below KEEP_MARKER at the end of docs/benchmarks.md (once)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if KEEP_MARKER not in text:
        text = text.rstrip("\n") + "\n\n" + KEEP_MARKER + "\n"
    if LINK_LINE not in text.split(KEEP_MARKER, 1)[1]:
        text = text.rstrip("\n") + "\n\n" + LINK_LINE + "\n"
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=[20000],
        help="sample sizes, bench/data/sample-N.parquet (default 20000)",
    )
    parser.add_argument("--runs", type=int, default=2, help="runs per side and size (default 2)")
    parser.add_argument(
        "--check-users",
        type=int,
        default=20000,
        help="sample on which pandas and DuckDB values are compared "
        "(default 20000; 0 skips the check)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "features-bench.md",
        help="markdown report (default docs/features-bench.md)",
    )
    parser.add_argument(
        "--benchmarks",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="page that links the report (default docs/benchmarks.md)",
    )
    parser.add_argument("--side", choices=("pandas", "duckdb", "check"), help=argparse.SUPPRESS)
    parser.add_argument("--events", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side:  # one measured process, started by the parent below
        run = {"pandas": run_pandas, "duckdb": run_duckdb, "check": run_check}[args.side]
        print(json.dumps(run(args.events)))
        return

    check = None
    if args.check_users:
        events = DATA / f"sample-{args.check_users}.parquet"
        proc = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--side",
                "check",
                "--events",
                str(events),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        if proc.returncode != 0:
            sys.exit(f"value check failed:\n{proc.stderr[-3000:]}")
        check = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"value check on {args.check_users:,} users (DuckDB minus pandas, max abs):")
        for name, r in check["features"].items():
            if not r.get("missing"):
                print(
                    f"  {name:24s} {r['max_abs_diff']:.3g}  ({r['users_differing']} users "
                    f"differ, {r['nan_in_one_side']} empty on one side)"
                    + (
                        f"  [smoothed in DuckDB; pandas smoothed alike: "
                        f"{r['max_abs_diff_smoothed_alike']:.3g}]"
                        if r["smoothed"]
                        else ""
                    )
                )
    tables = []
    for users in args.users:
        sides, rows = bench_size(users, args.runs)
        tables.append(size_table(users, sides, rows))
    write_report(args.out, tables, check, args.check_users, sys.argv[1:], args.runs)
    link_from_benchmarks(args.benchmarks)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
