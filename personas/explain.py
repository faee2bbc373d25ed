"""``personas run --explain``: the SQL a run executes on its input, printed in order.

The shape of that SQL depends on the data: a cleaning rule's filter appears only when some row
broke it, the codes are packed into words as wide as the data's vocabularies need, small code
tables become literal lists. So it can only be shown by running the queries that decide it:
:func:`explain` runs the load and features steps for real, on a connection that records every
statement sent to DuckDB (:class:`Recorder`); :func:`render` prints them. It writes no run
folder, takes no lock and fits no model.

Each statement is printed after a comment naming its number, the step and the function that
sent it; bound parameters follow as a comment holding JSON (``-- parameters: {...}``), and a
statement DuckDB refused (the CSV reader tries another dialect) is marked ``-- failed: ...``.
The text is the SQL as sent, less the indentation of the Python source it was written in.

Not shown: the settings :func:`personas.load.connect` gives the connection (memory limit,
spill folder, ``SET enable_progress_bar = false``), and the progress bar's two ``SET``
statements a run on a terminal adds. A log with fewer users than the model needs is explained
all the same, though the run would stop after its load.
"""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

from .params import PersonaParams
from .pipeline import _disk_guard


@dataclass
class Statement:
    """One call on the connection: SQL text, or a note on what was not SQL."""

    step: str
    caller: str  # module.function that sent it
    sql: str
    parameters: Any = None
    error: str = ""
    note: str = ""  # instead of SQL: e.g. a DataFrame registered as a view


class Recorder:
    """A DuckDB connection that records what it is asked to run, then runs it.

    ``execute`` returns the recorder, as DuckDB's returns the connection, so that
    ``con.execute(...).fetchall()`` still works; everything else is the connection's own.
    ``step`` labels the statements recorded from now on.
    """

    def __init__(self, con):
        self._con = con
        self.step = ""
        self.statements: list[Statement] = []

    def _record(self, sql: str, parameters: Any = None, note: str = "") -> Statement:
        frame = sys._getframe(2)  # the caller of execute/sql/...
        caller = f"{frame.f_globals.get('__name__', '?').rpartition('.')[2]}.{frame.f_code.co_name}"
        statement = Statement(self.step, caller, sql, parameters, note=note)
        self.statements.append(statement)
        return statement

    def _run(self, statement: Statement, call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # duckdb's errors have no common base below Exception
            statement.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise

    def execute(self, query: str, parameters: Any = None):
        statement = self._record(query, parameters)
        args = (query,) if parameters is None else (query, parameters)
        self._run(statement, self._con.execute, *args)
        return self

    def executemany(self, query: str, parameters: Any = None):
        statement = self._record(query, parameters)
        args = (query,) if parameters is None else (query, parameters)
        self._run(statement, self._con.executemany, *args)
        return self

    def sql(self, query: str, *args, **kwargs):
        statement = self._record(query, kwargs.get("params"))
        return self._run(statement, self._con.sql, query, *args, **kwargs)

    query = sql

    def register(self, name: str, frame: Any):
        rows = f"{len(frame):,} rows: " if hasattr(frame, "__len__") else ""
        columns = ", ".join(map(str, getattr(frame, "columns", [])))
        statement = self._record(
            "",
            note=f"register {name}: a {type(frame).__name__} ({rows}{columns}) as a view, not SQL",
        )
        self._run(statement, self._con.register, name, frame)
        return self

    def __getattr__(self, name: str):
        return getattr(self._con, name)


@_disk_guard
def explain(params: PersonaParams) -> list[Statement]:
    """The statements :func:`personas.pipeline.features_step` sends to DuckDB for ``params``,
    found by running its load and features (custom features included) on a recorder.

    Raises what that step raises on bad input (InputError, SchemaError, ParameterError; a full
    disk or too small a ``memory_limit`` as one sentence).
    """
    from .custom import add_custom_features, load_custom_features
    from .features import compute_features
    from .load import connect, load_events

    params.validate()
    custom = load_custom_features(params.features_path)
    con = Recorder(connect(params.memory_limit, params.temp_dir))
    try:
        con.step = "load"
        log = load_events(params, con=con)
        con.step = "features"
        features, _ = compute_features(log)
        con.step = "custom features"
        add_custom_features(log, features, custom, params.features_path)
    finally:
        con.close()
    return con.statements


def _layout(sql: str) -> str:
    """``sql`` without the indentation of the Python source it was written in, ending in ``;``
    (whitespace at the ends of lines and of the text is all that changes)."""
    first, _, rest = sql.strip("\n").partition("\n")
    text = (
        textwrap.dedent(f"{first}\n{rest}")
        if first[:1].isspace()
        else f"{first}\n{textwrap.dedent(rest)}"
    )
    return "\n".join(line.rstrip() for line in text.strip().split("\n")).rstrip(";") + ";"


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def render(statements: list[Statement], source: str) -> str:
    """The statements as text: numbered, each after its header comment, separated by blank
    lines; SQL statements end with ``;``."""
    blocks = [
        f"-- the SQL a run sends to DuckDB for {source}: {len(statements)} statements, in "
        "order\n-- (personas run --explain: the input was read; nothing was written and no "
        "model fitted)"
    ]
    for i, s in enumerate(statements, 1):
        head = f"-- {i}. {s.step} ({s.caller})"
        if s.note:
            blocks.append(f"{head}: {s.note}")
            continue
        lines = [head, _layout(s.sql)]
        if s.parameters is not None:
            lines.append(f"-- parameters: {_json(s.parameters)}")
        if s.error:
            lines.append(f"-- failed: {s.error} (the run went on)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
