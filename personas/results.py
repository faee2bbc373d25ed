"""Typed results shared by the profile, naming, report and pipeline stages.

Plain frozen dataclasses: stages pass these, templates read them, ``to_dict`` feeds JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stat:
    """One figure of a persona next to the same figure for all users."""

    key: str                 # feature or KPI name, e.g. "orders", "conversion_rate"
    label: str               # words for people, e.g. "Orders per user"
    value: float             # the persona's figure
    overall: float           # the same figure over all users
    lift: float | None       # value / overall; None when overall is 0
    unit: str                # "share", "currency", "days", "orders", ...
    statistic: str           # "mean", "median" or "share of users" -- what value and overall are
    z: float = 0.0           # standardised difference of the persona's mean (0 for KPIs)
    # Both centres of the feature behind the figure, so a skewed one can be read either way.
    # ``basis`` names the one that value, overall and lift use ("" when the figure is a share or a
    # ratio with no median/mean pair); the rule that picks it is profile.stat_basis.
    basis: str = ""          # "median" | "mean" | ""
    median: float | None = None          # the persona's median
    mean: float | None = None            # the persona's mean
    overall_median: float | None = None  # median over all users
    overall_mean: float | None = None    # mean over all users


@dataclass(frozen=True)
class Trait:
    """A feature on which a persona stands out from all users."""

    feature: str
    label: str               # catalogue description
    z: float                 # standardised difference of means (persona vs all users)
    text: str                # "adds to cart 3.1x as often as average"


@dataclass(frozen=True)
class Play:
    """A recommended marketing action for a persona."""

    title: str
    action: str
    kpi: str
    test: str


@dataclass(frozen=True)
class PersonaProfile:
    id: int                  # persona id (label); -1 would be "Unassigned"
    name: str                # unique within the run
    family: str              # naming rule family, e.g. "browser", "cart_abandoner", "rfm"
    size: int
    share: float             # of users
    revenue_share: float     # of revenue
    traits: tuple[Trait, ...]        # strongest first; the first two or three earned the name
    stats: tuple[Stat, ...]          # key behaviour stats (features)
    kpis: tuple[Stat, ...]           # marketing KPIs
    description: str
    plays: tuple[Play, ...]
    event_mix: tuple[tuple[str, float], ...] = ()   # role -> share of the persona's events
    confidence: float = 1.0          # mean assignment confidence of its users
    rule: str = ""                   # naming rule that won
    default_name: str = ""           # the name the rules gave, before renames_path

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunSummary:
    """What the report header and methodology need to know about the run."""

    title: str
    source: str
    window_start: str | None
    window_end: str | None
    users: int
    events: int
    run_date: str
    personas: tuple[PersonaProfile, ...]
    features_used: tuple[tuple[str, str], ...]       # (name, description) used by the model
    features_described: tuple[tuple[str, str], ...]  # (name, description) only describing
    features_skipped: tuple[tuple[str, str], ...]    # (name, why)
    parameters: tuple[tuple[str, str], ...]
    model_info: dict[str, Any] = field(default_factory=dict)
    quality: tuple[tuple[str, int, str], ...] = ()   # (rule, rows, what was done)
    role_map: tuple[tuple[str, str, int], ...] = ()  # (event, role, rows)
    versions: tuple[tuple[str, str], ...] = ()
    agreement: float | None = None                   # adjusted Rand vs planted personas
