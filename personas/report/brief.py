"""The answer at the top of the report: one paragraph a head of marketing reads before a meeting.

How many personas; which matter most for revenue (the fewest that bring half of it), which for
growth (the largest gap between a persona's share of users and its share of revenue, among
personas still active) and where revenue is at risk; what changed since the earlier run when
there is one (``compare_to``); and how firm the segmentation is. Every number is one the report
shows elsewhere, formatted the same way (:mod:`personas.formatting`).

Why it is long: each sentence of the summary has its own rule and its own guard against a
claim the figures do not carry (no revenue, no comparison, a shaky segmentation), and the
glossary the methodology shows is written here beside the words it explains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from ..formatting import day, money, num, pct, points
from ..results import PersonaProfile, RunSummary

MOST_REVENUE = 0.5  # the revenue personas: the fewest, largest first, that bring this share
MOST_NAMED = 3  # ... naming at most this many
AT_RISK = 0.5  # a persona is at risk when this share of it is inactive for 60+ days ...
AT_RISK_REVENUE = 0.05  # ... and it brought at least this share of revenue
GROWTH_GAP = 0.05  # a growth persona's share of users exceeds its revenue share by this


@dataclass(frozen=True)
class Brief:
    """The executive summary: its sentences, in reading order, as plain text (the template
    escapes them). ``revenue``, ``growth`` and ``at_risk`` name the personas it singles out."""

    sentences: tuple[str, ...]
    revenue: tuple[str, ...] = ()
    growth: str = ""
    at_risk: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def _kpi(p: PersonaProfile, key: str) -> float | None:
    for k in p.kpis:
        if k.key == key and k.value == k.value:
            return float(k.value)
    return None


def _names(names: Sequence[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def revenue_personas(personas: Sequence[PersonaProfile]) -> list[PersonaProfile]:
    """The fewest personas, by revenue share, that together bring :data:`MOST_REVENUE` of it."""
    known = sorted(
        (p for p in personas if p.revenue_share is not None), key=lambda p: -p.revenue_share
    )
    chosen, total = [], 0.0
    for p in known[:MOST_NAMED]:
        chosen.append(p)
        total += p.revenue_share
        if total >= MOST_REVENUE:
            break
    return chosen


def _at_risk_lift(p: PersonaProfile) -> float:
    return next((k.lift for k in p.kpis if k.key == "at_risk_share" and k.lift is not None), 0.0)


def at_risk_persona(personas: Sequence[PersonaProfile]) -> PersonaProfile | None:
    """The persona with the most revenue among those mostly inactive for 60+ days, and at least
    as inactive as all users (in a log where nearly everyone has gone quiet, the persona least
    so is not the one at risk)."""
    risky = [
        p
        for p in personas
        if p.revenue_share is not None
        and p.revenue_share >= AT_RISK_REVENUE
        and (_kpi(p, "at_risk_share") or 0) >= AT_RISK
        and _at_risk_lift(p) >= 1
    ]
    return max(risky, key=lambda p: p.revenue_share, default=None)


def growth_persona(
    personas: Sequence[PersonaProfile], taken: Sequence[PersonaProfile]
) -> PersonaProfile | None:
    """The active persona (under half inactive for 60+ days) not among ``taken`` whose share
    of users exceeds its share of revenue the most (by :data:`GROWTH_GAP` at least); without
    amounts, the largest active persona whose conversion is below all users'."""
    ids = {p.id for p in taken}
    active = [p for p in personas if p.id not in ids and (_kpi(p, "at_risk_share") or 0) < AT_RISK]
    known = [p for p in active if p.revenue_share is not None]
    if known:
        best = max(known, key=lambda p: p.share - p.revenue_share)
        return best if best.share - best.revenue_share >= GROWTH_GAP else None
    below = [
        p
        for p in active
        for k in p.kpis
        if k.key == "conversion_rate" and k.lift is not None and k.lift < 1
    ]
    return max(below, key=lambda p: p.share, default=None)


