"""Try every bad input and awkward export on the real command line; write docs/robustness.md.

    .venv/bin/python tools/robustness.py               # ~20 min with the faults and the soak
    .venv/bin/python tools/robustness.py --no-faults   # ~3 min, keeps the faults section

Each case writes its input into a folder of its own, runs ``personas run --no-notebooks`` there
(as a separate process, the way a user would) and records the command, the exit code, the exact
stderr and whether anything was written. The document is generated from those runs so that it
cannot drift from what the program does; ``tests/test_cli_errors.py`` imports :data:`CASES` from
here and fails when a case no longer exits as documented or its error line is no longer the one
in the document (then re-run this script).

Bad inputs fail before the model is fitted, so they take a second or two each. The dirty-but-usable
rows are all put into one small log and run once, end to end (about half a minute, most of it
numba compiling UMAP once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "robustness.md"
PERSONAS = ROOT / ".venv" / "bin" / "personas"
COMMAND = ("run", "--no-notebooks")  # every case runs `personas run --no-notebooks ...`
NOBODY = 65534  # uid/gid of the unprivileged user for one case


# -- inputs ----------------------------------------------------------------------------------------


def shop(n_users: int = 60) -> pd.DataFrame:
    """A clean little log: each user views a page and buys, on a day of May 2024."""
    users = [f"u{i:03d}" for i in range(n_users)]
    return pd.DataFrame(
        {
            "user_id": [u for u in users for _ in range(2)],
            "timestamp": [
                f"2024-05-{1 + i % 30:02d} {hour}:00:00"
                for i in range(n_users)
                for hour in (10, 11)
            ],
            "event": ["page_view", "purchase"] * n_users,
            "amount": [None, 20.0] * n_users,
        }
    )


def _csv(frame: pd.DataFrame, name: str = "events.csv", **to_csv) -> Callable[[Path], None]:
    return lambda folder: frame.to_csv(folder / name, index=False, **to_csv)


def _bytes(data: bytes, name: str = "events.csv") -> Callable[[Path], None]:
    return lambda folder: (folder / name).write_bytes(data)


def _unreadable(folder: Path) -> None:
    shop().to_csv(folder / "events.csv", index=False)
    (folder / "events.csv").chmod(0)


def _nothing(folder: Path) -> None:
    """No input file at all."""


def _with_bad_times() -> pd.DataFrame:
    frame = shop()
    frame.loc[[3, 8], "timestamp"] = ["last tuesday", "31/05/2024"]
    return frame


def _with_far_time() -> pd.DataFrame:
    frame = shop()
    frame.loc[7, "timestamp"] = "0000-06-01 10:00:00"
    return frame


def _with_bad_amount() -> pd.DataFrame:
    frame = shop().astype({"amount": object})
    frame.loc[5, "amount"] = "€12,50"
    return frame


def _with_thousands() -> pd.DataFrame:
    frame = shop().astype({"amount": object})
    frame["amount"] = frame["amount"].map(lambda a: "" if pd.isna(a) else "20,00")
    frame.loc[5, "amount"] = "1.234,50"
    return frame


def _evil_rules(folder: Path) -> None:
    shop().to_csv(folder / "events.csv", index=False)
    (folder / "rules.yaml").write_text("!!python/object/apply:os.system ['touch pwned']\n")


def _with_bad_quantity() -> pd.DataFrame:
    frame = shop()
    frame["quantity"] = frame["event"].map({"purchase": "1", "page_view": ""})
    frame.loc[5, "quantity"] = "2 pcs"
    return frame


def _export(n_users: int = 300, seed: int = 5) -> pd.DataFrame:
    """A planted sample whose texts hold what exports garble: ids with accents, a category with
    a euro sign, a note with a comma, a quote and a line break."""
    from personas.sample import make_events

    frame, _ = make_events(n_users, seed)
    frame = frame.drop(columns=["category"]).drop_duplicates(ignore_index=True)
    frame["user_id"] = "clé-" + frame["user_id"].astype(str)
    frame["category"] = "€ offres"
    frame["note"] = 'vu, "à revoir"\nplus tard'
    return frame


def _export_csv(name: str, **to_csv) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        _export().to_csv(folder / name, index=False, **to_csv)

    return write


def _mixed_endings(folder: Path) -> None:
    """Header ending in CRLF, rows in LF: a header typed on another system."""
    body = _export().drop(columns="note").to_csv(index=False, lineterminator="\n")
    header, rows = body.split("\n", 1)
    (folder / "events.csv").write_bytes((header + "\r\n" + rows).encode("utf-8"))


def _parquet_parts(bad: str) -> Callable[[Path], None]:
    """A folder of three Parquet files; the last is garbage or lacks the user column."""

    def write(folder: Path) -> None:
        parts = folder / "events"
        parts.mkdir()
        frame = shop(90)
        for i, chunk in enumerate((frame[:60], frame[60:120])):
            chunk.to_parquet(parts / f"part-{i}.parquet", index=False)
        if bad == "garbage":
            (parts / "part-2.parquet").write_bytes(b"PAR1" + b"\x13\x37" * 500)
        else:
            frame[120:].drop(columns="user_id").to_parquet(parts / "part-2.parquet", index=False)

    return write


DIRTY_COUNTS = {
    "null_user": 3,
    "null_time": 4,
    "outside_window": 6,
    "future": 2,
    "negative_amount": 2,
    "negative_quantity": 2,
    "missing_amount": 5,
    "duplicate": 5,
}


def dirty_log(n_users: int = 400, seed: int = 5) -> pd.DataFrame:
    """A planted sample (events in 2024) with known numbers of every kind of dirty row.

    The counts are :data:`DIRTY_COUNTS`; missing amounts include the two negative ones, which the
    cleaning sets to missing. Purchases carry a ``quantity`` of 1, two of them -1 (returns).
    The run uses ``-p start=2024-01-01``, so the rows put in 2023 are
    the ones outside the window.
    """
    from personas.sample import make_events

    base, _ = make_events(n_users, seed)
    base = base.drop_duplicates(ignore_index=True)
    buys = base.index[base["event"] == "purchase"]
    # the rules below count only what we add: the sample itself must be clean
    assert base["amount"][buys].notna().all() and (base["amount"][buys] > 0).all()
    assert base["timestamp"].min() >= pd.Timestamp("2024-01-01")
    dirty = base.copy()
    dirty.loc[buys[:2], "amount"] *= -1  # refunds
    dirty.loc[buys[2:5], "amount"] = float("nan")  # unpriced purchases
    dirty["quantity"] = dirty["event"].eq("purchase").map({True: 1.0, False: None})
    dirty.loc[buys[5:7], "quantity"] = -1.0  # returned items
    some = base.iloc[10:16].reset_index(drop=True)
    extra = [
        some.iloc[:3].assign(user_id=None),  # no user id
        some.iloc[:4].assign(timestamp=pd.NaT),  # no time
        some.iloc[:6].assign(timestamp=pd.Timestamp("2023-06-15 12:00")),  # before start
        some.iloc[:2].assign(timestamp=pd.Timestamp("2099-01-01 09:00")),  # in the future
        dirty.loc[dirty.index.difference(buys[:7])[-5:]],  # exact duplicates
    ]
    return pd.concat([dirty, *extra], ignore_index=True)


# -- the cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One input tried on the command line, and the exit code it must give."""

    title: str  # the input, in the words of issue 5
    given: str  # what the case folder holds
    args: tuple[str, ...]  # after `personas run --no-notebooks`
    write: Callable[[Path], None] = _nothing
    exit_code: int = 2
    quality: dict = field(default_factory=dict)  # usable input: rows run.json counts per rule
    unprivileged: bool = False  # root reads any file: run as an ordinary user
    export: str = ""  # an export's quirk: the run must read it as pandas does

    @property
    def usable(self) -> bool:
        return self.exit_code == 0

    @property
    def dirty(self) -> bool:
        return self.usable and not self.export

    @property
    def command(self) -> str:
        return " ".join(["personas", *COMMAND, *self.args])


