"""Compare this run's personas with those of an earlier run (parameter ``compare_to``).

Both sides are read from ``personas.json``, the file every run writes, so a run can be compared
with any earlier one, whatever changed in between (data, parameters, package version).

How a current persona finds its previous one
--------------------------------------------
1. **By name.** Names are what stakeholders know, and the naming rules give the same name to the
   same behaviour, so an equal name is taken as the same persona.
2. **By profile**, for the personas whose name is new. A persona's profile is its key stats in
   ``personas.json`` expressed as lifts (persona figure / all users' figure), on a log2 scale and
   clipped to 1/16..16: lifts have no unit, so order counts, money and shares weigh alike, and
   they describe how the group *differs* from everyone, which is what a persona is, even when the
   whole customer base drifted between the runs. The distance between two profiles is the root
   mean square of the differences over the stats both personas report (at least
   :data:`MIN_SHARED`); 1.0 means "typically a factor of two apart". On the bundled sample, the
   same persona in two independent runs (other data seed, size and model seed) lay 0.09 to 0.77
   apart, and different personas 1.08 or more, in one run or across the two; hence the limit
   :data:`MAX_DISTANCE` of 1.0. The closest pair is matched first, then the next closest among
   the rest, and so on, as long as the distance is within that limit. Greedy rather than an
   optimal assignment: each match can be explained on its own ("these two are the closest
   left"), and the two differ only when several personas are nearly equidistant, where no
   answer would be convincing anyway.
3. A current persona left without a match **appeared**; a previous persona left over
   **disappeared**.

Shares are each run's own share of its users, so a change of +2.0 points means the persona went
from, say, 10 % of the users in the earlier run to 12 % of the users in this one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..params import compare_to_error

PERSONAS_FILE = "personas.json"
MAX_DISTANCE = 1.0  # RMS of log2 lift differences: same persona <= 0.77, others >= 1.08
MIN_SHARED = 3  # stats two personas must both report before their profiles are compared
LIFT_CLIP = 16.0  # lifts are clipped to 1/16..16 (a zero lift would be minus infinity)


@dataclass(frozen=True)
class PersonaShare:
    """One persona of one run, as far as the comparison needs it."""

    id: int
    name: str
    size: int
    share: float


@dataclass(frozen=True)
class PersonaChange:
    """A current persona next to its previous persona (``then`` is None: it is new)."""

    now: PersonaShare
    then: PersonaShare | None
    matched_by: str  # "name", "profile", or "" when the persona appeared
    distance: float | None  # profile distance (see the module docstring), when computable

    @property
    def change_points(self) -> float | None:
        """Share now minus share then, in percentage points (None for a new persona)."""
        if self.then is None:
            return None
        return round(100 * (self.now.share - self.then.share), 2)


@dataclass(frozen=True)
class Comparison:
    """This run against one earlier run: one change per current persona, plus the ones gone."""

    previous_run: str
    previous_users: int | None  # from the earlier run.json, when it has one
    previous_window: tuple[str | None, str | None]
    changes: tuple[PersonaChange, ...]  # in this run's persona order
    disappeared: tuple[PersonaShare, ...]  # in the earlier run's persona order

    @property
    def appeared(self) -> tuple[PersonaShare, ...]:
        return tuple(c.now for c in self.changes if c.then is None)

    def count(self, matched_by: str) -> int:
        return sum(c.matched_by == matched_by for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """The ``comparison`` entry of run.json."""
        return {
            "previous_run": self.previous_run,
            "previous_users": self.previous_users,
            "previous_window": {"start": self.previous_window[0], "end": self.previous_window[1]},
            "method": "match by name, then by nearest profile of key-stat lifts "
            f"(log2 RMS distance at most {MAX_DISTANCE})",
            "personas": [_change_dict(c) for c in self.changes],
            "appeared": [_share_dict(p) for p in self.appeared],
            "disappeared": [_share_dict(p) for p in self.disappeared],
        }


def _share_dict(p: PersonaShare) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "size": p.size, "share": p.share}


def _change_dict(c: PersonaChange) -> dict[str, Any]:
    then = c.then
    return {
        "id": c.now.id,
        "name": c.now.name,
        "size": c.now.size,
        "share": c.now.share,
        "previous_id": then.id if then else None,
        "previous_name": then.name if then else None,
        "previous_size": then.size if then else None,
        "previous_share": then.share if then else None,
        "change_points": c.change_points,
        "matched_by": c.matched_by or None,
        "distance": c.distance,
    }


# -- reading a run ---------------------------------------------------------------------------------


def read_personas(folder: str | Path) -> list[dict[str, Any]]:
    """The persona records of a run folder's personas.json.

    Raises ParameterError naming ``compare_to`` when the folder or file is missing or the file is
    not a list of personas with a name and a share: the folder comes from that parameter, and the
    fix is to point it elsewhere.
    """
    folder = Path(folder)
    path = folder / PERSONAS_FILE
    if not folder.is_dir():
        raise compare_to_error(folder, f"no such folder ({folder.resolve()})")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise compare_to_error(folder, f"the folder has no {PERSONAS_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise compare_to_error(folder, f"its {PERSONAS_FILE} cannot be read ({exc})") from None
    if not isinstance(records, list) or not all(
        isinstance(r, Mapping)
        and isinstance(r.get("name"), str)
        and isinstance(r.get("share"), (int, float))
        for r in records
    ):
        raise compare_to_error(
            folder, f"its {PERSONAS_FILE} is not a list of personas with a name and a share"
        )
    return records


@dataclass(frozen=True)
class PreviousRun:
    """The earlier run named by ``compare_to``: its personas, and context from its run.json."""

    folder: str
    personas: tuple[Mapping[str, Any], ...]
    users: int | None = None
    window: tuple[str | None, str | None] = (None, None)


def read_previous_run(folder: str | Path) -> PreviousRun:
    """Read the run folder ``compare_to`` names; raise ParameterError when it is not one.

    Called at the start of the report step, before anything of it is written. run.json is
    optional (users and data window only add context), personas.json is required.
    """
    personas = read_personas(folder)
    try:
        info = json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        info = {}
    info = info if isinstance(info, dict) else {}
    users = (info.get("counts") or {}).get("users")
    window = (info.get("input") or {}).get("window") or {}
    return PreviousRun(
        str(folder),
        tuple(personas),
        users if isinstance(users, int) else None,
        (window.get("start"), window.get("end")),
    )


# -- matching --------------------------------------------------------------------------------------


def lift_profile(record: Mapping[str, Any]) -> dict[str, float]:
    """A persona's profile: key stat -> log2 of its lift, clipped to +-log2(LIFT_CLIP)."""
    out = {}
    for key, stat in (record.get("stats") or {}).items():
        lift = stat.get("lift") if isinstance(stat, Mapping) else None
        if isinstance(lift, (int, float)) and math.isfinite(lift):
            out[key] = math.log2(min(max(float(lift), 1 / LIFT_CLIP), LIFT_CLIP))
    return out


