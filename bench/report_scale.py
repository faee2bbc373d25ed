"""The report step at 1,000,000 users: HTML size, render and export time -> docs/report-scale.md.

Fitting a model on a million users is not what this measures (see bench/run.py for that), so the
run is staged the cheap way: the features and model steps run on a small bundled sample, then the
staged features and assignments are replicated until they hold ``--users`` rows (ids made unique
with a ``~k`` suffix). ``report_step`` then does all its real work on that many users: read the
features, profile and name the personas, write personas.json/csv and assignments.parquet/csv,
compare with the small run (``compare_to``), render index.html and publish. The same is done at the
small size, for contrast.

Each report step runs in a fresh process (spawned), as in notebook 03_report: importing the
report's libraries is timed apart from the step, and the peak memory is the step's own.

Usage::

    .venv/bin/python bench/report_scale.py             # 3,000, 250,000 and 1,000,000 users, 2 runs
    .venv/bin/python bench/report_scale.py --users 2000000 --runs 1 --out /tmp/report-scale.md
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
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

from personas import PersonaParams, pipeline  # noqa: E402

REPLICA_SEP = "~"  # user u0000042 becomes u0000042~0, u0000042~1, ...


# -- staging ---------------------------------------------------------------------------------------


def stage_small_run(work: Path, base_users: int) -> Path:
    """Run the features and model steps on the bundled sample; keep the staged folder."""
    params = PersonaParams(sample_users=base_users, output_dir=str(work / "base"), random_state=0)
    pipeline.features_step(params)
    pipeline.model_step(params)
    pristine = work / "staged-small"
    os.replace(pipeline.stage_dir(params), pristine)
    (pristine / "planted.parquet").unlink(missing_ok=True)  # only the bundled sample has one
    return pristine


def _replicate(frame: pd.DataFrame, copies: int, users: int) -> pd.DataFrame:
    """``frame`` repeated ``copies`` times and cut to ``users`` rows."""
    return pd.concat([frame] * copies, ignore_index=True).iloc[:users]


def _replica_ids(ids: pd.Series | pd.Index, copies: int, users: int) -> np.ndarray:
    base = np.asarray(ids, dtype=str)
    suffix = np.repeat(np.arange(copies), len(base)).astype(str)
    return np.char.add(np.char.add(np.tile(base, copies), REPLICA_SEP), suffix)[:users]


def inflate(stage: Path, users: int) -> None:
    """Replicate the staged features and assignments to ``users`` rows, in place."""
    features = pd.read_parquet(stage / "features.parquet")
    assignments = pd.read_parquet(stage / "assignments.parquet")
    copies = -(-users // len(features))
    ids = _replica_ids(features.index, copies, users)
    big = _replicate(features.reset_index(drop=True), copies, users)
    big.index = pd.Index(ids, name=features.index.name)
    big.to_parquet(stage / "features.parquet")
    big_assignments = _replicate(assignments, copies, users)
    big_assignments["user_id"] = _replica_ids(assignments["user_id"], copies, users)
    big_assignments.to_parquet(stage / "assignments.parquet", index=False)
    state = json.loads((stage / pipeline.STATE).read_text(encoding="utf-8"))
    factor = users / state["counts"]["users"]
    state["counts"] = {k: round(v * factor) for k, v in state["counts"].items()}
    state["started"] = time.time()
    (stage / pipeline.STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")


# -- one timed report step (in a spawned process) -------------------------------------------------


def _timed_report_step(output_dir: str, compare_to: str, queue) -> None:
    """Child process: run report_step, timing its render and export parts; report to ``queue``."""
    start = time.perf_counter()
    from personas import report as report_package

    parts: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    report_package.render_report = timed("render", report_package.render_report)
    pipeline._write_exports = timed("exports", pipeline._write_exports)
    imported = time.perf_counter() - start
    params = PersonaParams(output_dir=output_dir, compare_to=compare_to)
    t0 = time.perf_counter()
    result = pipeline.report_step(params)
    step = time.perf_counter() - t0
    rest = (
        step
        - parts.get("render", 0)
        - parts.get("exports", 0)
        - (result.info["timings_s"].get("profile") or 0)
    )
    queue.put(
        {
            "step_s": step,
            "rest_s": rest,
            "imports_s": imported,
            **{f"{k}_s": v for k, v in parts.items()},
            "profile_s": result.info["timings_s"].get("profile"),
            "peak_rss_mib": peak_rss_mib(),
            "personas": len(result.profiles),
        }
    )


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage, not inherited from the parent
    that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report_once(pristine: Path, target: Path, compare_to: str) -> dict:
    """Copy the staged run into place, run report_step on it in a fresh process."""
    params = PersonaParams(output_dir=str(target))
    stage = pipeline.stage_dir(params)
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(pristine, stage)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_timed_report_step, args=(str(target), compare_to, queue))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"report step failed (exit code {child.exitcode})")
    measured = queue.get()
    for name in (
        "index.html",
        "assignments.csv",
        "assignments.parquet",
        "personas.csv",
        "personas.json",
        "run.json",
    ):
        measured[f"{name}_bytes"] = (target / name).stat().st_size
    return measured


# -- the markdown ----------------------------------------------------------------------------------


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs, {memory:.1f} GiB memory, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def _s(runs: list[dict], key: str) -> str:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return "–"
    return f"{min(values):.2f} / {statistics.median(values):.2f}"


def write_markdown(path: Path, results: dict[int, list[dict]], argv: list[str]) -> None:
    sizes = sorted(results)
    command = " ".join([".venv/bin/python bench/report_scale.py", *argv])
    head = "| | " + " | ".join(f"{n:,} users" for n in sizes) + " |"
    rule = "|---|" + "---:|" * len(sizes)

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(results[n]) for n in sizes) + " |"

    table = "\n".join(
        [
            head,
            rule,
            row("report step, whole (s, min / median)", lambda r: _s(r, "step_s")),
            row("… profile and name (s)", lambda r: _s(r, "profile_s")),
            row(
                "… write personas.json/csv, assignments.parquet/csv (s)",
                lambda r: _s(r, "exports_s"),
            ),
            row("… render index.html (s)", lambda r: _s(r, "render_s")),
            row(
                "… the rest: read features and assignments, heatmap table, compare, run.json (s)",
                lambda r: _s(r, "rest_s"),
            ),
            row("importing personas.report before the step (s)", lambda r: _s(r, "imports_s")),
            row(
                "peak memory of the process (MiB, max)",
                lambda r: f"{max(x['peak_rss_mib'] for x in r):,.0f}",
            ),
            row("`index.html`", lambda r: _mb(r[-1]["index.html_bytes"])),
            row("`assignments.csv`", lambda r: _mb(r[-1]["assignments.csv_bytes"])),
            row("`assignments.parquet`", lambda r: _mb(r[-1]["assignments.parquet_bytes"])),
            row("`personas.csv`", lambda r: _mb(r[-1]["personas.csv_bytes"])),
            row("personas", lambda r: str(r[-1]["personas"])),
        ]
    )
    runs = len(next(iter(results.values())))
    top = results[sizes[-1]]
    median = lambda key: statistics.median(r[key] for r in top)  # noqa: E731
    text = f"""# The report at {sizes[-1]:,} users

