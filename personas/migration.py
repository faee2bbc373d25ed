"""Who moved where between two runs of a series: persona identities that last, and migration.

A scheduled run compared with the one before it (parameter ``compare_to``) does two things here.

**Identities** (:func:`keep_identities`). The model numbers its personas afresh on every fit, so
without help the same persona gets another id each month and a CRM sync keyed on persona id
churns every user. The run's personas are matched to the earlier run's as the comparison does
(:func:`personas.report.compare.match_personas`: same name first, then the closest profile of
key-stat lifts). A matched persona keeps the earlier persona's **id** and **name**, a name the
earlier run got from ``renames_path`` included, unless this run renames it itself (its name
differs from the one the rules gave it: this run's rename wins). A persona without a match gets a
**fresh id**: one above the highest id the series has ever used, which each run records in
``run.json`` (``identities.highest_id``), so an id that belonged to a persona now gone is never
handed to another. ``assignments.*``, ``personas.json`` and the report all use the kept ids;
``identities.model_labels`` in ``run.json`` maps the model's own numbers to them (``personas
assign`` reads it).

**Migration** (:func:`migrate`). Both runs' assignment files are joined on ``user_id`` (a full
outer join in DuckDB, reading the Parquet files directly): one row per (persona then, persona now)
pair with its users. A user in the later run only is ``(new)``, one in the earlier run only is
``(gone)``. Moves are only ever counted for users both runs cover; users in one run only are
counted as new or gone, never as a move. Every total is checked against the files: the rows
``from_persona = P`` sum to P's users in the earlier assignment file, the rows ``to_persona = Q``
to Q's users in the later one.

**Windows.** Each run's data window is read from its ``run.json`` (``input.window_applied`` where
``start``/``end`` were set, else the first and last event kept). A migration between windows
that overlap counts the shared days' activity in both runs; between windows of different length
it compares a long look at behaviour with a short one. Both are stated as warnings (windows of
equal length within :data:`LENGTH_TOLERANCE`, three months of 90 and 92 days say, are not).

Why it is long: identities, the migration table, the data windows and the sentences that
describe the moves are the parts of one feature, each short, kept where one reader follows them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError
from .formatting import day
from .params import compare_to_error

NEW = "(new)"  # from_persona of a user only the later run has
GONE = "(gone)"  # to_persona of a user only the earlier run has
MIGRATION_FILE = "migration.csv"
COLUMNS = ("from_persona", "to_persona", "users")
LENGTH_TOLERANCE = 0.03  # windows whose lengths differ by more than this share are flagged
TOP_MOVES = 5  # moves spelled out in words


# -- identities ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identities:
    """How this run's personas got their ids and names (``identities`` in run.json)."""

    model_labels: dict[int, int]  # the model's persona number -> persona id
    highest_id: int  # the highest persona id the series has used
    kept: tuple[tuple[int, str, str], ...] = ()  # (id, earlier name kept, name the run gave)
    fresh: tuple[int, ...] = ()  # ids first used by this run
    previous_run: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "highest_id": self.highest_id,
            "model_labels": {str(k): v for k, v in self.model_labels.items()},
            "previous_run": self.previous_run,
            "fresh_ids": list(self.fresh),
            "kept_names": [
                {"id": i, "name": kept, "name_this_run_gave": given} for i, kept, given in self.kept
            ],
        }


def series_highest_id(folder: str | Path, personas: Sequence[Mapping[str, Any]]) -> int:
    """The highest persona id the series up to the run in ``folder`` has used: what its run.json
    recorded, and never less than the ids its personas.json holds (runs made before ids were
    kept record nothing)."""
    identities = read_run_info(folder).get("identities")
    value = identities.get("highest_id") if isinstance(identities, dict) else None
    recorded = value if isinstance(value, int) and not isinstance(value, bool) else -1
    return max([recorded, *(_id(r) for r in personas)])


def read_run_info(folder: str | Path) -> dict[str, Any]:
    """The run.json of the run in ``folder``; {} when it is missing or unreadable (a run made
    by an older version, or copied without it): what is read from it has a default."""
    try:
        info = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def _id(record: Mapping[str, Any]) -> int:
    value = record.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _lift_record(profile) -> dict[str, Any]:
    """What matching reads of a profile: its name and its figures' lifts, as personas.json has
    them (a KPI wins over a key stat of the same key, as there)."""
    return {
        "name": profile.name,
        "stats": {s.key: {"lift": s.lift} for s in (*profile.stats, *profile.kpis)},
    }


