"""Read, map and validate the raw event log with DuckDB.

:func:`load_events` turns whatever the user points at (CSV, CSV.gz, Parquet, a folder or glob of
Parquet, or the bundled synthetic sample) into one DuckDB view, ``events``, with canonical columns:

=========== ========= ==========================================================================
column      type      meaning
=========== ========= ==========================================================================
user_id     VARCHAR   the user
ts          TIMESTAMP event time, naive UTC
event       VARCHAR   the event name as given (``'purchase'`` for order tables)
role        VARCHAR   the role it maps to (``view``, ``cart``, ``purchase``, ... or ``other``)
amount      DOUBLE    revenue of the event, NULL when unknown
quantity    DOUBLE    items on the event (``quantity`` column when present), NULL when unknown
discount    BOOLEAN   a discount was used (NULL without a ``discount`` column)
platform    VARCHAR   ``platform`` column when present
category    VARCHAR   ``category`` column when present
product     VARCHAR   ``product`` column when present (a product id or name)
session_no  BIGINT    session number within the user, from 1, in the order the sessions start
=========== ========= ==========================================================================

Nothing is copied into pandas: the view streams from the file. The same load reads the log once
more, sorted per user, and sums it per user into the table ``user_activity``
(:mod:`personas.activity`), which the features are computed from: that pass is out of core.
Usable but dirty rows are dropped or repaired by the rules in :data:`CLEANING_RULES` and counted;
rows outside the ``start``/``end`` window are dropped and counted the same way. The log also
carries the reference date that recency features count to (``reference_date``, else its last
event).
"""

from __future__ import annotations

import difflib
import glob
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import yaml

from . import activity, csvsniff
from .errors import InputError, ParameterError, SchemaError, yaml_problem
from .params import PersonaParams
from .progress import Progress
from .sql import quote_literal, quote_name

OPTIONAL_COLUMNS = ("discount", "platform", "category", "product", "quantity")
APP_PLATFORMS = ("app", "ios", "android", "mobile_app")   # platform values that mean the app
# DuckDB may use this much memory for the event table and the feature queries; beyond it, it
# spills to a temporary folder instead (its own default is 80 % of the machine's memory, which a
# 140M-row log would take). 3 GB keeps a 1M-user run under the 4 GB the features may use.
DUCKDB_MEMORY_LIMIT = "3GB"     # the default of the memory_limit parameter
EPOCH_LIMIT = 2.5e17     # epoch microseconds of the year 9999: larger numbers are no times
NUMERIC_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE"}

# Names a column often has in exports, per parameter: suggested when the mapped column is missing.
COLUMN_ALIASES = {
    "user_col": ("user_id", "uid", "userid", "user", "customer_id", "customer", "client_id",
                 "visitor_id", "member_id", "account_id", "anonymous_id", "distinct_id",
                 "user_pseudo_id"),
    "time_col": ("timestamp", "ts", "time", "datetime", "date", "event_time", "event_timestamp",
                 "event_date", "created_at", "occurred_at", "received_at", "order_date"),
    "event_col": ("event", "event_name", "event_type", "action", "activity"),
    "amount_col": ("amount", "revenue", "value", "price", "total", "sales", "order_value"),
    "session_col": ("session_id", "session", "ga_session_id", "visit_id", "session_key"),
}
SIMILARITY_CUTOFF = 0.75   # difflib ratio a misspelt column name must reach to be suggested

CLEANING_RULES = {
    "null_user": "rows without a user id are dropped",
    "null_time": "rows without a timestamp are dropped",
    "outside_window": "rows outside the start/end window are dropped",
    "future": "rows later than the time of the run are dropped",
    "negative_amount": "negative amounts are set to missing (refunds are not revenue)",
    "negative_quantity": "negative quantities are set to missing (returns are not items bought)",
    "missing_amount": "purchases without a usable amount are kept as orders of unknown value "
                      "(revenue and order value use the priced ones)",
    "duplicate": "exact duplicate rows are kept once",
}


@dataclass
class EventLog:
    """The loaded log: a DuckDB connection holding the ``events`` view, and what we learnt."""

    con: duckdb.DuckDBPyConnection
    source: str
    has_event_column: bool
    columns: list[str]                       # columns of the raw file
    optional: list[str]                      # optional columns found (amount, discount, ...)
    time_format: str                         # how timestamps were read
    role_map: dict[str, str]                 # event name -> role, for names seen in the data
    event_counts: dict[str, int]             # event name -> rows (after cleaning)
    quality: dict[str, int] = field(default_factory=dict)   # rule -> rows affected
    counts: dict[str, Any] = field(default_factory=dict)    # events, users, start, end
    window: dict[str, str | None] = field(default_factory=dict)   # start/end applied, None = open
    reference: datetime | None = None        # the instant "days since ..." features count to
    reference_from: str = ""                 # where it came from: the parameter or the data
    planted: Any = None      # bundled sample only: DataFrame user_id -> planted persona
    session_col: str = ""    # the sessions are given in this column ("" = split by a gap)
    read_as: str = ""        # how a CSV was read if not as plain UTF-8 ("latin-1 text", ...)

    @property
    def roles(self) -> set[str]:
        """Roles present in the data (after cleaning)."""
        return {self.role_map[e] for e, n in self.event_counts.items() if n > 0}

    @property
    def unknown_events(self) -> list[str]:
        return sorted(e for e, r in self.role_map.items() if r == "other")


