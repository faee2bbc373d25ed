"""Where the log comes from: the file, folder or glob of Parquet or CSV (or the bundled
sample) opened as the DuckDB view ``raw``, its Parquet parts checked one by one, and the columns the
parameters name looked up, with a suggestion when one is missing."""

from __future__ import annotations

import difflib
import glob
import re
from pathlib import Path
from typing import Any

import duckdb

from ..errors import InputError, SchemaError
from ..params import PersonaParams
from ..sql import quote_literal
from . import sniff
from .values import is_numeric

OPTIONAL_COLUMNS = ("discount", "platform", "category", "product", "quantity")
# Names a column often has in exports, per parameter: suggested when the mapped column is missing.
COLUMN_ALIASES = {
    "user_col": (
        "user_id",
        "uid",
        "userid",
        "user",
        "customer_id",
        "customer",
        "client_id",
        "visitor_id",
        "member_id",
        "account_id",
        "anonymous_id",
        "distinct_id",
        "user_pseudo_id",
    ),
    "time_col": (
        "timestamp",
        "ts",
        "time",
        "datetime",
        "date",
        "event_time",
        "event_timestamp",
        "event_date",
        "created_at",
        "occurred_at",
        "received_at",
        "order_date",
    ),
    "event_col": ("event", "event_name", "event_type", "action", "activity"),
    "amount_col": ("amount", "revenue", "value", "price", "total", "sales", "order_value"),
    "session_col": ("session_id", "session", "ga_session_id", "visit_id", "session_key"),
}
SIMILARITY_CUTOFF = 0.75  # difflib ratio a misspelt column name must reach to be suggested


def _parquet_files(path_text: str) -> list[str]:
    """The Parquet files a folder or glob of Parquet stands for, sorted; [path] for a file."""
    if any(ch in path_text for ch in "*?["):
        return sorted(glob.glob(path_text, recursive=True))
    path = Path(path_text)
    if path.is_dir():
        return sorted(str(f) for f in path.rglob("*.parquet"))
    return [path_text]


def _source_sql(path_text: str) -> tuple[str | None, str, list[str]]:
    """Return (DuckDB table function call, description, Parquet files) for a path, or raise
    InputError. A CSV has no call yet (its dialect is sniffed first, :mod:`personas.load.sniff`)
    and no Parquet files."""
    path = Path(path_text)
    if any(ch in path_text for ch in "*?["):
        if not glob.glob(path_text, recursive=True):
            raise InputError(
                f"events path {path_text!r} matches no file; check the pattern", path=path_text
            )
        return (
            f"read_parquet({quote_literal(path_text)}, union_by_name=true)",
            path_text,
            _parquet_files(path_text),
        )
    if not path.exists():
        raise InputError(
            f"events file {path_text!r} does not exist; check events_path", path=path_text
        )
    if path.is_dir():
        files = _parquet_files(path_text)
        if not files:
            raise InputError(
                f"events folder {path_text!r} holds no .parquet file; point "
                "events_path at a CSV or Parquet file or a folder of Parquet",
                path=path_text,
            )
        pattern = str(path / "**" / "*.parquet")
        return (f"read_parquet({quote_literal(pattern)}, union_by_name=true)", path_text, files)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise InputError(
            f"events file {path_text!r} cannot be read ({exc.strerror}); check its permissions",
            path=path_text,
        ) from None
    if not head:
        raise InputError(
            f"events file {path_text!r} is empty; export the log again", path=path_text
        )
    if head[:4] == b"PAR1":
        return f"read_parquet({quote_literal(path_text)})", path_text, [path_text]
    if head[:2] != b"\x1f\x8b" and b"\x00" in head:
        raise InputError(
            f"events file {path_text!r} is neither CSV nor Parquet (it holds binary "
            "data); export the log as CSV or Parquet",
            path=path_text,
        )
    return None, path_text, []