def _spend(p: PersonaProfile, currency: str) -> str:
    """ ", spending €2,760 per user on average against €417 for all users" (the revenue per user
    KPI, a mean: "on average" says so), or "" without it."""
    kpi = next((k for k in p.kpis if k.key == "revenue_per_user"), None)
    if kpi is None or kpi.value != kpi.value:
        return ""
    return (
        f", spending {money(kpi.value, currency, like=kpi.overall)} per user on average "
        f"against {money(kpi.overall, currency, like=kpi.value)} for all users"
    )


def _window(summary: RunSummary) -> str:
    if summary.window_start and summary.window_end:
        return f" (data from {day(summary.window_start)} to {day(summary.window_end)})"
    return ""


def make_brief(
    summary: RunSummary,
    verdict: str | None = None,
    stability: float | None = None,
    meaning: str = "",
    comparison=None,
    migration=None,
) -> Brief:
    """The executive summary of ``summary``; ``verdict``, ``stability`` and ``meaning`` come
    from the report's solidity (render.solidity), ``comparison`` (report.compare.Comparison)
    and ``migration`` (personas.migration.Migration: who moved where) from compare_to."""
    personas = summary.personas
    n = len(personas)
    if not n:
        return Brief(
            (
                f"No personas were found among the {num(summary.users)} users analysed"
                f"{_window(summary)}.",
            )
        )
    sentences = [
        f"The {num(summary.users)} users analysed{_window(summary)} fall into {n} "
        f"persona{'' if n == 1 else 's'}."
    ]
    top = revenue_personas(personas)
    if top:
        parts = [
            f"{p.name} ({pct(p.revenue_share)} of revenue from {pct(p.share)} of users"
            + _spend(p, summary.currency)
            + ")"
            for p in top
        ]
        lead = (
            "Most of the revenue comes from"
            if sum(p.revenue_share for p in top) >= MOST_REVENUE
            else "The most revenue comes from"
        )
        sentences.append(f"{lead} {_names(parts)}.")
    else:
        largest = personas[0]
        sentences.append(
            f"The data has no amounts, so revenue by persona is unknown; the "
            f"largest persona is {largest.name} ({pct(largest.share)} of users)."
        )
    ahead = forecast_sentence(summary)
    if ahead:
        sentences.append(ahead)
    risk = at_risk_persona(personas)
    if risk is not None:
        sentences.append(
            f"Revenue at risk: {risk.name} brought {pct(risk.revenue_share)} of it, "
            f"but {pct(_kpi(risk, 'at_risk_share'))} of its users have been "
            "inactive for over 60 days."
        )
    grow = growth_persona(personas, top + ([risk] if risk else []))
    if grow is not None:
        bought = _kpi(grow, "conversion_rate")
        has = f", and {pct(bought)} of them have bought" if bought is not None else ""
        money = (
            f"{pct(grow.share)} of users but {pct(grow.revenue_share)} of revenue"
            if grow.revenue_share is not None
            else f"{pct(grow.share)} of users"
        )
        sentences.append(f"The most room to grow is in {grow.name}: {money}{has}.")
    if comparison is not None:
        sentences.append(_changes(comparison))
    if migration is not None and migration.both:
        sentences.append(_moves(migration))
    if verdict:
        sentences.append(
            f"The segmentation is {verdict} ({num(stability)} agreement between "
            f"refits): {meaning[:1].lower()}{meaning[1:]}"
        )
    else:
        sentences.append(
            "How firm the segmentation is was not measured: the model was fitted once."
        )
    return Brief(
        tuple(sentences),
        tuple(p.name for p in top),
        grow.name if grow else "",
        risk.name if risk else "",
    )


def forecast_sentence(summary: RunSummary) -> str:
    """Where next period's value lies (personas.forecast): the persona with the largest share of
    the expected revenue (of the expected purchases without amounts), against its share of
    users; and, with holdout_days, how the forecast did on the held-out days. "" without one."""
    known = [p for p in summary.personas if p.forecast is not None and p.forecast.buyers]
    if not known or not summary.forecast:
        return ""
    horizon = summary.forecast["horizon_days"]
    key = (
        "expected_revenue_share"
        if known[0].forecast.expected_revenue_share is not None
        else "expected_purchases_share"
    )
    top = max(known, key=lambda p: getattr(p.forecast, key) or 0.0)
    share = getattr(top.forecast, key)
    if share is None:
        return ""
    what = "revenue" if key == "expected_revenue_share" else "purchases"
    text = (
        f"Looking ahead, {top.name}: {pct(top.share)} of users, {pct(share)} of the next "
        f"{horizon} days' expected {what}."
    )
    check = summary.forecast.get("holdout") or {}
    if check.get("verdict"):
        text += (
            f" Checked on the last {check['holdout_days']} days of the data: "
            f"{check['verdict'][:1].lower()}{check['verdict'][1:]}"
        )
    return text


