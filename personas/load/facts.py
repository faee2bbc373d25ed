"""Facts about the whole log that the load otherwise learns from the rows it reads.

A load that sees only part of the users (one partition of the Spark engine,
:mod:`personas.spark`) must not learn them from its part, or its users' features would differ
from the ones the whole log gives. :class:`LogFacts` carries them in, learnt once from the
whole log; :func:`personas.load.load_events` then takes them as given instead of reading them
off its rows. Everything else the load computes (the cleaning of each row, the codes, the sort,
the per-user sums) depends on one user's rows alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LogFacts:
    """What the load learns from the whole log, given.

    The first two are needed to read and clean the rows, ``span`` and ``events`` to sum them per
    user, and ``event_counts`` and ``population`` to compute the features.
    """

    now: datetime  # the run's "now": rows later than it are dropped (rule ``future``)
    time_top: float | None = None  # largest absolute value of a numeric time column: its unit
    span: tuple[datetime, datetime] | None = None  # first and last event kept in the whole log
    events: tuple[str, ...] | None = None  # every event name kept, in text order (their codes)
    event_counts: dict[str, int] | None = None  # event name -> events kept (after duplicates)
    population: dict[str, int] | None = None  # the sums the smoothed rates pull towards
    # (personas.features.POPULATION_SUMS)