EVENTS = ("--events", "events.csv", "--out", "run")
CASES: tuple[Case, ...] = (
    Case("missing path", "nothing", EVENTS),
    Case(
        "unreadable file",
        "`events.csv` without read permission (mode 000)",
        EVENTS,
        _unreadable,
        unprivileged=True,
    ),
    Case(
        "binary file",
        "`events.csv` holding 4 KiB of binary bytes",
        EVENTS,
        _bytes(bytes(range(256)) * 16),
    ),
    Case(
        "garbage that looks like Parquet",
        "`events.parquet`: the Parquet magic bytes, then garbage",
        ("--events", "events.parquet", "--out", "run"),
        _bytes(b"PAR1" + b"\x13\x37" * 500, "events.parquet"),
    ),
    Case("empty file", "`events.csv` of zero bytes", EVENTS, _bytes(b"")),
    Case(
        "header only",
        "`events.csv` with a header row and nothing else",
        EVENTS,
        _bytes(b"user_id,timestamp,event,amount\n"),
    ),
    Case(
        "user column missing",
        "60 users; the user column is called `uid`",
        EVENTS,
        _csv(shop().rename(columns={"user_id": "uid"})),
    ),
    Case(
        "time column missing",
        "60 users; the time column is called `when`",
        EVENTS,
        _csv(shop().rename(columns={"timestamp": "when"})),
    ),
    Case(
        "mapped column missing, no plausible name",
        "60 users; columns `user_id`, `timestamp`, `amount`, and `event_col` names `action`",
        (*EVENTS, "-p", "event_col=action"),
        _csv(shop().drop(columns="event")),
    ),
    Case(
        "unparsable timestamps",
        "60 users; two times are `last tuesday` and `31/05/2024`",
        EVENTS,
        _csv(_with_bad_times()),
    ),
    Case(
        "timestamps outside the years 1 to 9999",
        "60 users; one time is `0000-06-01`",
        EVENTS,
        _csv(_with_far_time()),
    ),
    Case(
        "non-numeric amounts", "60 users; one amount is `€12,50`", EVENTS, _csv(_with_bad_amount())
    ),
    Case(
        "non-numeric quantities",
        "60 users; one quantity is `2 pcs`",
        EVENTS,
        _csv(_with_bad_quantity()),
    ),
    Case("too few users", "5 users", EVENTS, _csv(shop(5))),
    Case("unknown -p parameter", "60 users", (*EVENTS, "-p", "max_persona=6"), _csv(shop())),
    Case("value of the wrong type", "60 users", (*EVENTS, "-p", "max_personas=six"), _csv(shop())),
    Case("value out of range", "60 users", (*EVENTS, "-p", "min_personas=1"), _csv(shop())),
    Case("-p without a value", "60 users", (*EVENTS, "-p", "max_personas"), _csv(shop())),
    Case(
        "unwritable output path",
        "60 users",
        ("--events", "events.csv", "--out", "/proc/personas/run"),
        _csv(shop()),
    ),
    Case("unparsable start", "60 users", (*EVENTS, "-p", "start=2024-13-01"), _csv(shop())),
    Case(
        "start after end",
        "60 users",
        (*EVENTS, "-p", "start=2024-06-01", "-p", "end=2024-05-01"),
        _csv(shop()),
    ),
    Case(
        "window that leaves no events",
        "60 users, events in May 2024",
        (*EVENTS, "-p", "start=2023-01-01", "-p", "end=2023-12-31"),
        _csv(shop()),
    ),
    Case(
        "unparsable reference_date",
        "60 users",
        (*EVENTS, "-p", "reference_date=yesterday"),
        _csv(shop()),
    ),
    Case(
        "reference_date before the last event",
        "60 users, the last event on 2024-05-30",
        (*EVENTS, "-p", "reference_date=2024-05-01"),
        _csv(shop()),
    ),
    Case(
        "thousands separators with a decimal comma",
        "60 users, `;`-separated; one amount is `1.234,50`",
        EVENTS,
        _csv(_with_thousands(), sep=";"),
    ),
    Case(
        "folder of Parquet with one corrupt file",
        "`events/` with three Parquet files; "
        "`part-2.parquet` is the Parquet magic bytes, then garbage",
        ("--events", "events", "--out", "run"),
        _parquet_parts("garbage"),
    ),
    Case(
        "folder of Parquet with one file of another schema",
        "`events/` with three Parquet files; `part-2.parquet` has no `user_id` column",
        ("--events", "events", "--out", "run"),
        _parquet_parts("schema"),
    ),
    Case(
        "YAML file with a Python tag",
        "60 users; `rules.yaml` holds `!!python/object/apply:os.system ['touch pwned']`",
        (*EVENTS, "-p", "rules_path=rules.yaml"),
        _evil_rules,
    ),
    Case(
        "memory_limit that is not a size",
        "60 users",
        (*EVENTS, "-p", "memory_limit=lots"),
        _csv(shop()),
    ),
    Case(
        "dirty but usable rows",
        "a planted sample of 400 users in 2024 with 3 rows without "
        "a user id, 4 without a time, 6 in 2023 (before `start`), 2 in 2099, 2 negative and 3 "
        "missing purchase amounts, 2 negative quantities, and 5 exact duplicate rows",
        (*EVENTS, "-p", "start=2024-01-01", "-p", "sample_size=400"),
        lambda folder: dirty_log().to_csv(folder / "events.csv", index=False),
        exit_code=0,
        quality=DIRTY_COUNTS,
    ),
    *(
        Case(title, given, (*EVENTS, "-p", "sample_size=300"), write, exit_code=0, export=title)
        for title, given, write in (
            (
                "UTF-8 with a byte-order mark",
                "written with `encoding='utf-8-sig'`",
                _export_csv("events.csv", encoding="utf-8-sig"),
            ),
            (
                "Excel's European CSV",
                "`;` as separator, `,` as decimal mark, a byte-order mark and Windows line endings",
                _export_csv(
                    "events.csv", sep=";", decimal=",", encoding="utf-8-sig", lineterminator="\r\n"
                ),
            ),
            (
                "mixed line endings",
                "the header ends in `\\r\\n`, the rows in `\\n`",
                _mixed_endings,
            ),
            (
                "Latin-1 text",
                "encoded as ISO-8859-1 (the euro sign dropped)",
                lambda folder: (
                    _export()
                    .assign(category="offres")
                    .to_csv(folder / "events.csv", index=False, encoding="latin-1")
                ),
            ),
            (
                "Windows-1252 text",
                "encoded as cp1252, euro signs included",
                _export_csv("events.csv", encoding="cp1252"),
            ),
            (
                "quoted fields with line breaks",
                'every row\'s `note` is `vu, "à revoir"` and a line break inside quotes',
                _export_csv("events.csv"),
            ),
        )
    ),
)