def keep_identities(
    profiles: Sequence, previous=None, highest: int | None = None
) -> tuple[tuple, Identities, dict[int, tuple[int, str]]]:
    """This run's profiles with the ids and names they keep from ``previous`` (a
    :class:`~personas.report.compare.PreviousRun`), the :class:`Identities` record, and the
    matches (profile index -> (earlier index, "name" or "profile")) for the comparison.

    ``highest`` is the series' highest id so far (:func:`series_highest_id`). Without
    ``previous`` the model's numbers are the ids. Unassigned users (id -1) stay -1.
    """
    from .report.compare import match_personas

    profiles = tuple(profiles)
    if previous is None:
        labels = {p.id: p.id for p in profiles}
        return (
            profiles,
            Identities(
                labels,
                max([-1, *labels.values()]),
                fresh=tuple(i for i in labels.values() if i >= 0),
            ),
            {},
        )
    before = previous.personas
    matches = match_personas([_lift_record(p) for p in profiles], before)
    top = max([-1 if highest is None else highest, *(_id(r) for r in before)])
    taken = {p.name for p in profiles}
    labels: dict[int, int] = {}
    kept, fresh, out = [], [], []
    used_ids = set()
    for i, p in enumerate(profiles):
        new_id, name = p.id, p.name
        j = matches.get(i, (None, ""))[0]
        earlier = before[j] if j is not None else None
        if p.id < 0:
            pass  # unassigned users keep -1
        elif earlier is not None and _id(earlier) >= 0 and _id(earlier) not in used_ids:
            new_id = _id(earlier)
            # the earlier name stays, unless this run renamed the persona itself
            if (
                earlier["name"] != p.name
                and p.name == p.default_name
                and earlier["name"] not in taken
            ):
                taken.discard(p.name)
                taken.add(earlier["name"])
                kept.append((new_id, earlier["name"], p.name))
                name = earlier["name"]
        else:
            top += 1
            new_id = top
            fresh.append(new_id)
        used_ids.add(new_id)
        labels[p.id] = new_id
        out.append(_renamed(p, new_id, name))
    return tuple(out), Identities(labels, top, tuple(kept), tuple(fresh), previous.folder), matches


def _renamed(profile, new_id: int, name: str):
    """``profile`` with another id and name; its description, which opens with the name, too."""
    description = profile.description
    if name != profile.name and description.startswith(profile.name):
        description = name + description[len(profile.name) :]
    return dataclasses.replace(profile, id=new_id, name=name, description=description)


def relabel(values: pd.Series, model_labels: Mapping[int, int]) -> pd.Series:
    """Persona numbers of the model -> the run's persona ids (numbers not in the map stay).

    Examples
    --------
    >>> relabel(pd.Series([0, 1, 2, -1]), {0: 4, 1: 0, 2: 9}).tolist()
    [4, 0, 9, -1]
    """
    if all(k == v for k, v in model_labels.items()):
        return values
    lookup = pd.Series(model_labels, dtype="int64")
    mapped = values.map(lookup)
    return mapped.fillna(values).astype(values.dtype)


# -- one run, as the migration reads it ------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The data a run covered: first and last instant (ISO text), None when unknown."""

    start: str | None
    end: str | None

    @property
    def known(self) -> bool:
        return bool(self.start and self.end)

    def bounds(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        if not self.known:
            return None
        try:
            return pd.Timestamp(self.start), pd.Timestamp(self.end)
        except (ValueError, TypeError):
            return None

    @property
    def days(self) -> int | None:
        """Calendar days covered, both ends included."""
        b = self.bounds()
        return None if b is None else (b[1].normalize() - b[0].normalize()).days + 1

    @property
    def text(self) -> str:
        """ "1 Jan 2024 to 31 Dec 2024 (366 days)", dates as the rest of the report writes them,
        or "unknown".

        Examples
        --------
        >>> Window("2024-01-01 08:12:00", "2024-03-31 22:00:00").text
        '1 Jan 2024 to 31 Mar 2024 (91 days)'
        >>> Window(None, "2024-03-31").text
        'unknown'
        """
        b = self.bounds()
        if b is None:
            return "unknown"
        return f"{day(b[0])} to {day(b[1])} ({self.days:,} day{'s' * (self.days != 1)})"

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "days": self.days}