def _first_line(exc: BaseException, limit: int = 200) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:limit]


def _part_error(source: str, part: str, what: str) -> InputError:
    """The error naming one file of a folder or glob of Parquet."""
    return InputError(
        f"events file {part!r} (one of the Parquet files of {source!r}) {what}; "
        "remove it or export it again like the others",
        path=part,
    )


def _type_kind(dtype: str) -> str:
    """The kind of a column type that files of one log may differ in without harm: 'number',
    'text', 'time', 'boolean', 'null' (a column of missing values only), else the type."""
    upper = dtype.upper()
    if is_numeric(upper):
        return "number"
    if upper.startswith(("TIMESTAMP", "DATE")):
        return "time"
    return {"VARCHAR": "text", "BOOLEAN": "boolean", '"NULL"': "null"}.get(upper, upper)


def _kind_words(kind: str) -> str:
    return {"number": "numbers", "time": "times", "boolean": "true/false values"}.get(
        kind, kind if kind == "text" else f"values of type {kind}"
    )


def _check_parquet_parts(con, files: list[str], source: str, params: PersonaParams) -> None:
    """Refuse, naming it, a file of a folder or glob of Parquet that is not readable Parquet,
    lacks the user, time, event or session column the other files have, or holds a column the
    run reads as another kind of value (text where the others hold times, say) than most files.

    Reads each file's footer only. Optional columns (amount, platform, ...) may be missing from
    some files (a column added to the export later): they are missing values there, as
    ``union_by_name`` reads them; numbers of different widths, or times with and without a zone,
    mix as well.
    """
    if len(files) < 2:
        return
    schemas: dict[str, dict[str, str]] = {}
    for part in files:
        try:
            rows = con.execute(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                f"read_parquet({quote_literal(part)}))"
            ).fetchall()
        except duckdb.Error as exc:
            raise _part_error(
                source, part, f"is not a readable Parquet file ({_first_line(exc)})"
            ) from None
        schemas[part] = {name: _type_kind(dtype) for name, dtype in rows}
    required = [
        c for c in (params.user_col, params.time_col, params.event_col, params.session_col) if c
    ]
    used = required + [params.amount_col, *OPTIONAL_COLUMNS]
    for column in dict.fromkeys(used):
        holding = [part for part in files if column in schemas[part]]
        if not holding:
            continue
        if column in required and len(holding) < len(files):
            part = next(part for part in files if column not in schemas[part])
            raise _part_error(
                source, part, f"has no {column!r} column, unlike {len(holding):,} other files"
            )
        kinds = [schemas[part][column] for part in holding if schemas[part][column] != "null"]
        if len(set(kinds)) > 1:
            usual = max(dict.fromkeys(kinds), key=kinds.count)  # the first on a tie
            part = next(part for part in holding if schemas[part][column] not in ("null", usual))
            raise _part_error(
                source,
                part,
                f"holds {_kind_words(schemas[part][column])} in "
                f"column {column!r}, where "
                f"{kinds.count(usual):,} other files hold "
                f"{_kind_words(usual)}",
            )


def _unreadable_part(con, files: list[str]) -> tuple[str, str] | None:
    """The first of the Parquet ``files`` whose data DuckDB cannot read, with the error's first
    line; None when each reads. Reads every column of every file: for the error path only."""
    for part in files:
        try:
            con.execute(
                f"SELECT max(hash(COLUMNS(*))) FROM read_parquet({quote_literal(part)})"
            ).fetchall()
        except duckdb.Error as exc:
            return part, _first_line(exc)
    return None