# -- reading ---------------------------------------------------------------------------------------

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
    InputError. A CSV has no call yet (its dialect is sniffed first, :mod:`personas.csvsniff`)
    and no Parquet files."""
    path = Path(path_text)
    if any(ch in path_text for ch in "*?["):
        if not glob.glob(path_text, recursive=True):
            raise InputError(f"events path {path_text!r} matches no file; check the pattern",
                             path=path_text)
        return (f"read_parquet({quote_literal(path_text)}, union_by_name=true)", path_text,
                _parquet_files(path_text))
    if not path.exists():
        raise InputError(f"events file {path_text!r} does not exist; check events_path",
                         path=path_text)
    if path.is_dir():
        files = _parquet_files(path_text)
        if not files:
            raise InputError(f"events folder {path_text!r} holds no .parquet file; point "
                             "events_path at a CSV or Parquet file or a folder of Parquet",
                             path=path_text)
        pattern = str(path / "**" / "*.parquet")
        return (f"read_parquet({quote_literal(pattern)}, union_by_name=true)", path_text,
                files)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise InputError(f"events file {path_text!r} cannot be read ({exc.strerror}); check its "
                         "permissions", path=path_text) from None
    if not head:
        raise InputError(f"events file {path_text!r} is empty; export the log again",
                         path=path_text)
    if head[:4] == b"PAR1":
        return f"read_parquet({quote_literal(path_text)})", path_text, [path_text]
    if head[:2] != b"\x1f\x8b" and b"\x00" in head:
        raise InputError(f"events file {path_text!r} is neither CSV nor Parquet (it holds binary "
                         "data); export the log as CSV or Parquet", path=path_text)
    return None, path_text, []


def _first_line(exc: BaseException, limit: int = 200) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:limit]


def _part_error(source: str, part: str, what: str) -> InputError:
    """The error naming one file of a folder or glob of Parquet."""
    return InputError(f"events file {part!r} (one of the Parquet files of {source!r}) {what}; "
                      "remove it or export it again like the others", path=part)


def _type_kind(dtype: str) -> str:
    """The kind of a column type that files of one log may differ in without harm: 'number',
    'text', 'time', 'boolean', 'null' (a column of missing values only), else the type."""
    upper = dtype.upper()
    if _is_numeric(upper):
        return "number"
    if upper.startswith(("TIMESTAMP", "DATE")):
        return "time"
    return {"VARCHAR": "text", "BOOLEAN": "boolean", '"NULL"': "null"}.get(upper, upper)


def _kind_words(kind: str) -> str:
    return {"number": "numbers", "time": "times", "boolean": "true/false values"}.get(
        kind, kind if kind == "text" else f"values of type {kind}")


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
            rows = con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                               f"read_parquet({quote_literal(part)}))").fetchall()
        except duckdb.Error as exc:
            raise _part_error(source, part, f"is not a readable Parquet file "
                                            f"({_first_line(exc)})") from None
        schemas[part] = {name: _type_kind(dtype) for name, dtype in rows}
    required = [c for c in (params.user_col, params.time_col, params.event_col,
                            params.session_col) if c]
    used = required + [params.amount_col, *OPTIONAL_COLUMNS]
    for column in dict.fromkeys(used):
        holding = [part for part in files if column in schemas[part]]
        if not holding:
            continue
        if column in required and len(holding) < len(files):
            part = next(part for part in files if column not in schemas[part])
            raise _part_error(source, part, f"has no {column!r} column, unlike "
                                            f"{len(holding):,} other files")
        kinds = [schemas[part][column] for part in holding if schemas[part][column] != "null"]
        if len(set(kinds)) > 1:
            usual = max(dict.fromkeys(kinds), key=kinds.count)   # the first on a tie
            part = next(part for part in holding if schemas[part][column] not in ("null", usual))
            raise _part_error(source, part, f"holds {_kind_words(schemas[part][column])} in "
                                            f"column {column!r}, where "
                                            f"{kinds.count(usual):,} other files hold "
                                            f"{_kind_words(usual)}")


def _unreadable_part(con, files: list[str]) -> tuple[str, str] | None:
    """The first of the Parquet ``files`` whose data DuckDB cannot read, with the error's first
    line; None when each reads. Reads every column of every file: for the error path only."""
    for part in files:
        try:
            con.execute(f"SELECT max(hash(COLUMNS(*))) FROM read_parquet({quote_literal(part)})"
                        ).fetchall()
        except duckdb.Error as exc:
            return part, _first_line(exc)
    return None


def _create_raw(con, call: str) -> None:
    """The view ``raw`` over ``call``, read far enough to fail on a file DuckDB cannot parse."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM {call}")
    # Cast to text in DuckDB: fetching a TIMESTAMPTZ as a Python object needs pytz.
    con.execute("SELECT CAST(COLUMNS(*) AS VARCHAR) FROM raw LIMIT 1").fetchall()


def _open_raw(con: duckdb.DuckDBPyConnection, params: PersonaParams,
              dialects: list[csvsniff.CsvDialect] | None = None) -> tuple[str, Any, bool]:
    """Create the view ``raw`` over the input; return a description, for the bundled sample its
    planted personas, and whether the file is text (CSV), where typed times were ISO text.

    A CSV is read with the last of ``dialects`` (sniffed and appended when there is none), and
    read again with the next :func:`personas.csvsniff.fallback` while one helps; the dialect
    read with is left last in the list.
    """
    if not params.events_path:
        from .sample import make_events

        frame, planted = make_events(params.sample_users, params.sample_seed,
                                     period=params.sample_period)
        con.register("raw_frame", frame)
        con.execute("CREATE OR REPLACE TEMP VIEW raw AS SELECT * FROM raw_frame")
        year = f", year {params.sample_period}" if params.sample_period > 1 else ""
        return (f"bundled synthetic sample ({params.sample_users} users, seed "
                f"{params.sample_seed}{year})", planted, False)
    call, described, files = _source_sql(params.events_path)
    dialects = dialects if dialects is not None else []
    if call is None and not dialects:
        dialects.append(csvsniff.sniff(con, described))
    while True:
        try:
            if call is None:
                _create_raw(con, dialects[-1].call(described))
            else:
                _check_parquet_parts(con, files, described, params)
                _create_raw(con, call)
            break
        except duckdb.Error as exc:
            retry = (csvsniff.fallback(con, described, dialects[-1], str(exc))
                     if call is None else None)
            if retry is None:
                raise InputError(f"events file {described!r} cannot be parsed as a table "
                                 f"({_first_line(exc)}); export it as CSV with a header row, or "
                                 "as Parquet", path=described) from None
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
    squashed = {_squash(c): c for c in reversed(columns)}   # first column wins on a tie
    if _squash(name) in squashed:
        return squashed[_squash(name)]
    for alias in COLUMN_ALIASES.get(param, ()):
        if _squash(alias) in squashed:
            return squashed[_squash(alias)]
    close = difflib.get_close_matches(_squash(name), list(squashed), n=1,
                                      cutoff=SIMILARITY_CUTOFF)
    return squashed[close[0]] if close else None


def _require_column(columns: list[str], name: str, param: str, source: str) -> None:
    if name in columns:
        return
    guess = suggest_column(name, param, columns)
    hint = f"set {param}={guess}" if guess else f"set {param} to the column that holds it"
    raise SchemaError(f"events file {source!r} has no {name!r} column (found: "
                      f"{', '.join(columns[:20])}); {hint}", path=source, column=name)


# -- typing the time and amount columns --------------------------------------------------------