# -- running them ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    exit_code: int
    stderr: str
    written: list[str]  # names that appeared in the case folder, besides the input
    run_json: dict | None  # usable input: the run's run.json


def try_case(case: Case, folder: Path, run: Callable[[Case, Path], tuple[int, str]]) -> Outcome:
    """Write the case's input into ``folder``, run it with ``run`` and see what it left."""
    case.write(folder)
    before = {p.name for p in folder.iterdir()}
    code, stderr = run(case, folder)
    # a relative --out is shown as the run folder it became: name it as given, not the temp path
    stderr = stderr.replace(f"{folder}{os.sep}", "")
    written = sorted({p.name for p in folder.iterdir()} - before)
    run_json = folder / "run" / "run.json"
    info = json.loads(run_json.read_text(encoding="utf-8")) if run_json.is_file() else None
    return Outcome(code, stderr, written, info)


def run_process(case: Case, folder: Path) -> tuple[int, str]:
    """The real command, as its own process, in the case folder."""
    prefix: list[str] = []
    if case.unprivileged and os.geteuid() == 0:
        folder.parent.chmod(0o755)  # the ordinary user must reach the folder to be refused
        folder.chmod(0o777)  # the file, and may write the run there
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    done = subprocess.run(
        [*prefix, str(PERSONAS), *COMMAND, *case.args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stderr


# -- the document ----------------------------------------------------------------------------------

HEAD = """# Robustness: bad input, awkward exports and faults

Generated by `.venv/bin/python tools/robustness.py` from real runs; do not edit by hand. Three
parts: bad input (each stops with one sentence), files as people export them (each loads), and
faults a scheduled run meets (killed runs, full disks, two runs at once, with a soak of 20 runs
killed at random). `tests/test_cli_errors.py` checks that every bad input below still exits with
the code shown and prints the error line shown; `tests/test_faults.py` tests each fault.

Each case ran in an empty folder holding only its input, as `personas run --no-notebooks ...`
(`personas` is `.venv/bin/personas`; `--no-notebooks` runs the same steps without papermill,
and the notebooks path stops with the same message). The contract for bad input: exit code 2, one
`personas: error:` line that names the file, column or parameter and says what to do, no
traceback (`--debug` shows one), and no output folder. Progress lines before the error show how
far the run got.

"""

USABLE_INTRO = """## Dirty but usable rows

These are not errors: each kind is dropped or repaired by a stated rule, counted, and listed under
`data_quality` in `run.json` and in the report's data-quality table. All kinds were put into one
log and run once, end to end.

"""


def _fence(text: str, kind: str = "text") -> str:
    return f"```{kind}\n{text.rstrip()}\n```\n"


def _bad_section(number: int, case: Case, outcome: Outcome) -> str:
    written = ", ".join(outcome.written) or "nothing"
    note = (
        " Run as an ordinary user: root may read any file, so a root run reads it."
        if case.unprivileged
        else ""
    )
    return (
        f"### {number}. {case.title}\n\nInput: {case.given}.{note}\n\n"
        + _fence(f"$ {case.command}", "console")
        + f"\nExit code **{outcome.exit_code}**; written: {written}. Stderr:\n\n"
        + _fence(outcome.stderr or "(nothing)")
        + "\n"
    )


def _usable_section(case: Case, outcome: Outcome) -> str:
    from personas.load import CLEANING_RULES

    info = outcome.run_json or {}
    rows = info.get("data_quality", {}).get("rows", {})
    table = ["| rule | rows | what happens |", "|---|---:|---|"]
    table += [
        f"| `{rule}` | {rows.get(rule, '—')} | {text} |" for rule, text in CLEANING_RULES.items()
    ]
    summary = {key: info.get(key) for key in ("counts",)}
    summary["input"] = {
        k: v
        for k, v in info.get("input", {}).items()
        if k in ("time_format", "window", "window_applied", "reference_date")
    }
    return (
        USABLE_INTRO
        + f"Input: {case.given}.\n\n"
        + _fence(f"$ {case.command}", "console")
        + f"\nExit code **{outcome.exit_code}**. Stderr (timings vary from run to run):\n\n"
        + _fence(outcome.stderr)
        + "\nThe rows each rule touched, from `run.json` "
        "(`data_quality.rows`); a row breaking two rules counts under both and is dropped "
        "once:\n\n"
        + "\n".join(table)
        + "\n\nand what `run.json` records about the input:\n\n"
        + _fence(json.dumps(summary, indent=2), "json")
    )


EXPORTS_INTRO = """## Files as people export them

Each file holds the same planted log of 300 users: ids like `clé-u0000001`, a `category` of
`€ offres`, a `note` with a comma, quotes and a line break, written the way a tool or a
spreadsheet exports it. Each must load as pandas loads it: every user (the accents kept, so 300
distinct ids) and every event.

| file | written as | exit code | users | events | read as |
|---|---|---:|---:|---:|---|
"""


def _exports_section(results: list[tuple[Case, Outcome]]) -> str:
    rows = []
    for case, outcome in results:
        info = outcome.run_json or {}
        counts = info.get("counts", {})
        read_as = info.get("input", {}).get("read_as") or "UTF-8, as sniffed"
        rows.append(
            f"| {case.title} | {case.given} | {outcome.exit_code} | "
            f"{counts.get('users', '—')} | {counts.get('events', '—'):,} | {read_as} |"
        )
    command = _fence(f"$ {results[0][0].command}", "console") if results else ""
    return EXPORTS_INTRO + "\n".join(rows) + "\n\nEach ran as\n\n" + command + "\n"


def render(results: list[tuple[Case, Outcome]], faults: str = "") -> str:
    bad = [(c, o) for c, o in results if not c.usable]
    summary = ["| # | bad input | exit code | written |", "|---:|---|---:|---|"]
    summary += [
        f"| {i} | {c.title} | {o.exit_code} | {', '.join(o.written) or 'nothing'} |"
        for i, (c, o) in enumerate(bad, 1)
    ]
    parts = [HEAD, "\n".join(summary), "\n\n## Bad input\n\n"]
    parts += [_bad_section(i, c, o) for i, (c, o) in enumerate(bad, 1)]
    parts += [_usable_section(c, o) for c, o in results if c.dirty]
    parts.append("\n" + _exports_section([(c, o) for c, o in results if c.export]))
    if faults:
        parts.append("\n" + faults)
    return "".join(parts)


def _faults_section(rerun: bool, soak_runs: int) -> str:
    """tools/faults.py's section: run again, or kept from the current document."""
    if rerun:
        sys.path.insert(0, str(ROOT / "tools"))
        from faults import run_all

        return run_all(soak_runs)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    return text[text.index(FAULTS_HEAD) :] if FAULTS_HEAD in text else ""


FAULTS_HEAD = "## Faults: "


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--no-faults",
        action="store_true",
        help="keep the faults section of "
        "the current document instead of running tools/faults.py (~15 min)",
    )
    parser.add_argument("--soak", type=int, default=20, help="runs in the soak (default 20)")
    args = parser.parse_args()
    if not PERSONAS.exists():
        print(f"{PERSONAS} not found; run `make setup` first", file=sys.stderr)
        return 1
    results, wrong = [], []
    with tempfile.TemporaryDirectory(prefix="personas-robustness-") as tmp:
        for i, case in enumerate(CASES, 1):
            folder = Path(tmp) / f"case-{i:02d}"
            folder.mkdir()
            outcome = try_case(case, folder, run_process)
            print(f"{outcome.exit_code:>3}  {case.title}", file=sys.stderr)
            results.append((case, outcome))
            wrong += _unexpected(case, outcome)
    faults = _faults_section(not args.no_faults, args.soak)
    DOC.write_text(render(results, faults), encoding="utf-8")
    print(DOC, file=sys.stderr)
    for line in wrong:
        print(f"unexpected: {line}", file=sys.stderr)
    return 1 if wrong else 0


def _unexpected(case: Case, outcome: Outcome) -> list[str]:
    if outcome.exit_code != case.exit_code:
        return [f"{case.title}: exit code {outcome.exit_code}, expected {case.exit_code}"]
    if case.quality and outcome.run_json["data_quality"]["rows"] != case.quality:
        return [
            f"{case.title}: counted {outcome.run_json['data_quality']['rows']}, expected "
            f"{case.quality}"
        ]
    if case.export:
        counts = outcome.run_json["counts"]
        expected = {"users": 300, "events": len(_export())}
        if {k: counts[k] for k in expected} != expected:
            return [f"{case.title}: read {counts}, expected {expected}"]
    return []


if __name__ == "__main__":
    sys.exit(main())