def window_of(info: Mapping[str, Any]) -> Window:
    """The window a run.json (or a run's state) says it covered: the start/end it applied where
    set, else its first and last event kept."""
    source = info.get("input", info) if isinstance(info, Mapping) else {}
    seen = source.get("window") or {}
    applied = source.get("window_applied") or {}
    return Window(applied.get("start") or seen.get("start"), applied.get("end") or seen.get("end"))


@dataclass(frozen=True)
class PersonaRef:
    """A persona of one run: id, name and users, as its personas.json has them."""

    id: int
    name: str
    size: int


@dataclass(frozen=True)
class RunSide:
    """One run of a migration: its folder, personas, data window and assignment file."""

    folder: str
    personas: tuple[PersonaRef, ...]
    window: Window
    assignments: Path
    run_date: str | None = None


def assignments_file(folder: str | Path) -> Path:
    """A run folder's assignments: the Parquet file, else the CSV; ParameterError naming
    ``compare_to`` when it has neither."""
    folder = Path(folder)
    for name in ("assignments.parquet", "assignments.csv"):
        if (folder / name).is_file():
            return folder / name
    raise compare_to_error(
        folder,
        "the folder has no assignments.parquet or assignments.csv, "
        "which the migration of users needs",
    )


def _persona_refs(records: Sequence[Mapping[str, Any]]) -> tuple[PersonaRef, ...]:
    return tuple(PersonaRef(_id(r), str(r["name"]), int(r.get("size") or 0)) for r in records)


def read_side(
    folder: str | Path,
    personas: Sequence[Mapping[str, Any]] | None = None,
    window: Window | None = None,
    assignments: str | Path | None = None,
) -> RunSide:
    """A run folder as a migration side. Anything given is used as is (the report step passes
    the run it is writing, whose run.json does not exist yet); the rest is read from the
    folder."""
    from .report.compare import read_personas

    folder = Path(folder)
    records = personas if personas is not None else read_personas(folder)
    info = read_run_info(folder)
    return RunSide(
        str(folder),
        _persona_refs(records),
        window if window is not None else window_of(info),
        Path(assignments) if assignments is not None else assignments_file(folder),
        info.get("run_date"),
    )


# -- the migration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """Users who were in one persona then and are in another (or the same) now."""

    source: str  # persona name then, or NEW
    target: str  # persona name now, or GONE
    users: int
    source_id: int | None  # None for NEW
    target_id: int | None  # None for GONE

    @property
    def stay(self) -> bool:
        return self.source_id is not None and self.source_id == self.target_id

    @property
    def move(self) -> bool:
        """Between two personas, both runs covering the user."""
        return (
            self.source_id is not None
            and self.target_id is not None
            and self.source_id != self.target_id
        )


@dataclass(frozen=True)
class Retention:
    """What became of one earlier persona's users."""

    id: int
    name: str
    users: int  # in the earlier run
    stayed: int  # in the same persona now (same id)
    moved: int  # in another persona now
    gone: int  # not in this run

    @property
    def retention(self) -> float | None:
        return self.stayed / self.users if self.users else None

    @property
    def gone_share(self) -> float | None:
        return self.gone / self.users if self.users else None