@dataclass(frozen=True)
class ValueCheck:
    """Raw values of a column that cannot be used: rows where ``where`` holds are refused with a
    SchemaError giving how many, one example (``example``) and the fix."""

    where: str
    example: str
    column: str
    kind: str       # "time" or "amount"
    what: str       # what the values are not: "timestamps", "numbers"
    why: str = ""
    fix: str = ""

    def error(self, count: int, sample: Any, source: str) -> SchemaError:
        return SchemaError(
            f"events file {source!r}: {count:,} values in {self.kind} column {self.column!r} "
            f"are not {self.what} (e.g. {sample!r}{self.why})"
            + (f"; {self.fix}" if self.fix else ""), path=source, column=self.column)


def _reject_values(con, check: ValueCheck, source: str) -> None:
    """Raise the check's SchemaError when raw rows fail it (one pass over the file)."""
    count, sample = con.execute(f"SELECT count(*), any_value({check.example}) FROM raw "
                                f"WHERE {check.where}").fetchone()
    if count:
        raise check.error(count, sample, source)


def _is_numeric(dtype: str) -> bool:
    return dtype in NUMERIC_TYPES or dtype.startswith("DECIMAL")


def _time_expression(con, column: str, dtype: str, source: str,
                     from_text: bool = False) -> tuple[str, str, ValueCheck | None]:
    """SQL turning the raw time column into a naive UTC TIMESTAMP, a name for the form the times
    were given in (run.json records it: a wrong guess, e.g. epoch seconds read as milliseconds,
    shows there first), and the check its raw values must pass. ``from_text``: a CSV whose times
    the reader typed itself.

    The check is not run here: :func:`_keep_clean_rows` counts its failures in the pass it makes
    anyway, which saves a whole pass over the file (7 s of a 165M-row Parquet log, cold).
    """
    col = quote_name(column)
    upper = dtype.upper()
    check = partial(ValueCheck, column=column, kind="time", what="timestamps")
    if upper.startswith(("TIMESTAMP", "DATE")):
        # 'infinity' and '-infinity' are valid values that no later date arithmetic survives
        infinite = check(f"{col} IS NOT NULL AND NOT isfinite({col})", f"CAST({col} AS VARCHAR)",
                         fix="remove them or give real times")
        if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
            return (f"timezone('UTC', {col})",
                    "ISO text with zone" if from_text else "datetime with zone", infinite)
        if upper.startswith("TIMESTAMP"):
            return f"CAST({col} AS TIMESTAMP)", "ISO text" if from_text else "datetime", infinite
        return f"CAST({col} AS TIMESTAMP)", "ISO date" if from_text else "date", infinite
    if _is_numeric(upper):
        # the unit is read off the largest value, so this check runs now, in the same pass
        too_large = check(f"{col} IS NOT NULL AND NOT (abs(CAST({col} AS DOUBLE)) <= "
                          f"{EPOCH_LIMIT})", col,
                          why=": too large for epoch seconds, milliseconds or microseconds")
        count, sample, top = con.execute(
            f"SELECT count(*) FILTER (WHERE {too_large.where}), "
            f"any_value({col}) FILTER (WHERE {too_large.where}), max(abs({col})) "
            "FROM raw").fetchone()
        if count:
            raise too_large.error(count, sample, source)
        top = top or 0
        if top > 1e14:
            return f"make_timestamp(CAST({col} AS BIGINT))", "epoch microseconds", None
        if top > 1e11:
            return f"epoch_ms(CAST({col} AS BIGINT))", "epoch milliseconds", None
        return (f"to_timestamp(CAST({col} AS DOUBLE))::TIMESTAMPTZ AT TIME ZONE 'UTC'",
                "epoch seconds", None)
    # text: ISO with or without zone, or a date; a zone is converted to UTC
    text = f"trim(CAST({col} AS VARCHAR))"
    parsed = (f"CASE WHEN regexp_matches({text}, '([+-]\\d\\d:?\\d\\d|Z)$') "
              f"THEN timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ)) "
              f"ELSE TRY_CAST({text} AS TIMESTAMP) END")
    # 'infinity' and '-infinity' cast to timestamps that no later date arithmetic survives
    parsed = f"(CASE WHEN isfinite({parsed}) THEN {parsed} END)"
    unparsed = check(f"{col} IS NOT NULL AND {text} <> '' AND ({parsed}) IS NULL", text,
                     fix="use ISO dates like 2024-05-01 12:30:00 or epoch seconds")
    return f"CASE WHEN {text} = '' THEN NULL ELSE {parsed} END", "ISO text", unparsed


def _number_expression(con, column: str | None, dtype: str, source: str, kind: str,
                       fix: str) -> str:
    """SQL reading a numeric column (the amount, the quantity) as DOUBLE; NULL without one.
    Text that is not a number is refused with a SchemaError saying ``fix``."""
    if column is None:
        return "CAST(NULL AS DOUBLE)"
    col = quote_name(column)
    if _is_numeric(dtype.upper()):
        return f"CAST({col} AS DOUBLE)"
    text = f"nullif(trim(CAST({col} AS VARCHAR)), '')"
    _reject_values(con, ValueCheck(
        f"{text} IS NOT NULL AND TRY_CAST({text} AS DOUBLE) IS NULL", text, column=column,
        kind=kind, what="numbers", fix=fix), source)
    return f"TRY_CAST({text} AS DOUBLE)"


# -- event roles -------------------------------------------------------------------------------