def profile_distance(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    """RMS difference over the stats both profiles have; None when fewer than MIN_SHARED."""
    shared = sorted(set(a) & set(b))
    if len(shared) < MIN_SHARED:
        return None
    return round(math.sqrt(sum((a[k] - b[k]) ** 2 for k in shared) / len(shared)), 4)


def match_personas(
    current: Sequence[Mapping], previous: Sequence[Mapping]
) -> dict[int, tuple[int, str]]:
    """Current index -> (previous index, "name" or "profile"); see the module docstring."""
    by_name = {r["name"]: j for j, r in enumerate(previous)}
    matches = {
        i: (by_name[r["name"]], "name") for i, r in enumerate(current) if r["name"] in by_name
    }
    taken = {j for j, _ in matches.values()}
    now = {i: lift_profile(current[i]) for i in range(len(current)) if i not in matches}
    then = {j: lift_profile(previous[j]) for j in range(len(previous)) if j not in taken}
    pairs = sorted(
        (d, i, j)
        for i, a in now.items()
        for j, b in then.items()
        if (d := profile_distance(a, b)) is not None and d <= MAX_DISTANCE
    )
    for _, i, j in pairs:
        if i not in matches and j not in taken:
            matches[i] = (j, "profile")
            taken.add(j)
    return matches


def _share(record: Mapping[str, Any]) -> PersonaShare:
    return PersonaShare(
        id=int(record.get("id", -1)),
        name=record["name"],
        size=int(record.get("size", 0)),
        share=float(record["share"]),
    )


def compare_runs(
    current: Sequence[Mapping[str, Any]],
    previous: PreviousRun,
    matches: Mapping[int, tuple[int, str]] | None = None,
) -> Comparison:
    """Compare this run's personas.json records with the earlier run's.

    ``matches`` (current index -> (earlier index, how)) are matches made already, by
    :func:`personas.migration.keep_identities` before it gave matched personas their earlier ids
    and names; without them the records are matched here (:func:`match_personas`).
    """
    before = previous.personas
    matches = match_personas(current, before) if matches is None else matches
    changes = []
    for i, record in enumerate(current):
        j, how = matches.get(i, (None, ""))
        then = None if j is None else before[j]
        distance = (
            None if then is None else profile_distance(lift_profile(record), lift_profile(then))
        )
        changes.append(
            PersonaChange(_share(record), None if then is None else _share(then), how, distance)
        )
    taken = {j for j, _ in matches.values()}
    gone = tuple(_share(r) for j, r in enumerate(before) if j not in taken)
    return Comparison(previous.folder, previous.users, previous.window, tuple(changes), gone)