def _changes(c) -> str:
    """What changed since the earlier run (a report.compare.Comparison), in one sentence."""
    end = c.previous_window[1] if c.previous_window else None
    since = f"Since the previous run (data to {day(end)})" if end else "Since the previous run"
    kept = c.count("name")
    parts = [f"{kept} persona{' kept its' if kept == 1 else 's kept their'} name"]
    if c.count("profile"):
        parts.append(
            f"{c.count('profile')} {'was' if c.count('profile') == 1 else 'were'} "
            "renamed but matched by profile"
        )
    if c.appeared:
        parts.append(
            f"{len(c.appeared)} {'is' if len(c.appeared) == 1 else 'are'} new ("
            + _names([p.name for p in c.appeared])
            + ")"
        )
    if c.disappeared:
        parts.append(
            f"{len(c.disappeared)} disappeared (" + _names([p.name for p in c.disappeared]) + ")"
        )
    text = f"{since}, {_names(parts)}"
    moves = [ch for ch in c.changes if ch.change_points is not None]
    if moves:
        big = max(moves, key=lambda ch: abs(ch.change_points))
        if abs(big.change_points) >= 0.05:
            text += f"; the largest shift is {big.now.name}, {points(big.change_points)} of users"
    return text + "."


def _moves(m) -> str:
    """Who moved (a personas.migration.Migration), in one sentence."""
    text = f"Of the {num(m.both)} users in both runs, {pct(m.moved / m.both)} changed persona"
    if m.new or m.gone:
        text += (
            f"; {num(m.new)} user{'' if m.new == 1 else 's'} {'is' if m.new == 1 else 'are'}"
            f" new and {num(m.gone)} {'has' if m.gone == 1 else 'have'} gone"
        )
    return text + "."


def source_name(source: str) -> str:
    """The data source as people know it: a file's or table's name, not the path of the
    machine that ran it ("/data/x/events.parquet" -> "events.parquet"; a glob keeps its folder,
    "/data/parts/*.parquet" -> "parts/*.parquet"). Text that is no path is kept; run.json keeps
    the full path."""
    text = str(source).strip()
    if not any(sep in text for sep in "/\\"):
        # a described source ("bundled synthetic sample (3000 users, ...)"): its counts as counts
        return re.sub(r"\b(\d{4,}) users\b", lambda m: f"{int(m.group(1)):,} users", text)
    path: PurePath = PureWindowsPath(text) if "\\" in text else PurePosixPath(text)
    parts = [x for x in path.parts if x not in ("/", "\\")]
    if not parts:
        return text
    if any(ch in parts[-1] for ch in "*?[") and len(parts) > 1:
        return f"{parts[-2]}/{parts[-1]}"
    return parts[-1]


def parameter_text(value: str, name: str) -> str:
    """A parameter's value for the report's parameter table: a path parameter (``*_path``,
    ``*_dir``, ``compare_to``) by its file or folder name (:func:`source_name`)."""
    if value and (name.endswith(("_path", "_dir")) or name == "compare_to"):
        return source_name(value)
    return value


