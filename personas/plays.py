"""Plays that follow from a persona's figures, next to the plays its name's rule brings.

A rule's plays (rules.yaml) rest on the name: a Cart Abandoner gets a cart reminder. The figures
add what the name cannot know: the persona that brings most of the revenue is to be protected and
grown (a VIP programme, referrals, a churn early-warning) whatever it is called, a group that
has mostly gone quiet but brought real revenue is worth winning back, a large group that has
barely bought needs a first purchase. Each figure play says which figures it follows from
(``why``), and each has a test worth running: every persona gets at least one, never "no test".

The thresholds are here, in one place, and the report's methodology states them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .formatting import days, num, pct
from .results import Play, Stat

VALUE_MOST = 0.5  # a persona bringing at least this share of revenue is protected ...
VALUE_SHARE = 0.2  # ... as is one bringing this share or more ...
VALUE_WEIGHT = 1.5  # ... at this many times its share of users or more
AT_RISK = 0.5  # share inactive for over 60 days from which revenue is "at risk"
AT_RISK_REVENUE = 0.05  # ... when the persona brought at least this share of revenue
WARNING_LIFT = 1.5  # at-risk share this many times all users' calls for an early warning
WARNING_AT_LEAST = 0.2  # ... when at least this share of the persona is inactive
FIRST_PURCHASE = 0.3  # conversion at most this (and below all users') calls for a first order
SIZEABLE = 0.1  # ... in a persona of at least this share of users
MAX_PLAYS = 4  # plays on a card


def _value(stat: Stat | None) -> float | None:
    if stat is None or stat.value is None or stat.value != stat.value:
        return None
    return float(stat.value)


def figure_plays(
    *, share: float, revenue_share: float | None, kpis: Mapping[str, Stat], family: str
) -> tuple[list[Play], list[Play]]:
    """The plays a persona's figures call for: (protect and grow, others), each most valuable
    first (see the module docstring).

    ``kpis`` are the persona's KPIs by key (personas.kpis.KPIS); ``family`` its name's rule family,
    so a Lapsed persona, whose rule brings a win-back, does not get a second one.
    """
    plays: list[Play] = []
    at_risk = kpis.get("at_risk_share")
    risk = _value(at_risk)
    seen = kpis.get("days_since_seen")
    conversion = kpis.get("conversion_rate")
    lapsing = family in ("lapsed", "at_risk")
    valuable = revenue_share is not None and (
        revenue_share >= VALUE_MOST
        or (revenue_share >= VALUE_SHARE and revenue_share >= VALUE_WEIGHT * share)
    )
    if valuable:
        why = f"Brings {pct(revenue_share)} of revenue from {pct(share)} of users."
        plays += [
            Play(
                "VIP programme",
                "Protect and grow the revenue they bring: a loyalty tier with early access, "
                "service perks and no blanket discounts.",
                "revenue per user and repeat-purchase rate over 90 days",
                "VIP invitation vs a random 10 % hold-out without it, 8 weeks",
                why,
            ),
            Play(
                "Referral programme",
                "Ask for a referral or a review right after a delivered order; reward both sides.",
                "new customers referred per 100 members",
                "two-sided reward vs a plain ask",
                why,
            ),
        ]
    protect = len(plays)
    if (
        not lapsing
        and risk is not None
        and (
            valuable
            or (
                risk >= WARNING_AT_LEAST
                and at_risk.lift is not None
                and at_risk.lift >= WARNING_LIFT
            )
        )
    ):
        last = f"; the typical member was last seen {days(seen.value)} ago" if seen else ""
        plays.append(
            Play(
                "Churn early-warning",
                "Flag members who stay away for twice their usual gap between visits and reach "
                "them personally before they lapse.",
                "share inactive for over 60 days",
                "early-warning outreach vs a random hold-out without it, 8 weeks",
                f"{pct(risk)} are inactive for over 60 days (all users: "
                f"{pct(at_risk.overall)}){last}.",
            )
        )
    if (
        not lapsing
        and not valuable
        and risk is not None
        and risk >= AT_RISK
        and revenue_share is not None
        and revenue_share >= AT_RISK_REVENUE
    ):
        plays.append(
            Play(
                "Win back the revenue at risk",
                "Reactivate the former buyers first, with an offer built on what they bought.",
                "reactivation rate within 30 days and revenue per reactivated user",
                "personal offer vs a reminder without an offer",
                f"{pct(risk)} are inactive for over 60 days; they brought {pct(revenue_share)} "
                "of revenue.",
            )
        )
    rate = _value(conversion)
    if (
        rate is not None
        and rate <= FIRST_PURCHASE
        and share >= SIZEABLE
        and conversion.lift is not None
        and conversion.lift < 1
    ):
        plays.append(
            Play(
                "First purchase",
                "Turn visits into a first order: a first-order incentive after the second visit, "
                "with reviews on the products they looked at.",
                "first-purchase rate within 30 days",
                "first-order incentive vs none, random halves, 4 weeks",
                f"Only {pct(rate)} have bought (all users: {pct(conversion.overall)}), in a group "
                f"of {pct(share)} of users.",
            )
        )
    if valuable and len(plays) > protect and plays[protect].title == "Churn early-warning":
        protect += 1  # guarding the value is part of protecting it
    return plays[:protect], plays[protect:]


def next_order_play(kpis: Mapping[str, Stat], share: float) -> Play:
    """The play for a persona no rule and no figure singles out: grow its orders."""
    orders = kpis.get("purchase_frequency")
    why = (
        f"{orders.label}: {num(orders.value)} against {num(orders.overall)} for all users, "
        f"in a group of {pct(share)} of users."
        if _value(orders) is not None
        else f"A group of {pct(share)} of users."
    )
    return Play(
        "Next best purchase",
        "Recommend the next product from what they bought or viewed, timed at their usual gap "
        "between visits.",
        "orders per user over 90 days",
        "personalised recommendation e-mail vs a bestseller e-mail, random halves, 6 weeks",
        why,
    )


def persona_plays(
    rule_plays: Sequence[Play],
    *,
    share: float,
    revenue_share: float | None,
    kpis: Mapping[str, Stat],
    family: str,
) -> tuple[Play, ...]:
    """A persona's plays: the figure plays that protect value first, then the rule's, then the
    other figure plays, at most :data:`MAX_PLAYS`. A rule play on the same theme as a figure
    play (the same first word of the title: "VIP programme") is kept, with the figures' reason.
    Never empty: a persona nothing singles out gets :func:`next_order_play`."""
    protect, others = figure_plays(
        share=share, revenue_share=revenue_share, kpis=kpis, family=family
    )
    rules = list(rule_plays)

    def theme(play: Play) -> str:
        return play.title.split()[0].casefold()

    def merged(found: list[Play]) -> list[Play]:
        out = []
        for play in found:
            twin = next((r for r in rules if theme(r) == theme(play)), None)
            if twin is not None:
                rules.remove(twin)
                play = Play(twin.title, twin.action, twin.kpi, twin.test, twin.why or play.why)
            out.append(play)
        return out

    first, last = merged(protect), merged(others)
    plays = first + rules + last
    if not plays:
        plays = [next_order_play(kpis, share)]
    return tuple(plays[:MAX_PLAYS])


# -- plays the forecast calls for, and the size of every play's test (issue 26) --------------------

DUE_AT_LEAST = 0.05  # regular buyers due, as a share of the persona, for a due reminder
PROTECT_VALUE = 0.2  # share of next period's expected revenue that makes a persona ...
PROTECT_CHURN = 0.3  # ... worth a VIP protection when this share of its buyers has churned


def forecast_plays(forecast, share: float, currency: str = "") -> list[Play]:
    """Plays from the persona's forecast (:class:`~personas.results.PersonaForecast`): a reminder
    before the due date for its regular buyers, VIP protection where much of the expected revenue
    sits with buyers the model thinks may have churned."""
    from .formatting import money

    if forecast is None or not forecast.buyers:
        return []
    plays = []
    horizon = f"{forecast.horizon_days} days"
    value_share = forecast.expected_revenue_share
    churn = forecast.churn_rate
    if (
        value_share is not None
        and churn is not None
        and value_share >= PROTECT_VALUE
        and churn >= PROTECT_CHURN
    ):
        plays.append(
            Play(
                "VIP protection",
                "Reach the high-value members whose chance of still being active is falling "
                "(lowest p_active first in the assignments file) personally, before they lapse: "
                "service call, early access, no blanket discount.",
                f"expected revenue kept over the next {horizon} and p_active at the next run",
                "personal outreach vs a random hold-out without it, random halves",
                f"Expected to bring {pct(value_share)} of the next {horizon}' revenue "
                f"({money(forecast.expected_revenue, currency)}), but {pct(churn)} of its buyers "
                "are predicted to have churned.",
            )
        )
    if forecast.regular_buyers and forecast.regular_buyers >= DUE_AT_LEAST * forecast.users:
        first, last = forecast.due_dates or ("", "")
        plays.append(
            Play(
                "Remind before the due date",
                "Send each regular buyer a reminder a few days before their next purchase is due "
                "(next_purchase_due in the assignments file), with what they usually buy.",
                "purchases within 14 days of the due date",
                "reminder 5 days before the due date vs no reminder, random halves",
                f"{num(forecast.regular_buyers)} regular buyers "
                f"({pct(forecast.regular_buyers / forecast.users)} of the persona) are due between "
                f"{first} and {last}.",
            )
        )
    return plays


def with_forecast_plays(
    plays: Sequence[Play], forecast, share: float, currency: str = ""
) -> tuple[Play, ...]:
    """The forecast's plays first, then the persona's others, at most :data:`MAX_PLAYS`; a
    forecast play replaces one on the same theme."""
    found = forecast_plays(forecast, share, currency)
    themes = {p.title.split()[0].casefold() for p in found}
    rest = [p for p in plays if p.title.split()[0].casefold() not in themes]
    return tuple((found + rest)[:MAX_PLAYS])


def sized(play: Play, users: int, baseline: float | None, what: str) -> Play:
    """``play`` with the users its A/B test needs per arm to detect a 10 % relative rise of
    ``baseline`` (the share of the persona's users who ``what``) at 80 % power, two-sided 5 %
    significance, two equal arms; ``enough`` says whether the persona's ``users`` fill both."""
    from dataclasses import replace

    from .forecast import ALPHA, POWER, TEST_LIFT, users_per_arm

    if baseline is None or baseline != baseline:
        return replace(play, effect="not sized: no baseline rate is known for this persona")
    n = users_per_arm(baseline, TEST_LIFT)
    target = baseline * (1 + TEST_LIFT)
    if n is None:
        return replace(
            play,
            effect=f"not sized: {pct(baseline)} of its users {what}, a share "
            f"that cannot rise by {pct(TEST_LIFT, 0)}",
        )
    return replace(
        play,
        users_per_arm=n,
        enough=2 * n <= users,
        effect=f"a rise from {pct(baseline)} to {pct(target)} of users who {what} "
        f"(+{pct(TEST_LIFT, 0)}; {pct(POWER, 0)} power, {pct(ALPHA, 0)} "
        "two-sided significance)",
    )