@dataclass(frozen=True)
class Migration:
    """Users of two runs, joined on user id: one flow per (persona then, persona now)."""

    earlier: RunSide
    later: RunSide
    flows: tuple[Flow, ...]  # earlier persona order, NEW last; later order, GONE last
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()

    # totals
    def _sum(self, test) -> int:
        return sum(f.users for f in self.flows if test(f))

    @property
    def earlier_users(self) -> int:
        return self._sum(lambda f: f.source_id is not None)

    @property
    def later_users(self) -> int:
        return self._sum(lambda f: f.target_id is not None)

    @property
    def both(self) -> int:
        return self._sum(lambda f: f.source_id is not None and f.target_id is not None)

    @property
    def new(self) -> int:
        return self._sum(lambda f: f.source_id is None)

    @property
    def gone(self) -> int:
        return self._sum(lambda f: f.target_id is None)

    @property
    def stayed(self) -> int:
        return self._sum(lambda f: f.stay)

    @property
    def moved(self) -> int:
        return self._sum(lambda f: f.move)

    def retention(self) -> tuple[Retention, ...]:
        """One row per earlier persona, in the earlier run's order."""
        rows = []
        for p in self.earlier.personas:
            mine = [f for f in self.flows if f.source_id == p.id]
            users = sum(f.users for f in mine)
            rows.append(
                Retention(
                    p.id,
                    p.name,
                    users,
                    sum(f.users for f in mine if f.stay),
                    sum(f.users for f in mine if f.move),
                    sum(f.users for f in mine if f.target_id is None),
                )
            )
        return tuple(rows)

    def source_size(self, flow: Flow) -> int:
        return self._sum(lambda f: f.source_id == flow.source_id and f.source == flow.source)

    def largest_moves(self, n: int = TOP_MOVES) -> tuple[Flow, ...]:
        """The ``n`` largest moves between two personas, largest first."""
        moves = sorted(
            (f for f in self.flows if f.move), key=lambda f: (-f.users, f.source, f.target)
        )
        return tuple(moves[:n])

    def new_by_persona(self) -> tuple[Flow, ...]:
        return tuple(
            sorted(
                (f for f in self.flows if f.source_id is None), key=lambda f: (-f.users, f.target)
            )
        )

    def gone_by_persona(self) -> tuple[Flow, ...]:
        return tuple(
            sorted(
                (f for f in self.flows if f.target_id is None), key=lambda f: (-f.users, f.source)
            )
        )

    def table(self) -> pd.DataFrame:
        """migration.csv: from_persona, to_persona, users."""
        return pd.DataFrame(
            [(f.source, f.target, f.users) for f in self.flows], columns=list(COLUMNS)
        ).astype({"users": "int64"})

    def write_csv(self, folder: str | Path) -> Path:
        path = Path(folder) / MIGRATION_FILE
        self.table().to_csv(path, index=False)
        return path

    def to_dict(self) -> dict[str, Any]:
        """``comparison.migration`` in run.json."""
        return {
            "file": MIGRATION_FILE,
            "earlier_run": self.earlier.folder,
            "earlier_window": self.earlier.window.to_dict(),
            "window": self.later.window.to_dict(),
            "users": {
                "earlier": self.earlier_users,
                "now": self.later_users,
                "in_both": self.both,
                "stayed": self.stayed,
                "moved": self.moved,
                "new": self.new,
                "gone": self.gone,
            },
            "rows": [
                {
                    "from_persona": f.source,
                    "to_persona": f.target,
                    "users": f.users,
                    "from_id": f.source_id,
                    "to_id": f.target_id,
                }
                for f in self.flows
            ],
            "retention": [
                {
                    "id": r.id,
                    "name": r.name,
                    "users": r.users,
                    "stayed": r.stayed,
                    "moved": r.moved,
                    "gone": r.gone,
                    "retention": _round(r.retention),
                }
                for r in self.retention()
            ],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _relation(path: Path) -> str:
    """DuckDB's reader for an assignment file, user ids as text either way."""
    quoted = "'" + str(path).replace("'", "''") + "'"
    if path.suffix == ".parquet":
        return f"read_parquet({quoted})"
    return (
        f"read_csv({quoted}, header = true, "
        "types = {'user_id': 'VARCHAR', 'persona': 'VARCHAR', 'persona_id': 'BIGINT'})"
    )


def unreadable_assignments_error(path: Path, why: str) -> InputError:
    """The sentence for an assignment file that cannot be read as one (``why``: the reader's)."""
    return InputError(
        f"assignment file {str(path)!r} cannot be read as assignments "
        f"({why}); a run writes it with the columns user_id, "
        "persona_id and persona: use the run's own file"
    )


def repeated_users_error(path: Path, extra: int) -> InputError:
    """The sentence for an assignment file holding ``extra`` user ids more than once."""
    return InputError(
        f"assignment file {str(path)!r} holds {extra:,} user ids "
        "more than once; an assignment file has one row per user: use "
        "the run's own file"
    )


def count_flows(earlier: Path, later: Path) -> pd.DataFrame:
    """(from_id, from_name, to_id, to_name, users) of two assignment files joined on user_id;
    ids and names are null on the side a user is missing from.

    Raises InputError when a file cannot be read as assignments, or holds a user twice: the join
    would count that user twice, and the table would no longer agree with the files.
    """
    import duckdb

    con = duckdb.connect()
    try:
        for side, path in (("a", earlier), ("b", later)):
            try:
                con.execute(
                    f"CREATE TEMP VIEW {side} AS SELECT CAST(user_id AS VARCHAR) AS "
                    f"user_id, CAST(persona_id AS BIGINT) AS persona_id, "
                    f"CAST(persona AS VARCHAR) AS persona FROM {_relation(path)}"
                )
                rows, users = con.execute(
                    f"SELECT count(*), count(DISTINCT user_id) FROM {side}"
                ).fetchone()
            except duckdb.Error as exc:
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise unreadable_assignments_error(path, why) from None
            if rows != users:
                raise repeated_users_error(path, rows - users)
        return con.execute(
            "SELECT a.persona_id AS from_id, any_value(a.persona) AS from_name, "
            "b.persona_id AS to_id, any_value(b.persona) AS to_name, count(*) AS users "
            "FROM a FULL OUTER JOIN b ON a.user_id = b.user_id "
            "GROUP BY a.persona_id, b.persona_id"
        ).df()
    finally:
        con.close()


def migrate(
    earlier: RunSide,
    later: RunSide,
    count: Callable[[Path, Path], pd.DataFrame] = count_flows,
) -> Migration:
    """Join the two runs' assignments on user id (see the module docstring).

    ``count`` counts the users of each pair of personas from the two assignment files
    (:func:`count_flows`, DuckDB; on Spark :func:`personas.spark.report.count_flows`).

    Examples
    --------
    Two runs of four users each: u1 stays a Browser, u2 moves to Buyer, u3 is gone, u5 is new.

    >>> import json, tempfile, pathlib
    >>> def write(folder, users, personas):
    ...     folder.mkdir()
    ...     pd.DataFrame(users, columns=["user_id", "persona_id", "persona"]).to_parquet(
    ...         folder / "assignments.parquet")
    ...     (folder / "personas.json").write_text(json.dumps(personas))
    ...     return folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> people = [{"id": 0, "name": "Browser", "size": 2, "share": 0.5},
    ...           {"id": 1, "name": "Buyer", "size": 2, "share": 0.5}]
    >>> then = write(root / "march", [("u1", 0, "Browser"), ("u2", 0, "Browser"),
    ...                               ("u3", 1, "Buyer"), ("u4", 1, "Buyer")], people)
    >>> now = write(root / "april", [("u1", 0, "Browser"), ("u2", 1, "Buyer"),
    ...                              ("u4", 1, "Buyer"), ("u5", 0, "Browser")], people)
    >>> m = migrate(read_side(then), read_side(now))
    >>> print(m.table().to_string(index=False))
    from_persona to_persona  users
         Browser    Browser      1
         Browser      Buyer      1
           Buyer      Buyer      1
           Buyer     (gone)      1
           (new)    Browser      1
    >>> m.both, m.stayed, m.moved, m.new, m.gone
    (3, 2, 1, 1, 1)
    """
    counts = count(earlier.assignments, later.assignments)
    names_then = {p.id: p.name for p in earlier.personas}
    names_now = {p.id: p.name for p in later.personas}
    order_then = {p.id: i for i, p in enumerate(earlier.personas)}
    order_now = {p.id: i for i, p in enumerate(later.personas)}
    flows = []
    for row in counts.itertuples(index=False):
        src = None if _null(row.from_id) else int(row.from_id)
        dst = None if _null(row.to_id) else int(row.to_id)
        flows.append(
            Flow(
                NEW if src is None else names_then.get(src, str(row.from_name)),
                GONE if dst is None else names_now.get(dst, str(row.to_name)),
                int(row.users),
                src,
                dst,
            )
        )
    big = len(order_then) + len(order_now) + 1
    flows.sort(
        key=lambda f: (
            big if f.source_id is None else order_then.get(f.source_id, big - 1),
            f.source,
            big if f.target_id is None else order_now.get(f.target_id, big - 1),
            f.target,
        )
    )
    return Migration(
        earlier,
        later,
        tuple(flows),
        window_warnings(earlier.window, later.window),
        _notes(earlier.window, later.window),
    )


def _null(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


# -- windows ---------------------------------------------------------------------------------------


def window_warnings(earlier: Window, later: Window) -> tuple[str, ...]:
    """What a reader must know before trusting the moves: overlapping, reversed, unequal or
    unknown windows.

    Examples
    --------
    >>> window_warnings(Window("2025-01-01", "2025-03-31"), Window("2025-04-01", "2025-06-30"))
    ()
    >>> for w in window_warnings(Window("2025-01-01", "2025-03-31"),
    ...                          Window("2025-03-01", "2025-12-31")):
    ...     print(w[:58].rstrip())
    The two runs' data windows overlap by 31 days (1 Mar 2025
    The windows differ in length (90 days then, 306 days now):
    """
    a, b = earlier.bounds(), later.bounds()
    if a is None or b is None:
        which = " and ".join(
            name for name, w in (("the earlier run's", a), ("this run's", b)) if w is None
        )
        return (
            f"The data window of {which} is unknown, so whether the two runs cover separate, "
            "equally long periods cannot be checked.",
        )
    out = []
    if b[1] < a[1]:
        out.append(
            f"This run's data ends ({day(b[1])}) before the earlier run's "
            f"({day(a[1])}): the moves run backwards in time."
        )
    shared_start, shared_end = max(a[0], b[0]), min(a[1], b[1])
    if shared_start <= shared_end:
        days = (shared_end.normalize() - shared_start.normalize()).days + 1
        out.append(
            f"The two runs' data windows overlap by {days:,} day{'s' * (days != 1)} "
            f"({day(shared_start)} to {day(shared_end)}): a user active then "
            "is judged on the same events in both runs, so stays and retention read "
            "higher than between two separate periods."
        )
    then, now = earlier.days, later.days
    if abs(then - now) > LENGTH_TOLERANCE * max(then, now):
        out.append(
            f"The windows differ in length ({then:,} days then, {now:,} days now): "
            "frequency and recency are measured over different spans, so part of the "
            "moves (and of the new and gone users) comes from the windows, not from "
            "behaviour."
        )
    return tuple(out)


def _notes(earlier: Window, later: Window) -> tuple[str, ...]:
    a, b = earlier.bounds(), later.bounds()
    if a is None or b is None or b[0] <= a[1]:
        return ()
    gap = (b[0].normalize() - a[1].normalize()).days - 1
    if gap < 1:
        return ()
    return (
        f"{gap:,} day{'s' * (gap != 1)} between the two windows "
        f"({day(a[1])} to {day(b[0])}, exclusive) are in neither run: a user "
        "active only then counts as gone.",
    )


# -- words -----------------------------------------------------------------------------------------


def _count(n: int) -> str:
    return f"{n:,}"


def _share(part: int, whole: int) -> str:
    if not whole:
        return "–"
    value = 100 * part / whole
    if 0 < value < 1:
        return "< 1 %"
    return f"{value:.0f} %"


def move_sentence(m: Migration, f: Flow) -> str:
    """ "1,240 of 6,890 users in Cart Abandoner (18 %) are now in Loyal Big Spender." """
    whole = m.source_size(f)
    return (
        f"{_count(f.users)} of {_count(whole)} user{'s' * (whole != 1)} in {f.source} "
        f"({_share(f.users, whole)}) {'is' if f.users == 1 else 'are'} now in {f.target}."
    )


def gone_sentence(m: Migration) -> str:
    if not m.gone:
        return "No user of the earlier run is missing from this one."
    parts = [
        f"{f.source} ({_count(f.users)}, {_share(f.users, m.source_size(f))} of its users)"
        for f in m.gone_by_persona()[:3]
    ]
    return (
        f"{_count(m.gone)} user{'s' * (m.gone != 1)} of the earlier run "
        f"({_share(m.gone, m.earlier_users)}) {'has' if m.gone == 1 else 'have'} no "
        "events in this run's data (gone); the most from " + ", ".join(parts) + "."
    )


def new_sentence(m: Migration) -> str:
    if not m.new:
        return "Every user of this run was in the earlier run too."
    parts = [f"{f.target} ({_count(f.users)})" for f in m.new_by_persona()[:3]]
    return (
        f"{_count(m.new)} user{'s' * (m.new != 1)} of this run "
        f"({_share(m.new, m.later_users)}) {'is' if m.new == 1 else 'are'} new: not in "
        "the earlier run's data; the most joined " + ", ".join(parts) + "."
    )


def summary_sentence(m: Migration) -> str:
    """Of the users in both runs, how many stayed and how many moved."""
    if not m.both:
        return "No user is in both runs, so no one can be followed from one to the other."
    return (
        f"{_count(m.both)} users are in both runs: {_count(m.stayed)} "
        f"({_share(m.stayed, m.both)}) stayed in their persona and {_count(m.moved)} "
        f"({_share(m.moved, m.both)}) moved to another."
    )


__all__ = [
    "NEW",
    "GONE",
    "MIGRATION_FILE",
    "Identities",
    "keep_identities",
    "relabel",
    "series_highest_id",
    "Window",
    "window_of",
    "RunSide",
    "read_side",
    "assignments_file",
    "Flow",
    "Retention",
    "Migration",
    "migrate",
    "count_flows",
    "window_warnings",
    "move_sentence",
    "gone_sentence",
    "new_sentence",
    "summary_sentence",
]