Size of `index.html` and time of the report step (`pipeline.report_step`: profile, name, exports,
render) when a run has {sizes[-1]:,} users. Written by
[`bench/report_scale.py`](../bench/report_scale.py); rerun it to refresh this page.

**At {sizes[-1]:,} users `index.html` is {_mb(top[-1]["index.html_bytes"])} (the limit is 5 MB) and
rendering it takes {median("render_s"):.1f} s; the whole report step, exports included, takes
{median("step_s"):.1f} s** (medians).

- **Machine**: {machine()}
- **Date**: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}
- **Runs**: {runs} per size, each report step in a fresh process

```bash
{command}
```

The features and model steps run once on the bundled sample ({sizes[0]:,} users); the staged
features and assignments are then replicated to each larger size, so the report step does all its
real work on that many users without a model fit of that size. The larger runs also compare their
personas with the small run (`compare_to`), so the comparison section is part of their time.

{table}

## How to read this

- Times are min / median over the runs; the machine is shared, so the median is the safer figure.
- *Importing personas.report* (matplotlib, Jinja2) happens once per process, in the `03_report`
  notebook or `personas run`; it is not part of the step's time.
- `index.html` does not grow with the users: the map draws at most 3,000 sampled users
  (`MAP_POINTS` in `personas/report/render.py`, and the model step already samples its map), and
  every other part of the report is per persona or per feature.
- What grows with the users is profiling (statistics per persona over every user) and the exports
  (`assignments.csv` has one row per user); both are linear in the users.
"""
    path.write_text(text, encoding="utf-8")


def _public_argv(argv: list[str]) -> list[str]:
    """The command line to print as the way to reproduce: without the scratch folder."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--work":
            skip = True
        elif not arg.startswith("--work="):
            out.append(arg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users",
        type=int,
        nargs="+",
        default=[250_000, 1_000_000],
        help="users of the larger runs (default 250000 1000000)",
    )
    parser.add_argument(
        "--base-users",
        type=int,
        default=3000,
        help="users of the bundled sample the model is fitted on (default 3000)",
    )
    parser.add_argument("--runs", type=int, default=2, help="report steps per size (default 2)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "report-scale.md",
        help="markdown report (default docs/report-scale.md)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch folder (default: a temporary folder, removed at the end)",
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="report-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"staging a {args.base_users:,}-user run in {work} ...", flush=True)
        staged = {args.base_users: stage_small_run(work, args.base_users)}
        for users in args.users:
            staged[users] = work / f"staged-{users}"
            shutil.copytree(staged[args.base_users], staged[users])
            inflate(staged[users], users)
        results: dict[int, list[dict]] = {users: [] for users in staged}
        previous = work / "run-small"
        for i in range(args.runs):
            for users, pristine in staged.items():
                small = users == args.base_users
                target = previous if small else work / f"run-{users}"
                measured = report_once(pristine, target, "" if small else str(previous))
                results[users].append(measured)
                print(
                    f"run {i + 1}, {users:,} users: report step {measured['step_s']:.2f} s, "
                    f"render {measured['render_s']:.2f} s, "
                    f"exports {measured['exports_s']:.2f} s, "
                    f"index.html {_mb(measured['index.html_bytes'])}",
                    flush=True,
                )
        write_markdown(args.out, results, _public_argv(sys.argv[1:]))
        print(f"wrote {args.out}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
