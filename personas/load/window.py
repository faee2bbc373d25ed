"""The date window (``start``/``end``) and the reference date that recency counts to."""

from __future__ import annotations

from datetime import datetime

from ..errors import InputError, ParameterError
from ..params import PersonaParams
from ..sql import quote_literal


def timestamp_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(" ")


def inside_window_sql(first: datetime | None, last: datetime | None) -> str:
    """SQL condition on ``ts`` for rows inside the start/end window (both ends inclusive)."""
    conditions = [f"ts >= TIMESTAMP {quote_literal(timestamp_text(first))}"] if first else []
    if last is not None:
        conditions.append(f"ts <= TIMESTAMP {quote_literal(timestamp_text(last))}")
    return " AND ".join(conditions) or "TRUE"


def empty_window_error(params: PersonaParams, source: str, data_first, data_last) -> InputError:
    """The window missed every usable row: say which bounds were set and where the data lies,
    so the user can tell a typo in the year from a file that covers another period."""
    bounds = " and ".join(
        f"{name}={getattr(params, name)!r}"
        for name in ("start", "end")
        if getattr(params, name).strip()
    )
    return InputError(
        f"events file {source!r} has no events inside the window {bounds}; its "
        f"usable events run from {data_first} to {data_last}, so move start/end "
        "into that range or leave them empty",
        path=source,
    )


def reference_time(params: PersonaParams, last_event: datetime) -> datetime:
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
            "or leave it empty",
            name="reference_date",
        )
    return reference
