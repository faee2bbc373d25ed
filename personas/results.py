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

    key: str  # feature or KPI name, e.g. "orders", "conversion_rate"
    label: str  # words for people, e.g. "Orders per user"
    value: float  # the persona's figure
    overall: float  # the same figure over all users
    lift: float | None  # value / overall; None when overall is 0
    unit: str  # "share", "currency", "days", "orders", ...
    statistic: str  # "mean", "median" or "share of users" -- what value and overall are
    z: float = 0.0  # standardised difference of the persona's mean (0 for KPIs)
    # Both centres of the feature behind the figure, so a skewed one can be read either way.
    # ``basis`` names the one that value, overall and lift use ("" when the figure is a share or a
    # ratio with no median/mean pair); the rule that picks it is profile.stat_basis.
    basis: str = ""  # "median" | "mean" | ""
    median: float | None = None  # the persona's median
    mean: float | None = None  # the persona's mean
    overall_median: float | None = None  # median over all users
    overall_mean: float | None = None  # mean over all users
    # Whether a higher figure is good news for the business: "higher" (more orders), "lower"
    # (more days away) or "" (neither: a share of app use, of weekend visits). The report colours
    # by it; arrows show the direction either way.
    better: str = ""


@dataclass(frozen=True)
class Trait:
    """A feature on which a persona stands out from all users."""

    feature: str
    label: str  # catalogue description
    z: float  # standardised difference of means (persona vs all users)
    text: str  # "adds to cart 3.1x as often as average"


@dataclass(frozen=True)
class ClaimCheck:
    """One figure a persona's name stands on, checked against the bounds the name needs.

    A rule's claims come from rules.yaml (``claims:``); a descriptive name's words are claims
    too ("App" needs the app share clearly above all users'). The numbers are the persona's own
    figures, the same :class:`Stat` values its card shows.
    """

    figure: str  # figure key: a catalogue feature or a KPI ("kpi:<key>" where a
    # feature has the same key)
    label: str  # words for people, e.g. "Orders per user"
    unit: str
    statistic: str  # what value and overall are: "median", "mean", "share of users"...
    value: float | None  # the persona's figure (None: the data cannot give it)
    overall: float | None  # the same figure over all users
    lift: float | None  # value / overall
    bounds: tuple[tuple[str, float], ...]  # (test, bound): at_least, at_most, lift_at_least,
    # lift_at_most
    holds: bool  # every bound is met
    word: str = ""  # the part of a descriptive name it backs ("App"); "" for a rule


@dataclass(frozen=True)
class Play:
    """A recommended marketing action for a persona."""

    title: str
    action: str
    kpi: str
    test: str
    why: str = ""  # the persona's figures the play follows from ("" for a rule's play
    # that rests on the name alone)
    # How many users its A/B test needs (personas.forecast.users_per_arm): per arm, to detect
    # the effect stated in ``effect`` at 80 % power; None when it cannot be sized (``effect``
    # then says why). ``enough``: the persona has users for both arms.
    users_per_arm: int | None = None
    effect: str = ""
    enough: bool | None = None


@dataclass(frozen=True)
class PersonaForecast:
    """What a persona's buyers are forecast to do over the next ``horizon_days``
    (:mod:`personas.forecast`). Users with no purchase history are not forecast: ``buyers``
    counts those who are; sums are over them, "per user" divides by all the persona's users."""

    horizon_days: int
    users: int
    buyers: int  # users with a purchase history
    churn_rate: float | None  # mean of 1 - p_active over its buyers
    expected_purchases: float | None  # purchase days, its buyers' sum
    expected_purchases_per_user: float | None
    expected_revenue: float | None  # None without amounts
    expected_revenue_per_user: float | None
    expected_revenue_per_buyer: float | None
    expected_revenue_share: float | None  # of all users' expected revenue
    expected_purchases_share: float | None
    buying_share: float | None  # share of its users predicted to buy in the horizon
    regular_buyers: int  # with a next purchase due by the horizon's end
    due_dates: tuple[str, str] | None = None  # the first and last due date, ISO