def _create_raw(con, call: str) -> None:
    """The view ``raw`` over ``call``, read far enough to fail on a file DuckDB cannot parse."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM {call}")
    # Cast to text in DuckDB: fetching a TIMESTAMPTZ as a Python object needs pytz.
    con.execute("SELECT CAST(COLUMNS(*) AS VARCHAR) FROM raw LIMIT 1").fetchall()


def open_raw(
    con: duckdb.DuckDBPyConnection,
    params: PersonaParams,
    dialects: list[sniff.CsvDialect] | None = None,
) -> tuple[str, Any, bool]:
    """Create the view ``raw`` over the input; return a description, for the bundled sample its
    planted personas, and whether the file is text (CSV), where typed times were ISO text.

    A CSV is read with the last of ``dialects`` (sniffed and appended when there is none), and
    read again with the next :func:`personas.load.sniff.fallback` while one helps; the dialect
    read with is left last in the list.
    """
    if not params.events_path:
        from ..sample import make_events

        frame, planted = make_events(
            params.sample_users, params.sample_seed, period=params.sample_period
        )
        con.register("raw_frame", frame)
        con.execute("CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_frame")
        year = f", year {params.sample_period}" if params.sample_period > 1 else ""
        return (
            f"bundled synthetic sample ({params.sample_users} users, seed "
            f"{params.sample_seed}{year})",
            planted,
            False,
        )
    call, described, files = _source_sql(params.events_path)
    dialects = dialects if dialects is not None else []
    if call is None and not dialects:
        dialects.append(sniff.sniff(con, described))
    while True:
        try:
            if call is None:
                _create_raw(con, dialects[-1].call(described))
            else:
                _check_parquet_parts(con, files, described, params)
                _create_raw(con, call)
            break
        except duckdb.Error as exc:
            retry = sniff.fallback(con, described, dialects[-1], str(exc)) if call is None else None
            if retry is None:
                raise InputError(
                    f"events file {described!r} cannot be parsed as a table "
                    f"({_first_line(exc)}); export it as CSV with a header row, or "
                    "as Parquet",
                    path=described,
                ) from None
            dialects.append(retry)
    return described, None, call is None


def _squash(name: str) -> str:
    """``'User-ID'``, ``'user_id'`` and ``'UserId'`` -> ``'userid'``: names compared loosely."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def suggest_column(name: str, param: str, columns: list[str]) -> str | None:
    """The existing column most likely meant for ``param``, or None when none is plausible.

    In order: the same name up to case and separators; a name such columns commonly have
    (:data:`COLUMN_ALIASES`); a close spelling (difflib ratio at least
    :data:`SIMILARITY_CUTOFF`). A loose cutoff would suggest ``amount`` for a missing ``action``,
    which sends the user the wrong way; no suggestion is better than that.
    """
    squashed = {_squash(c): c for c in reversed(columns)}  # first column wins on a tie
    if _squash(name) in squashed:
        return squashed[_squash(name)]
    for alias in COLUMN_ALIASES.get(param, ()):
        if _squash(alias) in squashed:
            return squashed[_squash(alias)]
    close = difflib.get_close_matches(_squash(name), list(squashed), n=1, cutoff=SIMILARITY_CUTOFF)
    return squashed[close[0]] if close else None


def require_column(columns: list[str], name: str, param: str, source: str) -> None:
    if name in columns:
        return
    guess = suggest_column(name, param, columns)
    hint = f"set {param}={guess}" if guess else f"set {param} to the column that holds it"
    raise SchemaError(
        f"events file {source!r} has no {name!r} column (found: {', '.join(columns[:20])}); {hint}",
        path=source,
        column=name,
    )


def raise_unreadable_part(con, path: str, dialects: list) -> None:
    """After a read failed: raise the InputError naming the Parquet file of ``path`` that
    cannot be read, when one cannot (a CSV, ``dialects`` not empty, is skipped)."""
    if dialects or not path:
        return
    files = _parquet_files(path)
    broken = _unreadable_part(con, files)
    if broken is None:
        return
    part, detail = broken
    if len(files) == 1:
        raise InputError(
            f"events file {part!r} cannot be read ({detail}); export it again", path=part
        )
    raise _part_error(path, part, f"cannot be read ({detail})")
