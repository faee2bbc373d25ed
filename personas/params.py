"""PersonaParams: every setting of a run, with its default, its range and its help text.

One object serves the CLI (``-p name=value``), the notebooks (the cell tagged ``parameters``
lists the same names) and Python (``personas.run(PersonaParams(...))``). Values are converted by
the field's declared type, never guessed, and checked once in :meth:`PersonaParams.validate`.

Why it is long: every parameter's default, range and help text is written here once, for the
CLI, the notebooks and Python alike.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import ParameterError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
PROJECT = "personas"  # the [project] name of the pyproject.toml that marks the project
PAPERMILL_CELL = "# Parameters"  # first line of the cell papermill injects (its translators.py)
ENGINES = ("duckdb", "spark")
SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", re.I)  # memory_limit: 2GB, 500MB, 1.5GiB
# the master URLs Spark takes (SparkContext's master): local ones, a standalone cluster, YARN,
# Kubernetes, Mesos
SPARK_MASTER = r"local(\[(\*|\d+)(,\s*\d+)?\])?|spark://\S+|yarn|k8s://\S+|mesos://\S+"
# a table of the Spark catalog: table, db.table or catalog.db.table, parts plain or `quoted`
_PART = r"([A-Za-z_][A-Za-z0-9_]*|`[^`]+`)"
TABLE_NAME = rf"{_PART}(\.{_PART}){{0,2}}"


def _help(text: str, low: float | None = None, high: float | None = None) -> dict:
    # The text becomes the notebook's parameter comment: papermill's parser rejects '=' and ';'.
    assert "=" not in text and ";" not in text, text
    return {"help": text, "low": low, "high": high}


@dataclass
class PersonaParams:
    """Settings of one persona run. Each field's ``metadata['help']`` is its documentation."""

    # -- input -------------------------------------------------------------------------------
    events_path: str = field(
        default="",
        metadata=_help(
            "event log: CSV, CSV.gz, Parquet file, folder or glob of Parquet, empty means bundled "
            "sample"
        ),
    )
    user_col: str = field(default="user_id", metadata=_help("column holding the user id"))
    time_col: str = field(
        default="timestamp",
        metadata=_help("column holding the event time (ISO text, date, datetime or epoch s/ms)"),
    )
    event_col: str = field(
        default="event",
        metadata=_help(
            "column holding the event name, when absent every row is a purchase (order tables)"
        ),
    )
    amount_col: str = field(
        default="amount", metadata=_help("column holding the revenue of an event, optional")
    )
    session_col: str = field(
        default="",
        metadata=_help(
            "column holding a session id, empty means cut sessions at session_gap_minutes of "
            "inactivity"
        ),
    )
    session_gap_minutes: int = field(
        default=30, metadata=_help("inactivity that ends a session, in minutes", 1, 24 * 60)
    )
    roles_path: str = field(
        default="",
        metadata=_help(
            "YAML file mapping event names to roles (view, cart, purchase, ...), extends the "
            "defaults"
        ),
    )
    start: str = field(
        default="",
        metadata=_help(
            "first date or time of events to use (ISO like 2024-01-31 or 2024-01-31T08:00), "
            "empty means from the first event"
        ),
    )
    end: str = field(
        default="",
        metadata=_help(
            "last date or time of events to use, a date alone includes its whole day, "
            "empty means up to the last event"
        ),
    )
    reference_date: str = field(
        default="",
        metadata=_help(
            "the 'today' that recency features (days since ...) count to, a date alone means "
            "its midnight, empty means the last event used"
        ),
    )
    sample_users: int = field(
        default=5000,
        metadata=_help(
            "users in the bundled synthetic sample (used when events_path is empty)",
            100,
            10_000_000,
        ),
    )
    sample_seed: int = field(default=0, metadata=_help("seed of the bundled synthetic sample", 0))
    sample_period: int = field(
        default=1,
        metadata=_help(
            "year of the bundled sample's shop: 1 is the first, 2 the next year with the same "
            "users moved between personas, some gone and some new (compare the two with "
            "compare_to)",
            1,
            20,
        ),
    )
    features_path: str = field(
        default="",
        metadata=_help(
            "YAML file of your own per-user features (an SQL aggregate over the events or a Python "
            "function each, see the README), empty means the catalogue's only"
        ),
    )
    # -- naming ------------------------------------------------------------------------------
    rules_path: str = field(
        default="",
        metadata=_help(
            "YAML rule table that replaces the packaged naming rules (same format as rules.yaml)"
        ),
    )
    renames_path: str = field(
        default="",
        metadata=_help("YAML mapping of persona names to the names you want, applied after naming"),
    )
    # -- output ------------------------------------------------------------------------------
    output_dir: str = field(
        default="",
        metadata=_help(
            "run folder, empty means reports/<run_name>, relative ones are taken in the project "
            "folder"
        ),
    )
    run_name: str = field(
        default="",
        metadata=_help(
            "name of the run folder under reports/, empty means 'sample' or the events file's name"
        ),
    )
    title: str = field(default="Customer personas", metadata=_help("title of the HTML report"))
    currency: str = field(
        default="",
        metadata=_help(
            "ISO 4217 code of the amounts (EUR, USD, GBP...), shown with every money figure, empty "
            "means amounts without a currency"
        ),
    )
    publish: bool = field(
        default=True,
        metadata=_help(
            "move the finished run into output_dir at the end of the report step (the CLI sets "
            "False and publishes after saving the executed notebooks)"
        ),
    )
    compare_to: str = field(
        default="",
        metadata=_help(
            "folder of an earlier run: personas matched to its personas keep their ids and names, "
            "and the report compares the personas and shows who moved where (migration.csv), "
            "empty means no comparison"
        ),
    )
    # -- forecast ----------------------------------------------------------------------------
    forecast: bool = field(
        default=True,
        metadata=_help(
            "forecast each buyer from their purchase days and amounts (Pareto/NBD and "
            "Gamma-Gamma): probability still active, expected purchases and revenue, next "
            "purchase due"
        ),
    )
    horizon_days: int = field(
        default=90,
        metadata=_help("days ahead the forecast covers, counted from the reference date", 1, 3650),
    )
    holdout_days: int = field(
        default=0,
        metadata=_help(
            "check the forecast: fit it on the window less its last N days and compare the "
            "purchases it predicts over those days with the ones that happened, 0 means no check",
            0,
            3650,
        ),
    )
    # -- resources ---------------------------------------------------------------------------
    memory_limit: str = field(
        default="3GB",
        metadata=_help(
            "memory DuckDB may use to load the events and compute features (like 2GB or 500MB), "
            "past it DuckDB spills to temp_dir"
        ),
    )
    temp_dir: str = field(
        default="",
        metadata=_help(
            "folder DuckDB spills to past memory_limit, empty means the system's temporary folder"
        ),
    )
    # -- engine ------------------------------------------------------------------------------
    engine: str = field(
        default="duckdb",
        metadata=_help(
            "what computes the features and assigns the users: duckdb on this machine, or spark "
            "on a cluster (pip install personas[spark]), the same features either way"
        ),
    )
    events_table: str = field(
        default="",
        metadata=_help(
            "table of the Spark catalog holding the event log (like db.events), read instead of "
            "events_path, engine spark only"
        ),
    )
    spark_master: str = field(
        default="local[*]",
        metadata=_help(
            "the Spark master engine spark runs on: local[*], local[2], spark://host:7077, yarn, "
            "k8s://https://host:443 (an active Spark session, as in Databricks, is used as it is)"
        ),
    )
    # -- model -------------------------------------------------------------------------------
    min_personas: int = field(default=4, metadata=_help("fewest personas to report", 2, 30))
    max_personas: int = field(default=8, metadata=_help("most personas to report", 2, 30))
    n_components: int = field(
        default=5, metadata=_help("dimensions of the UMAP embedding that is clustered", 2, 50)
    )
    n_neighbors: int = field(
        default=30,
        metadata=_help("UMAP neighbourhood size: larger favours the global structure", 2, 500),
    )
    min_cluster_size: int = field(
        default=0,
        metadata=_help(
            "smallest group HDBSCAN calls a cluster, 0 means 0.5% of the fitted sample", 0
        ),
    )
    sample_size: int = field(
        default=5_000,
        metadata=_help(
            "users each fit is fitted on, everyone else is assigned to the nearest persona", 200
        ),
    )
    n_fits: int = field(
        default=5,
        metadata=_help(
            "independent fits, each on its own sample of users, that agree on the persona count "
            "and the personas (1 is fastest, more are steadier)",
            1,
            50,
        ),
    )
    max_fits: int = field(
        default=15,
        metadata=_help(
            "the most fits: while the fits reproduce no persona count, rounds of n_fits more "
            "are fitted up to this many (n_fits turns it off)",
            1,
            50,
        ),
    )
    random_state: int = field(
        default=0,
        metadata=_help("seed of the sample draw and the UMAP layout: same seed, same personas", 0),
    )

    # ----------------------------------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, strict: bool = False) -> PersonaParams:
        """Build from a mapping, converting each value by the field's type.

        With ``strict=True`` (CLI, YAML config) keys that are not fields are a
        :class:`ParameterError`. With ``strict=False`` (a notebook passing ``globals()``) the
        notebook's other variables are ignored, but a name papermill injected
        (:func:`injected_names`) must still be a field: ``-p max_persona 6`` fails as on the
        command line instead of leaving ``max_personas`` at its default unnoticed.
        """
        known = {f.name: f for f in fields(cls)}
        checked = list(values) if strict else injected_names(values)
        for key in checked:
            if key not in known:
                raise ParameterError(_unknown_message(key, list(known)), name=key)
        kwargs = {name: _convert(f, values[name]) for name, f in known.items() if name in values}
        params = cls(**kwargs)
        params.validate()
        return params

    def replace(self, **changes: Any) -> PersonaParams:
        return PersonaParams.from_mapping({**self.to_dict(), **changes}, strict=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> PersonaParams:
        """Check every value against its declared type and range; raise ParameterError."""
        for f in fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, _convert(f, value))
            low, high = f.metadata.get("low"), f.metadata.get("high")
            value = getattr(self, f.name)
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = (
                    f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
                )
                raise ParameterError(
                    f"parameter {f.name}={value!r} is out of range; use a value in {bounds} "
                    f"({f.metadata['help']})",
                    name=f.name,
                )
        if self.max_personas < self.min_personas:
            raise ParameterError(
                f"parameter max_personas={self.max_personas} is below min_personas="
                f"{self.min_personas}; raise max_personas or lower min_personas",
                name="max_personas",
            )
        for name in ("user_col", "time_col"):
            if not getattr(self, name).strip():
                raise ParameterError(
                    f"parameter {name} is empty; name the column to use", name=name
                )
        if not SIZE.fullmatch(self.memory_limit):
            raise ParameterError(
                f"parameter memory_limit={self.memory_limit!r} is not a size; "
                "write it like 2GB or 500MB",
                name="memory_limit",
            )
        if self.temp_dir and not Path(self.temp_dir).is_dir():
            raise ParameterError(
                f"parameter temp_dir={self.temp_dir!r} is not a folder; create "
                "it or leave temp_dir empty for the system's temporary folder",
                name="temp_dir",
            )
        self._check_engine()
        self._check_currency()
        self._check_dates()
        self._check_compare_to()
        return self

    def _check_engine(self) -> None:
        """engine is duckdb or spark; spark_master a master URL; events_table a table name, read by
        Spark only and never with events_path."""
        if self.engine not in ENGINES:
            raise ParameterError(
                f"parameter engine={self.engine!r} is not an engine; use {' or '.join(ENGINES)}",
                name="engine",
            )
        if not re.fullmatch(SPARK_MASTER, self.spark_master.strip()):
            raise ParameterError(
                f"parameter spark_master={self.spark_master!r} is not a Spark master URL; use "
                "local[*], local[N], spark://host:port, yarn or k8s://https://host:port",
                name="spark_master",
            )
        table = self.events_table.strip()
        if table and not re.fullmatch(TABLE_NAME, table):
            raise ParameterError(
                f"parameter events_table={self.events_table!r} is not a table name; write it "
                "like events, db.events or catalog.db.events",
                name="events_table",
            )
        if table and self.engine != "spark":
            raise ParameterError(
                f"parameter events_table={self.events_table!r} names a Spark catalog table; set "
                "engine=spark to read it, or give the file as events_path",
                name="events_table",
            )
        if table and self.events_path:
            raise ParameterError(
                f"parameters events_table={self.events_table!r} and events_path="
                f"{self.events_path!r} both name the input; keep one of them",
                name="events_table",
            )

    def _check_currency(self) -> None:
        """An ISO 4217 code Babel's CLDR data knows, stored upper-case; empty is none."""
        from .formatting import check_currency

        try:
            self.currency = check_currency(self.currency)
        except ValueError:
            raise ParameterError(
                f"parameter currency={self.currency!r} is not an ISO 4217 currency code; write "
                "the three-letter code of the amounts, like EUR, USD or GBP, or leave it empty "
                "for amounts without a currency",
                name="currency",
            ) from None

    def _check_compare_to(self) -> None:
        """An earlier run must hold personas.json and its assignments (the migration of users
        joins them): checked here, so a typo fails before any work."""
        if not self.compare_to:
            return
        folder = Path(self.compare_to)
        if not (folder / "personas.json").is_file():
            raise compare_to_error(
                self.compare_to,
                f"no such folder ({folder.resolve()})"
                if not folder.is_dir()
                else "the folder has no personas.json",
            )
        if not any(
            (folder / name).is_file() for name in ("assignments.parquet", "assignments.csv")
        ):
            raise compare_to_error(
                self.compare_to,
                "the folder has no assignments.parquet or "
                "assignments.csv, which the migration of users needs",
            )

    def _check_dates(self) -> None:
        """Parse start, end and reference_date once here, so a typo fails before any loading."""
        first, last = self.time_window()
        reference = self.reference_time()
        if first is not None and last is not None and first > last:
            raise ParameterError(
                f"parameter start={self.start!r} is after end={self.end!r}; swap them or leave "
                "one empty",
                name="start",
            )
        if reference is not None and first is not None and reference < first:
            raise ParameterError(
                f"parameter reference_date={self.reference_date!r} is before start="
                f"{self.start!r}; recency is counted to a date on or after the last event used, "
                "so set a later reference_date or leave it empty",
                name="reference_date",
            )

    # -- the date window and the reference date ------------------------------------------------
    def time_window(self) -> tuple[datetime | None, datetime | None]:
        """(first, last) instant of the events to keep, naive UTC, both inclusive; None = open.

        An ``end`` given as a date alone keeps that whole day: its last instant is 23:59:59.999999
        (DuckDB timestamps count microseconds, so nothing of that day falls outside).
        """
        first = parse_instant("start", self.start)
        last = parse_instant("end", self.end)
        if last is not None and _is_date_only(self.end):
            last += timedelta(days=1, microseconds=-1)
        return first, last

    def reference_time(self) -> datetime | None:
        """The instant "days since ..." features count to, naive UTC; None = the last event."""
        return parse_instant("reference_date", self.reference_date)

    # -- where the run goes --------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The run's name: run_name, else the events file's stem, else 'sample' (or
        'sample-period-2' and so on for a later year of the sample)."""
        if self.run_name:
            return self.run_name
        if not self.events_path:
            return "sample" if self.sample_period == 1 else f"sample-period-{self.sample_period}"
        # a glob is named after its part before the first wildcard: data/parts/*.parquet -> parts
        text = re.split(r"[*?[]", self.events_path, maxsplit=1)[0]
        stem = Path(text.rstrip("/")).name
        for suffix in (".gz", ".csv", ".parquet", ".pq"):
            stem = stem.removesuffix(suffix)
        return stem.rstrip("_-. ") or "run"

    def run_dir(self) -> Path:
        """The finished run folder.

        Empty ``output_dir`` means ``reports/<name>``; it and a relative ``output_dir`` are taken
        in the project folder (:func:`project_root`), so a notebook kernel, which runs in
        ``notebooks/``, writes where the command line does.
        """
        folder = Path(self.output_dir) if self.output_dir else Path("reports") / self.name
        return folder if folder.is_absolute() else project_root() / folder


def project_root() -> Path:
    """The folder that relative run folders are taken in: the project this package belongs to.

    That is the nearest folder holding a ``pyproject.toml`` of the ``personas`` project, looking
    up from the notebook JupyterLab runs (``JPY_SESSION_NAME``), from the working folder as the
    shell names it (``PWD``, when it still is the working folder) and from the working folder
    itself; without one, the working folder. ``Path.cwd()`` alone resolves symbolic links: in
    a kernel started in ``notebooks/``, a link to ``personas/notebooks``, its parent is the
    package, and the reports landed there.
    """
    here = Path.cwd()
    for start in _start_folders(here):
        for folder in (start, *start.parents):
            if _is_project(folder / "pyproject.toml"):
                return folder
    return here


def _start_folders(here: Path) -> list[Path]:
    """Where to look for the project from: the notebook's folder, the shell's name for the
    working folder, the working folder (the first two only when known and real)."""
    starts = []
    notebook = os.environ.get("JPY_SESSION_NAME", "")
    if os.path.isabs(notebook):
        starts.append(Path(notebook).parent)
    logical = os.environ.get("PWD", "")
    if os.path.isabs(logical) and os.path.isdir(logical) and os.path.samefile(logical, here):
        starts.append(Path(logical))
    return [*starts, here]


def _is_project(path: Path) -> bool:
    """Whether ``path`` is the pyproject.toml of this project (not of the researcher's own)."""
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return project.get("name") == PROJECT


def injected_names(namespace: Mapping[str, Any]) -> list[str]:
    """The names papermill injected into a notebook's namespace, in their order; none outside one.

    papermill runs its own cell, which starts ``# Parameters``, right after the cell tagged
    ``parameters``; IPython keeps every cell run in ``In``. The last such cell is the one that
    set the values a notebook is about to read, so its assignments are the injected names.
    """
    cells = namespace.get("In")
    if not isinstance(cells, list):
        return []
    for source in reversed(cells):
        if isinstance(source, str) and source.lstrip().startswith(PAPERMILL_CELL):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return []
            return [
                target.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            ]
    return []


def _convert(f: dataclasses.Field, value: Any) -> Any:
    kind = (
        f.type
        if isinstance(f.type, type)
        else {"str": str, "int": int, "float": float, "bool": bool}[f.type]
    )
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, int):
                return value
            return int(str(value).strip().replace("_", ""))
        if kind is float:
            return float(value)
        if value is None:
            return ""
        return str(value)
    except (TypeError, ValueError):
        raise ParameterError(
            f"parameter {f.name}={value!r} is not a valid {kind.__name__}; {f.metadata['help']}",
            name=f.name,
        ) from None


def _is_date_only(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def parse_instant(name: str, text: str) -> datetime | None:
    """ISO date or date-time text -> naive UTC datetime (the form the loaded events use).

    Empty text is None (no bound). A date alone is its midnight; a zone offset is converted to UTC
    and a time without one is taken as UTC, the same rules as the events' own timestamps. Raises
    ParameterError naming the parameter, so the user learns which of the dates to fix.
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ParameterError(
            f"parameter {name}={text!r} is not an ISO date or time; write it like 2024-05-31 "
            "or 2024-05-31T18:00:00, or leave it empty",
            name=name,
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def compare_to_error(value: str, why: str) -> ParameterError:
    """The one message for a compare_to that is not an earlier run (also used by the report)."""
    return ParameterError(
        f"parameter compare_to={str(value)!r}: {why}; set compare_to to the folder of an earlier "
        "run (the one holding its index.html and personas.json), or leave it empty for no "
        "comparison",
        name="compare_to",
    )


def _unknown_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown parameter {key!r}; {hint}valid names: {', '.join(known)}"