def normalise_event_name(name: str) -> str:
    """``'Product Viewed'``, ``'productViewed'``, ``'product-viewed'`` -> ``'product_viewed'``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def load_role_vocabulary(roles_path: str = "") -> dict[str, str]:
    """Normalised event name -> role: the packaged defaults, then roles_path on top."""
    text = resources.files("personas").joinpath("roles.yaml").read_text(encoding="utf-8")
    tables = [yaml.safe_load(text)]
    if roles_path:
        try:
            extra = yaml.safe_load(Path(roles_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"roles file {roles_path!r} cannot be read ({exc.strerror}); check "
                             "roles_path", path=roles_path) from None
        except yaml.YAMLError as exc:
            raise InputError(f"roles file {roles_path!r} is not valid YAML "
                             f"({yaml_problem(exc)}); it should "
                             "map role names to lists of event names", path=roles_path) from None
        if not isinstance(extra, dict) or not all(isinstance(v, list) for v in extra.values()):
            raise InputError(f"roles file {roles_path!r} should map each role to a list of event "
                             "names, e.g. 'cart: [basket_add]'", path=roles_path)
        tables.append(extra)
    vocab: dict[str, str] = {}
    for table in tables:
        for role, names in table.items():
            for name in names:
                vocab[normalise_event_name(name)] = str(role)
    return vocab


# -- the whole stage ---------------------------------------------------------------------------

def load_events(params: PersonaParams, con: duckdb.DuckDBPyConnection | None = None,
                progress: Progress | None = None) -> EventLog:
    """Read and validate the log named by ``params``; return it as the DuckDB view ``events``.

    ``progress``, when given, reports the two passes: the rows read and checked, then the
    users summed (:mod:`personas.progress`).

    Raises
    ------
    InputError
        The file is missing, unreadable, empty or not a table, or the start/end window leaves no
        events.
    SchemaError
        The user or time column is missing, or times or amounts do not parse.
    ParameterError
        ``reference_date`` lies before the last event kept.

    Examples
    --------
    >>> log = load_events(PersonaParams(sample_users=300))
    >>> log.counts["users"]
    300
    """
    con = con if con is not None else connect(params.memory_limit, params.temp_dir)
    dialects: list[csvsniff.CsvDialect] = []    # how a CSV was read, the last one last
    while True:
        try:
            return _load_events(params, con, progress or Progress(quiet=True), dialects)
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            # Past the rows the reader sniffed: a byte that is not UTF-8 or a line ending of the
            # other kind (read the file again another way), or a value it cannot convert.
            retry = (csvsniff.fallback(con, params.events_path, dialects[-1], str(exc))
                     if dialects and isinstance(exc, duckdb.InvalidInputException) else None)
            if retry is not None:
                dialects.append(retry)
                continue
            _raise_unreadable_part(con, params.events_path, dialects)
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = "; ".join([lines[0]] + [line for line in lines[1:]
                                             if line.startswith("Error when converting")])
            raise InputError(f"events file {params.events_path!r} cannot be read to the end "
                             f"({detail[:300]}); fix that value, or export the log as Parquet",
                             path=params.events_path) from None
        except (duckdb.OutOfMemoryException, duckdb.InterruptException):
            raise
        except duckdb.Error:
            # e.g. a Parquet file whose footer reads but whose pages do not ("Out of buffer")
            _raise_unreadable_part(con, params.events_path, dialects)
            raise


def _raise_unreadable_part(con, path: str, dialects: list) -> None:
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
        raise InputError(f"events file {part!r} cannot be read ({detail}); export it again",
                         path=part)
    raise _part_error(path, part, f"cannot be read ({detail})")


def connect(memory_limit: str = DUCKDB_MEMORY_LIMIT, temp_dir: str = ""
            ) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to a private folder in ``temp_dir`` (empty: the system's
    temporary folder) past ``memory_limit``.

    DuckDB creates the folder when it first spills and removes it when the connection closes,
    or this process when it ends; folders that killed runs left are removed here. Its own
    progress bar is off: the pipeline reports progress (:func:`track_progress`).
    """
    import atexit
    import shutil
    import tempfile
    import uuid

    from .runfolder import SPILL_PREFIX, clean_spill_folders

    temp = Path(temp_dir or tempfile.gettempdir())
    clean_spill_folders(temp)
    spill = temp / f"{SPILL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    atexit.register(shutil.rmtree, spill, ignore_errors=True)   # a run that stopped on an error
    con = duckdb.connect(config={"memory_limit": memory_limit.replace(" ", ""),
                                 "temp_directory": str(spill)})
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:   # in a Jupyter kernel without ipywidgets DuckDB shows no bar anyway
        pass
    return con


def track_progress(con: duckdb.DuckDBPyConnection, progress: Progress):
    """The percentage of the query ``con`` is running, for ``progress``'s live line: DuckDB
    tracks it with its progress bar on (printing nothing), on a terminal only. None elsewhere."""
    if not progress.live:
        return None
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    return con.query_progress