@dataclass(frozen=True)
class PersonaProfile:
    id: int  # persona id (label); -1 would be "Unassigned"
    name: str  # unique within the run
    family: str  # naming rule family, e.g. "browser", "cart_abandoner", "rfm"
    size: int
    share: float  # of users
    revenue_share: float | None  # of revenue; None when the log has no amounts
    traits: tuple[Trait, ...]  # strongest first; the first two or three earned the name
    stats: tuple[Stat, ...]  # key behaviour stats (features)
    kpis: tuple[Stat, ...]  # marketing KPIs
    description: str
    plays: tuple[Play, ...]
    event_mix: tuple[tuple[str, float], ...] = ()  # role -> share of the persona's events
    confidence: float = 1.0  # mean assignment confidence of its users
    reproducibility: float | None = None  # 0..1: mean over the model's refits of the best
    # overlap (Jaccard) of its fitted users with one
    # refit persona; None when not measured
    clear_share: float | None = None  # share of its users who clearly belong
    # (confidence >= CLEAR_CONFIDENCE)
    rule: str = ""  # naming rule the name is ("" for a descriptive name)
    default_name: str = ""  # the name the rules gave, before renames_path
    claims: tuple[ClaimCheck, ...] = ()  # what the name claims, checked on this persona's figures
    currency: str = ""  # ISO 4217 code of its money figures ("" = not given)
    forecast: PersonaForecast | None = None  # the next horizon_days; None without a forecast

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _repr_html_(self) -> str:
        """The persona's card, as in the report: what a notebook shows for a profile."""
        from .report.render import render_cards

        return render_cards((self,))


CLEAR_CONFIDENCE = 0.6  # a user clearly belongs to its persona when at least this share of its
# nearest fitted users is in it (a clear majority, not a near tie)
# Up to this many users a run also writes assignments.csv; above it assignments.parquet alone (the
# same rows): at 10M users the CSV is 475 MB, far past what a spreadsheet opens, and writing it
# took most of the report step's 23 s (docs/scale.md).
CSV_MAX_USERS = 1_000_000
STABILITY_FIRM = 0.9  # agreement between refits at or above this: a firm segmentation
STABILITY_FAIR = 0.75  # at or above this (and below firm): fair; below it: shaky


def stability_verdict(stability: float | None) -> str | None:
    """ "firm", "fair" or "shaky" for the agreement between independent refits of the model
    (mean adjusted Rand index, 0..1); None when it was not measured.

    The report, run.json and personas.json all read the verdict from here, so they never differ.

    Examples
    --------
    >>> stability_verdict(0.93), stability_verdict(0.8), stability_verdict(0.5)
    ('firm', 'fair', 'shaky')
    """
    if stability is None or stability != stability:  # None or NaN: not measured
        return None
    if stability >= STABILITY_FIRM:
        return "firm"
    return "fair" if stability >= STABILITY_FAIR else "shaky"


def stability_record(stability: float | None) -> dict[str, Any]:
    """The segmentation's stability for run.json and personas.json: the figure, its verdict and
    the thresholds the verdict uses, so a reader of the file alone can judge it."""
    return {
        "stability": stability,
        "verdict": stability_verdict(stability),
        "firm_at_least": STABILITY_FIRM,
        "fair_at_least": STABILITY_FAIR,
    }


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
    features_used: tuple[tuple[str, str], ...]  # (name, description) used by the model
    features_described: tuple[tuple[str, str], ...]  # (name, description) only describing
    features_skipped: tuple[tuple[str, str], ...]  # (name, why)
    parameters: tuple[tuple[str, str], ...]
    model_info: dict[str, Any] = field(default_factory=dict)
    quality: tuple[tuple[str, int, str], ...] = ()  # (rule, rows, what was done)
    role_map: tuple[tuple[str, str, int], ...] = ()  # (event, role, rows)
    versions: tuple[tuple[str, str], ...] = ()
    agreement: float | None = None  # adjusted Rand vs planted personas
    currency: str = ""  # ISO 4217 code of money figures, or ""
    forecast: dict[str, Any] | None = None  # run.json's "forecast" (personas.forecast)
    assignments_file: str = "assignments.csv"  # the users' file to import: the CSV up to
    # personas.results.CSV_MAX_USERS users, assignments.parquet above