def glossary(summary: RunSummary) -> tuple[tuple[str, str], ...]:
    """The words of the report a stakeholder may not know, each with its meaning in this run:
    (term, meaning) pairs for the methodology's glossary."""
    from ..kpis import AT_RISK_DAYS
    from ..plays import AT_RISK as PLAY_AT_RISK
    from ..plays import AT_RISK_REVENUE as AT_RISK_REVENUE_PLAY
    from ..plays import (
        FIRST_PURCHASE,
        SIZEABLE,
        VALUE_MOST,
        VALUE_SHARE,
        VALUE_WEIGHT,
        WARNING_AT_LEAST,
        WARNING_LIFT,
    )
    from ..results import CLEAR_CONFIDENCE

    if summary.window_start and summary.window_end:
        window = (
            f"The period whose events were analysed, here {day(summary.window_start)} to "
            f"{day(summary.window_end)}. Figures such as \u201cdays since last "
            "activity\u201d count to its end."
        )
    else:
        window = (
            "The period whose events were analysed: here all events in the data. Figures "
            "such as \u201cdays since last activity\u201d count to its end."
        )
    money = (
        f"Amounts are in {summary.currency}, as the run was told (parameter currency)."
        if summary.currency
        else "The run was not told the currency of the amounts, so money figures carry no "
        "symbol; run it with -p currency=EUR (or USD, GBP...) to show it."
    )
    terms = [
        (
            "Share",
            "The part of all users, or of all revenue, that falls in a persona: 15 % of "
            "users is 15 of every 100 users analysed.",
        ),
        (
            "Median and mean",
            "Two ways to sum up a figure over a persona's users. The median is "
            "the typical member: half have less, half more. The mean is the "
            "total divided by the users, which a few heavy buyers pull up. "
            "Counts and money lead with the median, shares, rates and days with "
            "the mean; the KPIs keep the definitions marketers use (revenue per "
            "user is a mean). A figure's label says which of the two it is.",
        ),
        (
            "Lift",
            "The persona's figure divided by the same figure for all users: 2.0× is twice "
            "as high, 0.5× half as high. ▲ and ▼ mark a lift at least 5 % above or below "
            "1.",
        ),
        (
            "Better and worse",
            "Green and the word \u201cbetter\u201d mark a figure that is good "
            "news for the business (more orders, fewer days away), red and "
            "\u201cworse\u201d bad news; grey figures describe a habit that is "
            "neither (app or weekend use, say).",
        ),
        (
            "Confidence",
            "For each user, from 0 to 1: the share of the 15 most similar users that "
            f"are in the same persona. Users at {pct(CLEAR_CONFIDENCE, 0)} or more "
            "clearly belong; users below sit between two personas.",
        ),
        ("Window", window),
        (
            f"Inactive for over {AT_RISK_DAYS} days",
            "Users whose last activity was more than "
            f"{AT_RISK_DAYS} days before the end of the "
            "window: the ones at risk of churning.",
        ),
        ("Money", money),
        (
            "Standard deviations",
            "The charts of traits measure how far a persona's average is "
            "from all users' in units of the usual spread between users: "
            "beyond \u00b11 is a clear difference.",
        ),
        (
            "Plays",
            "Each persona's recommended actions, each with a KPI to watch and an A/B test "
            "to run. Some come with the persona's name; others follow from its figures: "
            "protect and grow (VIP programme, referrals, churn early-warning) for a "
            f"persona bringing {pct(VALUE_MOST, 0)} of revenue or more, or "
            f"{pct(VALUE_SHARE, 0)} or more at {VALUE_WEIGHT:g}× its share of users; a "
            f"churn early-warning where the share inactive for over {AT_RISK_DAYS} days is "
            f"{pct(WARNING_AT_LEAST, 0)} or more and {WARNING_LIFT:g}× all users'; a "
            f"win-back where {pct(PLAY_AT_RISK, 0)} or more are inactive and the persona "
            f"brought {pct(AT_RISK_REVENUE_PLAY, 0)} of revenue or more; a first purchase "
            "where "
            f"{pct(FIRST_PURCHASE, 0)} or fewer have bought, fewer than all users, in a "
            f"persona of {pct(SIZEABLE, 0)} of users or more. The line \u201cWhy\u201d "
            "under a play gives the figures it follows from.",
        ),
    ]
    if summary.forecast and not summary.forecast.get("reason"):
        horizon = summary.forecast["horizon_days"]
        terms.append(
            (
                f"Forecast (next {horizon} days)",
                "What each buyer is expected to do after the end of the window, from their "
                "purchase days and amounts: the probability they are still an active "
                "buyer, the purchases and revenue expected, and for regular buyers the day "
                "their next purchase is due. Predicted churn is the share of a persona's "
                "buyers expected to have stopped. Users who never bought have no purchase "
                "history and no forecast. \u201cUsers needed\u201d under a play is the "
                "size of each arm of its A/B test.",
            )
        )
    return tuple(terms)