def _load_events(params: PersonaParams, con: duckdb.DuckDBPyConnection | None,
                 progress: Progress, dialects: list[csvsniff.CsvDialect] | None = None
                 ) -> EventLog:
    con = con if con is not None else connect(params.memory_limit, params.temp_dir)
    # Times without a zone are UTC, and the view is evaluated lazily: pin the session's zone
    # (DuckDB defaults to the machine's local zone).
    con.execute("SET TimeZone = 'UTC'")
    poll = track_progress(con, progress)
    with progress.stage("load", "reading rows", poll) as stage:
        source, planted, from_text = _open_raw(con, params, dialects)
        described = con.execute("DESCRIBE raw").fetchall()
        types = {row[0]: row[1] for row in described}
        columns = list(types)
        if not columns or (len(columns) == 1
                           and not con.execute("SELECT count(*) FROM raw").fetchone()[0]):
            raise InputError(f"events file {source!r} holds no columns; export it with a header "
                             "row", path=source)
        _require_column(columns, params.user_col, "user_col", source)
        _require_column(columns, params.time_col, "time_col", source)
        has_event = params.event_col in columns
        if not has_event and params.event_col != "event":
            _require_column(columns, params.event_col, "event_col", source)
        if params.session_col:
            _require_column(columns, params.session_col, "session_col", source)
        amount_col = params.amount_col if params.amount_col in columns else None
        if params.amount_col != "amount" and amount_col is None:
            _require_column(columns, params.amount_col, "amount_col", source)

        total = con.execute("SELECT count(*) FROM raw").fetchone()[0]
        if total == 0:
            raise InputError(f"events file {source!r} has a header but no rows; export the log "
                             "with its events", path=source)

        ts_sql, time_format, time_check = _time_expression(
            con, params.time_col, types[params.time_col], source, from_text)
        # Python (and so every "days since" and the report) holds the years 1 to 9999 only
        far_check = ValueCheck(f"({ts_sql}) NOT BETWEEN TIMESTAMP '0001-01-01' AND "
                               "TIMESTAMP '9999-12-31 23:59:59.999999'",
                               f"CAST({quote_name(params.time_col)} AS VARCHAR)",
                               column=params.time_col, kind="time", what="timestamps",
                               why=f" read as {time_format}: outside the years 1 to 9999",
                               fix="remove or correct them")
        amount_sql = _number_expression(
            con, amount_col, types.get(amount_col or "", ""), source, "amount",
            "remove currency signs and thousands separators, or set amount_col to another "
            "column")
        quantity_sql = _number_expression(
            con, "quantity" if "quantity" in columns else None, types.get("quantity", ""), source,
            "quantity", "give the number of items as a plain number, or rename the column if it "
            "holds something else")
        optional = ([c for c in OPTIONAL_COLUMNS if c in columns]
                    + (["amount"] if amount_col else []))
        event_sql = (f"CAST({quote_name(params.event_col)} AS VARCHAR)" if has_event
                     else "'purchase'")
        discount_sql = ("TRY_CAST(discount AS BOOLEAN)" if "discount" in optional
                        else "CAST(NULL AS BOOLEAN)")
        platform_sql, category_sql, product_sql = (
            f"CAST({name} AS VARCHAR)" if name in optional else "CAST(NULL AS VARCHAR)"
            for name in ("platform", "category", "product"))
        session_sql = (f"CAST({quote_name(params.session_col)} AS VARCHAR)" if params.session_col
                       else "CAST(NULL AS VARCHAR)")
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW typed AS
            SELECT CAST({quote_name(params.user_col)} AS VARCHAR) AS user_id,
                   {ts_sql} AS ts,
                   coalesce({event_sql}, '(missing)') AS event,
                   {amount_sql} AS amount,
                   {quantity_sql} AS quantity,
                   {discount_sql} AS discount,
                   {platform_sql} AS platform,
                   {category_sql} AS category,
                   {product_sql} AS product,
                   {session_sql} AS session_key,
                   {time_check.where if time_check else "FALSE"} AS bad_time,
                   {f"CASE WHEN {time_check.where} THEN {time_check.example} END"
                    if time_check else "NULL"} AS bad_time_example,
                   {far_check.where} AS far_time,
                   CASE WHEN {far_check.where} THEN {far_check.example} END AS far_time_example
            FROM raw""")

        quality, dropped, usable_span, kept_span = _keep_clean_rows(con, params, source,
                                                                    time_check, far_check)
        if total - dropped == 0 and usable_span[0] is not None:
            raise _empty_window_error(params, source, *usable_span)
        if total - dropped == 0:
            raise InputError(f"events file {source!r} has no usable rows after cleaning "
                             f"({', '.join(f'{k}: {v}' for k, v in quality.items() if v)}); check "
                             "the user and time columns", path=source)
        stage.done(f"{total:,} rows read")
    with progress.stage("load", "summing events per user", poll) as stage:
        role_map = _code_names(con, params.roles_path, has_event)
        _mark_rows(con, params, kept_span[0])
        start, end = kept_span
        activity.summarise(con, gap_sessions=not params.session_col, span=kept_span,
                           year=activity.spans_year(start, end))

        # from here on everything reads the per-user tallies, never the file again
        names = dict(con.execute("SELECT code, event FROM event_names").fetchall())
        totals = sorted(((names[code], n, unpriced)
                         for code, (n, unpriced) in activity.event_totals(con).items()),
                        key=lambda row: (-row[1], row[0]))
        event_counts = {name: n for name, n, _ in totals}
        role_map = {name: role_map[name] for name in event_counts}
        users, events = con.execute("SELECT count(*), sum(n_events) FROM user_activity"
                                    ).fetchone()
        stage.done(f"{users:,} users summed from {int(events):,} events")
    quality["duplicate"] = max(total - int(events) - dropped, 0)
    # unpriced purchases come with the per-event counts, at no extra pass over a large file;
    # without an amount column no purchase has a value: that is the data's shape, not dirt
    quality["missing_amount"] = sum(unpriced for _, _, unpriced in totals) if amount_col else 0
    quality = {rule: quality[rule] for rule in CLEANING_RULES}   # run.json lists them in this order
    counts = {"rows_read": total, "events": int(events), "users": users,
              "start": str(start), "end": str(end)}
    reference = _reference_time(params, end)
    first, last = params.time_window()
    return EventLog(con=con, source=source, has_event_column=has_event, columns=columns,
                    optional=optional, time_format=time_format, role_map=role_map,
                    event_counts=event_counts, quality=quality, counts=counts, planted=planted,
                    session_col=params.session_col,
                    read_as=dialects[-1].describe() if dialects else "",
                    window={"start": _text(first), "end": _text(last)}, reference=reference,
                    reference_from="reference_date" if params.reference_date.strip()
                    else "last event used")


# -- codes and the one sort ---------------------------------------------------------------------

def _code_names(con, roles_path: str, has_event: bool) -> dict[str, str]:
    """Give every user, event name, platform, category, product, amount and quantity of
    ``kept`` a small integer code, in tables ``users (uid, user_id)``, ``event_names (code,
    event, role)``, ``platforms (pcode, platform, is_app)``, ``categories (ccode, category)``,
    ``products (prcode, product)``, ``amounts (acode, amount)`` and ``quantities (qcode,
    quantity)``; return event name -> role.

    One pass over the log finds all seven. Codes follow the text order, so sorting by ``uid``
    sorts by ``user_id``. With codes, the sort in :func:`_mark_rows` moves narrow fixed-width
    rows instead of strings: at 165M events that took it from 68 s to 37 s here.
    """
    con.execute("""
        CREATE OR REPLACE TEMP TABLE distinct_names AS
        SELECT user_id, event, platform, category, product, amount, quantity,
               GROUPING(user_id) AS no_user, GROUPING(event) AS no_event,
               GROUPING(platform) AS no_platform, GROUPING(category) AS no_category,
               GROUPING(product) AS no_product, GROUPING(amount) AS no_amount,
               GROUPING(quantity) AS no_quantity
        FROM kept
        GROUP BY GROUPING SETS ((user_id), (event), (platform), (category), (product),
                                (amount), (quantity))""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE users AS
        SELECT CAST(row_number() OVER (ORDER BY user_id) AS UINTEGER) AS uid, user_id
        FROM distinct_names WHERE no_user = 0""")
    names = [row[0] for row in con.execute(
        "SELECT event FROM distinct_names WHERE no_event = 0 ORDER BY event").fetchall()]
    vocab = load_role_vocabulary(roles_path)
    role_map = {name: vocab.get(normalise_event_name(name), "other") if has_event else "purchase"
                for name in names}
    # as three lists in one statement: executemany runs one statement per name (15 s for 10,000)
    con.execute("CREATE OR REPLACE TEMP TABLE event_names AS SELECT "
                "CAST(unnest(range(1, len($names) + 1)) AS UINTEGER) AS code, "
                "CAST(unnest($names) AS VARCHAR) AS event, "
                "CAST(unnest($roles) AS VARCHAR) AS role",
                {"names": list(role_map), "roles": list(role_map.values())})
    app = ", ".join(quote_literal(name) for name in APP_PLATFORMS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE platforms AS
        SELECT CAST(row_number() OVER (ORDER BY platform) AS UINTEGER) AS pcode, platform,
               lower(trim(platform)) IN ({app}) AS is_app
        FROM distinct_names WHERE no_platform = 0 AND platform IS NOT NULL""")
    for table, code, column in (("categories", "ccode", "category"),
                                ("products", "prcode", "product"), ("amounts", "acode", "amount"),
                                ("quantities", "qcode", "quantity")):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT CAST(row_number() OVER (ORDER BY {column}) AS UINTEGER) AS {code}, {column}
            FROM distinct_names
            WHERE no_{column} = 0 AND {column} IS NOT NULL""")
    con.execute("DROP TABLE distinct_names")
    return role_map


def _mark_rows(con, params: PersonaParams, first: datetime) -> None:
    """Create the views ``coded`` (``kept`` with codes for its names) and ``event_rows``: the
    coded rows sorted once per user by time, with exact duplicates dropped and the marks the
    features need read off the same sort.

    =========== ====================================================================
    new_session the row starts a session: the user's first event, or more than
                ``session_gap_minutes`` after the previous one
    idle_us     on such a row (not the first), microseconds since the previous event:
                the idle time between two sessions
    day_mark    0 when the row is on the same calendar day as the one before; 1 when it
                starts a day of the same week (Monday to Sunday);
                :data:`~personas.activity.DAY_MARK_WEEK` when it starts a day of a new
                week (the user's first event too). A sum gives active days and weeks.
    =========== ====================================================================

    Weeks are counted from the Monday before ``first``, the first event kept
    (:func:`personas.activity.week_origin`); the week is compared only on a new day.

    Identical rows sort next to each other (every column is in the sort key), so a row equal
    to the one before it is a duplicate. Sessions are told apart by these marks, not numbered:
    numbering them would take a second sort of every event. With ``session_col`` the given
    sessions are kept as ``session_key``.

    ``event_rows`` is a view, evaluated when read: :func:`personas.activity.summarise` reads it
    once for everything the features need. At 165M events a table of it spilled to disk, and
    reading it back took longer than the sort.
    """
    amount, quantity = _value_codings(con)
    names = [_name_coding(con, table, code, column) for table, code, column in (
        ("event_names", "code", "event"), ("platforms", "pcode", "platform"),
        ("categories", "ccode", "category"), ("products", "prcode", "product"))]
    code, pcode, ccode, prcode = (sql for sql, _ in names)
    joins = "".join(join for _, join in names)
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW coded AS
        SELECT u.uid, k.ts, {code}, {amount.encode} AS acode, {quantity.encode} AS qcode,
               k.discount, {pcode}, {ccode}, {prcode}, k.session_key
        FROM kept k JOIN users u USING (user_id)
        {joins}{amount.encode_join}{quantity.encode_join}""")
    words = _pack_codes(con, (amount, quantity))
    keys = [f"w{i}" for i in range(len(words))] + (["session_key"] if params.session_col else [])
    # a column with no values (width 0) is NULL throughout: nothing to pack
    packed = ", ".join(" | ".join(f"(CAST({sql} AS BIGINT) << {shift})"
                                  for _, sql, width, shift in word if width) + f" AS w{i}"
                       for i, word in enumerate(words))
    unpacked = _unpack_codes(words)
    gap_us = int(params.session_gap_minutes * 60 * 1_000_000)
    origin = activity.week_origin(first)
    week, prev_week = (f"{activity.since_origin(t, origin)} // {7 * activity.DAY_US}"
                       for t in ("ts", "prev_ts"))
    previous = ", ".join(f"lag({c}) OVER w AS prev_{c}" for c in keys)
    same = " AND ".join(["prev_ts = ts"] + [f"prev_{c} IS NOT DISTINCT FROM {c}" for c in keys])
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW event_rows AS
        WITH marked AS (
            SELECT *, lag(ts) OVER w AS prev_ts, {previous}
            FROM (SELECT uid, ts, {packed}, session_key FROM coded)
            WINDOW w AS (PARTITION BY uid ORDER BY ts, {", ".join(keys)})),
        kept_rows AS (
            SELECT uid, ts, {unpacked}, session_key,
                   prev_ts IS NULL OR epoch_us(ts) - epoch_us(prev_ts) > {gap_us} AS new_session,
                   CASE WHEN epoch_us(ts) - epoch_us(prev_ts) > {gap_us}
                        THEN epoch_us(ts) - epoch_us(prev_ts) END AS idle_us,
                   CASE WHEN prev_ts IS NULL THEN {activity.DAY_MARK_WEEK}
                        WHEN CAST(ts AS DATE) = CAST(prev_ts AS DATE) THEN 0
                        WHEN {week} = {prev_week} THEN 1
                        ELSE {activity.DAY_MARK_WEEK} END AS day_mark
            FROM marked
            WHERE NOT coalesce({same}, FALSE))
        SELECT r.*, {amount.decode} AS amount, {quantity.decode} AS quantity
        FROM kept_rows r{amount.decode_join}{quantity.decode_join}""")
    con.execute(f"CREATE OR REPLACE TEMP VIEW events AS {_events_view_sql(params)}")


SMALL_CODE_TABLE = 64   # names coded by their place in a literal list, up to this many


def _name_coding(con, table: str, code: str, column: str) -> tuple[str, str]:
    """SQL over ``kept k`` giving the code of its ``column`` in ``table`` (codes 1, 2, ... in
    text order, :func:`_code_names`; NULL for a missing value) as column ``code``, and the join
    that needs.

    A log's event names, platforms and categories are usually a handful: their code is the
    place of the value in a literal list of them, read straight off the row, no join. At 100k
    users a query reading the three codes took 0.33 s this way and 0.47 s with three joins.
    """
    values = [value for (value,) in con.execute(
        f"SELECT {column} FROM {table} ORDER BY {code} LIMIT {SMALL_CODE_TABLE + 1}").fetchall()]
    if not values:
        return f"CAST(NULL AS UINTEGER) AS {code}", ""
    if len(values) <= SMALL_CODE_TABLE:
        listed = ", ".join(quote_literal(value) for value in values)
        # left INTEGER: the codes are packed into a BIGINT next (a cast to UINTEGER cost 1.4 %
        # of the instructions of load + features)
        return f"list_position([{listed}], k.{column}) AS {code}", ""
    alias = f"{code}_t"
    return f"{alias}.{code}", f" LEFT JOIN {table} {alias} USING ({column})"


WORD_BITS = 63   # bits of a BIGINT sort key that stay non-negative
SCALES = (1, 100)    # a numeric column whose values are all whole numbers, or all whole cents
SCALED_BITS = 40     # ... below 2 ** 40 once scaled, goes through the sort as that number


@dataclass(frozen=True)
class ValueCoding:
    """How a numeric column of ``kept`` (amount, quantity) rides through the sort as a small
    non-negative integer code (0: missing), and how ``event_rows`` reads the value back.

    Whole numbers or whole cents are their own code, scaled (plus 1): no join either way. Other
    values are numbered through their table of distinct values (``amounts``, ``quantities``),
    joined on the way in and out. For the sample's amounts (whole cents) the two joins were
    0.21 s and 0.14 s of CPU in DuckDB's profile at 100k users; in paired callgrind runs at 20k
    users, load + features took 2.6 % fewer instructions without them.
    """

    encode: str          # SQL over ``kept k``: the code
    decode: str          # SQL over ``kept_rows r``: the value
    bits: int
    encode_join: str = ""
    decode_join: str = ""


def _value_coding(con, table: str, code: str, column: str) -> ValueCoding:
    """The :class:`ValueCoding` of ``column``, from its table of distinct (non-negative) values."""
    count, top = con.execute(f"SELECT count(*), max({column}) FROM {table}").fetchone()
    if not count:
        return ValueCoding("CAST(NULL AS BIGINT)", "CAST(NULL AS DOUBLE)", 0)
    for scale in SCALES:
        if not math.isfinite(top) or top * scale >= 2 ** SCALED_BITS:   # NaN sorts last
            break
        # every value must come back exactly: then equal codes mean equal values
        if con.execute(f"SELECT bool_and(CAST(round({column} * {scale}) AS BIGINT) / {scale}.0 "
                       f"= {column}) FROM {table}").fetchone()[0]:
            return ValueCoding(f"CAST(round(k.{column} * {scale}) AS BIGINT) + 1",
                               f"(r.{code} - 1) / {scale}.0", (round(top * scale) + 1).bit_length())
    alias = f"{code}_t"
    return ValueCoding(f"{alias}.{code}", f"{alias}.{column}", count.bit_length(),
                       f" LEFT JOIN {table} {alias} USING ({column})",
                       f" LEFT JOIN {table} {alias} USING ({code})")


def _value_codings(con) -> tuple[ValueCoding, ValueCoding]:
    """The codings of the amount and the quantity."""
    return (_value_coding(con, "amounts", "acode", "amount"),
            _value_coding(con, "quantities", "qcode", "quantity"))


def _pack_codes(con, values: tuple[ValueCoding, ValueCoding] | None = None
                ) -> list[list[tuple[str, str, int, int]]]:
    """How ``coded``'s small columns pack into BIGINT words: per word, (column, SQL giving its
    value as a non-negative integer, bits, shift).

    The sort of :func:`_mark_rows` moves every column it carries through memory and, at 165M
    events, through its spill files: one BIGINT in place of six columns with their null masks
    makes that pass markedly faster at 1M users (docs/benchmarks.md). Codes start at 1, so 0
    stands for a missing value; a column with no values takes no bits. Usually everything fits
    one word; a catalogue with millions of products and prices takes two.
    """
    def bits(table: str) -> int:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]).bit_length()

    amount, quantity = values if values is not None else _value_codings(con)
    fields = [("code", "code", bits("event_names")),
              ("acode", "coalesce(acode, 0)", amount.bits),
              ("qcode", "coalesce(qcode, 0)", quantity.bits),
              ("discount", "CASE WHEN discount THEN 2 WHEN NOT discount THEN 1 ELSE 0 END", 2),
              ("pcode", "coalesce(pcode, 0)", bits("platforms")),
              ("ccode", "coalesce(ccode, 0)", bits("categories")),
              ("prcode", "coalesce(prcode, 0)", bits("products"))]
    words: list[list[tuple[str, str, int, int]]] = [[]]
    used = 0
    for name, sql, width in fields:
        if width and used + width > WORD_BITS:
            words.append([])
            used = 0
        words[-1].append((name, sql, width, used))
        used += width
    return words


def _unpack_codes(words: list[list[tuple[str, str, int, int]]]) -> str:
    """SQL columns code, acode, qcode, discount, pcode, ccode, prcode read back from the words.

    The codes stay BIGINT, as they come out of the word: casting them to UINTEGER cost 0.7 %
    of the instructions of load + features.
    """
    columns = []
    for i, word in enumerate(words):
        for name, _, width, shift in word:
            value = f"((w{i} >> {shift}) & {(1 << width) - 1})"
            if name == "code":
                columns.append(f"{value} AS code")
            elif name == "discount":
                # 2 true, 1 false, 0 missing; a comparison, not a CASE, which took 0.1 s more
                # CPU at 100k users
                columns.append(f"nullif({value}, 0) = 2 AS discount")
            elif width == 0:
                columns.append(f"CAST(NULL AS BIGINT) AS {name}")
            else:
                columns.append(f"nullif({value}, 0) AS {name}")
    return ", ".join(columns)


def _events_view_sql(params: PersonaParams) -> str:
    """The documented ``events`` view (module docstring) over ``event_rows``, decoded.

    It is for people exploring the log in SQL and for tests; the features read ``user_activity``
    (:mod:`personas.activity`). Each read of the view sorts the log again.
    Session numbers are computed when the view is read.
    """
    if params.session_col:
        numbered = ("SELECT *, dense_rank() OVER (PARTITION BY uid ORDER BY session_start, "
                    "session_key) AS session_no FROM (SELECT *, min(ts) OVER (PARTITION BY uid, "
                    "session_key) AS session_start FROM event_rows)")
    else:
        numbered = ("SELECT *, sum(CAST(new_session AS BIGINT)) OVER (PARTITION BY uid ORDER BY "
                    "ts, new_session DESC ROWS UNBOUNDED PRECEDING) AS session_no FROM event_rows")
    return f"""
        SELECT u.user_id, r.ts, e.event, e.role, r.amount, r.quantity, r.discount, p.platform,
               c.category, pr.product, r.session_no
        FROM ({numbered}) r
             JOIN users u USING (uid) JOIN event_names e USING (code)
             LEFT JOIN platforms p USING (pcode) LEFT JOIN categories c USING (ccode)
             LEFT JOIN products pr USING (prcode)"""


# -- dirty rows --------------------------------------------------------------------------------

# the rules a row can break, as bits (:func:`_keep_clean_rows`)
NULL_USER, NULL_TIME, OUTSIDE, FUTURE, NEGATIVE, BAD_TIME, NEGATIVE_QUANTITY, FAR_TIME = (
    1, 2, 4, 8, 16, 32, 64, 128)
# A blank user id: DuckDB's trim removes the space and Unicode's other space separators, all
# of them past U+007F, so a blank id is empty, starts below '!' or starts past U+007F. That
# comparison comes first: it is cheap, and on Parquet DuckDB settles it from each row group's
# min and max. Trimming every id took 0.11 s of CPU per pass over 16.5M rows here.
BLANK_USER_SQL = "((user_id < '!' OR user_id >= chr(128)) AND trim(user_id) = '')"


def _keep_clean_rows(con, params: PersonaParams, source: str, time_check: ValueCheck | None,
                     far_check: ValueCheck) -> tuple[dict[str, int], int, tuple, tuple]:
    """Create the view ``kept`` (view ``typed`` less the rows CLEANING_RULES drop, negative
    amounts and quantities repaired; duplicates are still in it, :func:`_mark_rows` drops
    them). Returns the rows each rule touched, the rows dropped (a row breaking two rules
    counts under both but is dropped once, so duplicates are what the drops leave
    unexplained), the first and last usable time ignoring the window, and the first and last
    time kept (duplicates change neither).

    "Now" (for future rows) is read once and written into the view: ``kept`` is read by several
    queries, and each would otherwise see its own ``now()``. The same pass counts the time
    values ``time_check`` refuses (column ``bad_time`` of ``typed``) and those ``far_check``
    refuses (``far_time``: before the year 1 or after 9999), and raises their error.
    """
    first, last = params.time_window()
    inside = _inside_window_sql(first, last)
    now = con.execute("SELECT CAST(now() AS TIMESTAMP)").fetchone()[0]
    now = f"TIMESTAMP {quote_literal(_text(now))}"
    # Each row is tallied under the set of rules it breaks (a bit each), with its times: a
    # handful of groups, which the counts are read off: one pass over the rows for all the
    # rules, not a filtered count per rule.
    breaks = {NULL_USER: f"user_id IS NULL OR {BLANK_USER_SQL}", NULL_TIME: "ts IS NULL",
              OUTSIDE: f"ts IS NOT NULL AND NOT ({inside})", FUTURE: f"ts > {now}",
              NEGATIVE: "amount < 0", BAD_TIME: "bad_time",
              NEGATIVE_QUANTITY: "quantity < 0", FAR_TIME: "far_time"}
    broken = " + ".join(f"CASE WHEN {condition} THEN {bit} ELSE 0 END"
                        for bit, condition in breaks.items())
    groups = con.execute(f"""
        SELECT {broken} AS broken, count(*), min(ts), max(ts), any_value(bad_time_example),
               any_value(far_time_example)
        FROM typed GROUP BY ALL""").fetchall()

    def rows(bit: int) -> int:
        return sum(n for broken, n, *_ in groups if broken & bit)

    def span(unless: int) -> tuple:   # first and last time of the rows breaking none of these
        times = [(t0, t1) for broken, _, t0, t1, *_ in groups if not broken & unless]
        return (min(t0 for t0, _ in times), max(t1 for _, t1 in times)) if times else (None, None)

    # the two example columns follow the times: bad_time_example, then far_time_example
    for column, (bit, check) in enumerate(((BAD_TIME, time_check), (FAR_TIME, far_check)), 4):
        if rows(bit):
            example = next(group[column] for group in groups if group[0] & bit)
            raise check.error(rows(bit), example, source)
    quality = {rule: rows(bit) for rule, bit in (
        ("null_user", NULL_USER), ("null_time", NULL_TIME), ("outside_window", OUTSIDE),
        ("future", FUTURE), ("negative_amount", NEGATIVE),
        ("negative_quantity", NEGATIVE_QUANTITY))}
    unusable = NULL_USER | NULL_TIME | FUTURE
    # Every row was checked here: ``kept`` drops and repairs only what some row needs, and a
    # clean log is read with no test at all by the passes that follow.
    where = " AND ".join(f"NOT ({breaks[bit]})" for bit in (NULL_USER, NULL_TIME, FUTURE, OUTSIDE)
                         if rows(bit)) or "TRUE"
    repaired = {column: f"CASE WHEN {breaks[bit]} THEN NULL ELSE {column} END" if rows(bit)
                else column for column, bit in (("amount", NEGATIVE),
                                                ("quantity", NEGATIVE_QUANTITY))}
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW kept AS
        SELECT user_id, ts, event, {repaired["amount"]} AS amount,
               {repaired["quantity"]} AS quantity, discount, platform, category, product,
               session_key
        FROM typed
        WHERE {where}""")
    return quality, rows(unusable | OUTSIDE), span(unusable), span(unusable | OUTSIDE)


