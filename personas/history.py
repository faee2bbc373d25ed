"""A series of runs on one page: each persona's share over time and who moved between runs.

``personas history reports/shop-*`` (or :func:`write_history`) reads any number of run folders
of one series, orders them by the end of their data window (the order given where a window is
unknown), and writes one self-contained HTML page:

- each persona's share of its run's users, run by run, as lines and as a table. A persona is
  followed by its **id**: runs chained with ``compare_to`` keep the ids of matched personas
  (:mod:`personas.migration`), so one id is one persona across the series. Where a run was not
  compared with the run before it, the page says so: its ids may belong to other personas;
- for each pair of consecutive runs, the migration of users between them (the same join as
  ``migration.csv``, :func:`personas.migration.migrate`), with its window warnings, the largest
  moves in words, an alluvial chart and the table.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import ParameterError
from .migration import Migration, RunSide, migrate, read_run_info, read_side

MIN_RUNS = 2


def _run_error(folder: str | Path, why: str) -> ParameterError:
    return ParameterError(
        f"run folder {str(folder)!r}: {why}; give the folders of finished runs "
        "(each holding personas.json and assignments.parquet or .csv)",
        name="runs",
    )


@dataclass(frozen=True)
class HistoryRun:
    """One run of the series."""

    side: RunSide
    label: str  # the folder's name
    users: int
    shares: dict[int, float]  # persona id -> share of the run's users
    compared_to: str | None  # the run its compare_to named (as given); None without one

    @property
    def folder(self) -> str:
        return self.side.folder


@dataclass(frozen=True)
class Step:
    """Two consecutive runs of the series and the migration between them."""

    earlier: HistoryRun
    later: HistoryRun
    migration: Migration
    chained: bool  # the later run was compared with the earlier one
    chart: Any = None  # render.Chart of the flow
    summary: str = ""
    moves: tuple[str, ...] = ()
    new: str = ""
    gone: str = ""


@dataclass(frozen=True)
class PersonaLine:
    """One persona across the series: its id, latest name and share in each run."""

    id: int
    name: str
    names: tuple[str, ...]  # every name it had, in run order
    shares: tuple[float | None, ...]  # None where the run lacks it


@dataclass(frozen=True)
class History:
    runs: tuple[HistoryRun, ...]
    steps: tuple[Step, ...]
    personas: tuple[PersonaLine, ...]
    ordered_by: str  # "window" or "given"

    @property
    def unchained(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.chained)


def read_run(folder: str | Path) -> HistoryRun:
    """One run folder of the series; ParameterError when it is not a finished run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise _run_error(
            folder, "a file, not a run folder" if folder.exists() else "no such folder"
        )
    path = folder / "personas.json"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _run_error(folder, "it has no personas.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _run_error(folder, f"its personas.json cannot be read ({exc})") from None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("name"), str) for r in records
    ):
        raise _run_error(folder, "its personas.json is not a list of personas with a name")
    if not any((folder / n).is_file() for n in ("assignments.parquet", "assignments.csv")):
        raise _run_error(folder, "it has no assignments.parquet or assignments.csv")
    side = read_side(folder, records)
    info = read_run_info(folder)
    compared = (info.get("comparison") or {}).get("previous_run")
    users = sum(p.size for p in side.personas)
    shares = {p.id: (p.size / users if users else 0.0) for p in side.personas}
    return HistoryRun(
        side, folder.resolve().name, users, shares, compared if isinstance(compared, str) else None
    )


def _chained(earlier: HistoryRun, later: HistoryRun) -> bool:
    """Whether ``later`` was compared with ``earlier`` (so it kept its persona ids). compare_to
    was a path as the run was given it, maybe relative to another working folder: the same
    folder once resolved, or else the same folder name, counts."""
    if later.compared_to is None:
        return False
    named, folder = Path(later.compared_to), Path(earlier.folder)
    return named.resolve() == folder.resolve() or named.name == folder.resolve().name


def build_history(folders: list[str | Path]) -> History:
    """Read the runs, order them, and join each pair of consecutive runs."""
    if len(folders) < MIN_RUNS:
        raise ParameterError(
            f"history needs at least {MIN_RUNS} run folders (got "
            f"{len(folders)}); give the runs of one series, e.g. "
            "personas history reports/shop-*",
            name="runs",
        )
    seen: dict[Path, str] = {}
    for folder in folders:
        key = Path(folder).resolve()
        if key in seen:
            raise ParameterError(
                f"run folder {str(folder)!r} is given twice (also as "
                f"{seen[key]!r}); give each run once",
                name="runs",
            )
        seen[key] = str(folder)
    runs = [read_run(f) for f in folders]
    ends = [r.side.window.bounds() for r in runs]
    ordered_by = "given"
    if all(e is not None for e in ends):
        order = sorted(range(len(runs)), key=lambda i: (ends[i][1], ends[i][0]))
        runs = [runs[i] for i in order]
        ordered_by = "window"
    steps = []
    for a, b in zip(runs, runs[1:]):
        steps.append(Step(a, b, migrate(a.side, b.side), _chained(a, b)))
    return History(tuple(runs), tuple(steps), _lines(runs), ordered_by)


def _lines(runs: list[HistoryRun]) -> tuple[PersonaLine, ...]:
    order: dict[int, None] = {}
    for run in runs:
        for p in run.side.personas:
            order.setdefault(p.id)
    lines = []
    for pid in order:
        names = tuple(
            dict.fromkeys(p.name for run in runs for p in run.side.personas if p.id == pid)
        )
        latest = next(p.name for run in reversed(runs) for p in run.side.personas if p.id == pid)
        lines.append(PersonaLine(pid, latest, names, tuple(run.shares.get(pid) for run in runs)))
    return tuple(lines)


def render_history(history: History, title: str = "Persona history") -> str:
    """The history page as an HTML string."""
    import dataclasses

    from .migration import gone_sentence, move_sentence, new_sentence, summary_sentence
    from .report import charts, flows
    from .report.render import _chart, make_environment

    colours = charts.persona_colours([p.id for p in history.personas])
    labels = [r.label for r in history.runs]
    lines = _chart(
        flows.share_lines(labels, [(p.id, p.name, p.shares) for p in history.personas], colours),
        "Line chart of each persona's share of its run's users, run by run: "
        + "; ".join(
            f"{p.name}: " + ", ".join("none" if s is None else f"{100 * s:.1f} %" for s in p.shares)
            for p in history.personas
        )
        + ".",
        "Each persona's share of its run's users; a line is one persona id across the runs, a "
        "gap a run without it.",
    )
    steps = []
    for i, s in enumerate(history.steps):
        m = s.migration
        chart = _chart(
            flows.flow_chart(m, colours, key=f"flow{i}", left=s.earlier.label, right=s.later.label),
            flows.flow_alt(m),
            flows.FLOW_CAPTION,
        )
        steps.append(
            dataclasses.replace(
                s,
                chart=chart,
                summary=summary_sentence(m),
                moves=tuple(move_sentence(m, f) for f in m.largest_moves()),
                new=new_sentence(m),
                gone=gone_sentence(m),
            )
        )
    template = make_environment().get_template("history.html.j2")
    return template.render(
        history=history,
        steps=steps,
        lines=lines,
        colours=colours,
        title=title,
        run_date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_history(
    folders: list[str | Path], out: str | Path, title: str = "Persona history"
) -> Path:
    """Build the series' page and write it to ``out`` atomically; return its path. A folder as
    ``out`` gets ``history.html`` inside it."""
    out = Path(out)
    if out.is_dir():
        out = out / "history.html"
    html = render_history(build_history(folders), title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