# -- the date window and the reference date ------------------------------------------------------

def _text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(" ")


def _inside_window_sql(first: datetime | None, last: datetime | None) -> str:
    """SQL condition on ``ts`` for rows inside the start/end window (both ends inclusive)."""
    conditions = [f"ts >= TIMESTAMP {quote_literal(_text(first))}"] if first else []
    if last is not None:
        conditions.append(f"ts <= TIMESTAMP {quote_literal(_text(last))}")
    return " AND ".join(conditions) or "TRUE"


def _empty_window_error(params: PersonaParams, source: str, data_first, data_last) -> InputError:
    """The window missed every usable row: say which bounds were set and where the data lies,
    so the user can tell a typo in the year from a file that covers another period."""
    bounds = " and ".join(f"{name}={getattr(params, name)!r}" for name in ("start", "end")
                          if getattr(params, name).strip())
    return InputError(f"events file {source!r} has no events inside the window {bounds}; its "
                      f"usable events run from {data_first} to {data_last}, so move start/end "
                      "into that range or leave them empty", path=source)


def _reference_time(params: PersonaParams, last_event: datetime) -> datetime:
    """The instant recency counts to: reference_date, else the last event used.

    A reference before the last event would give that event a negative "days since", which no
    feature or persona name can mean, so it is refused rather than clipped.
    """
    reference = params.reference_time()
    if reference is None:
        return last_event
    if reference < last_event:
        raise ParameterError(
            f"parameter reference_date={params.reference_date!r} is before the last event used "
            f"({last_event}); set it to that time or later, set end to stop the data before it, "
            "or leave it empty", name="reference_date")
    return reference
