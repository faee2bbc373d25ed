"""Events -> one row of behaviour features per user, in DuckDB SQL, plus the feature catalogue.

The SQL runs on ``user_activity``, the per-user tallies that :func:`personas.load.load_events`
sums in one pass over the sorted log (:mod:`personas.activity`), in DuckDB, which spills past its
memory limit; there is no per-user Python loop. Rates are smoothed towards the population rate with
:data:`PRIOR_WEIGHT` pseudo-observations, so a user with one view and one cart is not "100 %".
Every feature is described in :data:`CATALOGUE`; one whose inputs the data lacks is skipped with a
note, never filled with zeros that would look like behaviour.

Why it is long: the catalogue (:data:`CATALOGUE`, each feature's meaning, unit, needs and model
use) is data kept beside the one SQL query that computes it, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .activity import ROLE_PREFIX, abandoned_sql, code_counts, role_codes, spans_year
from .load import EventLog
from .sql import quote_name

PRIOR_WEIGHT = 5.0  # pseudo-observations pulling a user's rate towards the population's
RATE_WEEKS = 4  # weekly rates count at least this many weeks: a user seen once is no weekly
# visitor, and new users' rates are not inflated by their short history
EVIDENCE_WEIGHT = 2.0  # pseudo-counts pulling a model value towards the median (Feature.evidence)
NOISY_SHARE = 0.5  # a share whose reliability is below this is mostly luck: weighted by it
EVENT_PREFIX = "event:"  # per-user counts of the most frequent events no role covers
TOP_UNKNOWN_EVENTS = 5  # how many such events get a column of their own
STREAM_ROWS = 100_000  # users per batch when the feature table streams out of DuckDB
YEAR_NEED = "window:52 weeks"  # a feature needing a log that spans every calendar month
VISITS_NEED = "data:visits"  # a feature of sessions (visits): an event log has them, an order
# table (one row per order, no event column) does not


@dataclass(frozen=True)
class Feature:
    """One behaviour feature: what it means, what it needs, and how the model uses it."""

    name: str
    group: str  # purchase | engagement | funnel | timing | lifecycle | breadth
    description: str
    unit: str
    higher: str  # "higher means ..."
    needs: tuple[str, ...] = ()  # roles, or "column:<name>" for optional columns
    transform: str = "none"  # before scaling: "log1p" (heavy-tailed counts) or "none"
    model: bool = False  # used to find personas (the rest only describe them)
    fill: float | None = None  # model value when missing (else the median)
    stands_in_for: str = ""  # used by the model only where that feature is not available
    evidence: str = ""  # a count column: the model pulls the value toward the median
    # by EVIDENCE_WEIGHT pseudo-counts of it (order value by
    # orders, weekend share by active days), so a user seen on one
    # Saturday is not the most extreme weekend visitor
    better: str = ""  # "higher" or "lower" is better for the business, "" neither
    # (see :data:`BETTER`)

    @property
    def label(self) -> str:
        """The description without its parenthesised fine print, for cards and charts."""
        return self.description.split(" (")[0]


CATALOGUE: tuple[Feature, ...] = (
    # purchase behaviour (RFM)
    Feature(
        "orders",
        "purchase",
        "Number of purchases",
        "orders",
        "buys more often",
        ("purchase",),
        "log1p",
        True,
        stands_in_for="purchase_rate",
    ),
    Feature(
        "purchase_rate",
        "purchase",
        "Purchases per session (smoothed)",
        "orders/session",
        "buys in more of their visits",
        ("purchase", VISITS_NEED),
        "none",
        True,
    ),
    Feature(
        "revenue",
        "purchase",
        "Total revenue from the user's purchases",
        "currency",
        "spends more",
        ("purchase", "column:amount"),
        "log1p",
    ),
    Feature(
        "avg_order_value",
        "purchase",
        "Average revenue per purchase (empty for non-buyers)",
        "currency",
        "buys bigger baskets",
        ("purchase", "column:amount"),
        "log1p",
        True,
        evidence="orders",
    ),
    Feature(
        "items_per_order",
        "purchase",
        "Average items per purchase (quantity column; empty for non-buyers)",
        "items",
        "buys more items at once",
        ("purchase", "column:quantity"),
        "log1p",
    ),
    Feature(
        "days_since_purchase",
        "purchase",
        "Days from the last purchase to the reference "
        "date (the last event unless reference_date is set, empty for non-buyers)",
        "days",
        "bought longer ago",
        ("purchase",),
    ),
    Feature(
        "days_between_orders",
        "purchase",
        "Average days between consecutive purchases (empty below two purchases)",
        "days",
        "buys less often",
        ("purchase",),
    ),
    Feature(
        "discount_share",
        "purchase",
        "Share of purchases made with a discount (smoothed)",
        "share",
        "relies more on discounts",
        ("purchase", "column:discount"),
        "none",
        True,
    ),
    # engagement
    Feature(
        "sessions",
        "engagement",
        "Number of sessions (visits)",
        "sessions",
        "visits more",
        (VISITS_NEED,),
        "log1p",
    ),
    Feature(
        "active_days",
        "engagement",
        "Distinct days with any activity",
        "days",
        "is active on more days",
        (),
        "log1p",
    ),
    Feature(
        "events_per_session",
        "engagement",
        "Average events per session",
        "events",
        "does more per visit",
        (VISITS_NEED,),
        "log1p",
        True,
    ),
    Feature(
        "views_per_session",
        "engagement",
        "Average product/page views per session",
        "views",
        "browses more per visit",
        ("view", VISITS_NEED),
        "log1p",
        True,
    ),
    Feature(
        "session_minutes",
        "engagement",
        "Average session length",
        "minutes",
        "stays longer per visit",
        (VISITS_NEED,),
        "log1p",
    ),
    Feature(
        "sessions_per_week",
        "engagement",
        "Sessions per week between first and last visit (counted over at least 4 weeks)",
        "sessions/week",
        "visits more regularly",
        (VISITS_NEED,),
        "log1p",
        True,
    ),
    Feature(
        "active_weeks",
        "engagement",
        "Distinct calendar weeks (Monday to Sunday) with any activity",
        "weeks",
        "is active in more weeks",
        (),
        "log1p",
    ),
    Feature(
        "sessions_per_active_week",
        "engagement",
        "Sessions per calendar week with any activity",
        "sessions/week",
        "visits more often in the weeks they come",
        (VISITS_NEED,),
        "log1p",
    ),
    Feature(
        "days_since_seen",
        "engagement",
        "Days from the last activity to the reference date",
        "days",
        "has been away longer",
        (),
        "none",
        True,
    ),
    Feature(
        "email_opens",
        "engagement",
        "Marketing e-mails opened",
        "opens",
        "opens more e-mails",
        ("email_open",),
        "log1p",
    ),
    Feature(
        "email_opens_per_week",
        "engagement",
        "Marketing e-mails opened per week between "
        "first and last activity (counted over at least 4 weeks)",
        "opens/week",
        "opens e-mails more often",
        ("email_open",),
        "log1p",
        True,
    ),
    Feature(
        "email_open_rate",
        "engagement",
        "Opens per marketing e-mail sent (smoothed)",
        "share",
        "opens more of the e-mails sent",
        ("email_send", "email_open"),
        "none",
        True,
    ),
    Feature(
        "email_clicks",
        "engagement",
        "Marketing e-mail links clicked",
        "clicks",
        "clicks more e-mails",
        ("email_click",),
        "log1p",
    ),
    Feature(
        "email_click_rate",
        "engagement",
        "Clicks per e-mail opened (smoothed)",
        "share",
        "clicks more of the e-mails opened",
        ("email_open", "email_click"),
        "none",
        True,
    ),
    Feature(
        "app_share",
        "engagement",
        "Share of activity in the app (platform column)",
        "share",
        "uses the app more",
        ("column:platform",),
        "none",
        True,
        evidence="active_days",
    ),
    # funnel
    Feature(
        "view_to_cart",
        "funnel",
        "Add-to-carts per product view (smoothed)",
        "share",
        "adds to cart more of what is viewed",
        ("view", "cart"),
        "none",
        True,
    ),
    Feature(
        "cart_to_purchase",
        "funnel",
        "Purchases per add-to-cart (smoothed)",
        "share",
        "completes more carts",
        ("cart", "purchase"),
        "none",
        True,
    ),
    Feature(
        "abandoned_carts",
        "funnel",
        "Sessions with an add-to-cart and no purchase",
        "sessions",
        "abandons more carts",
        ("cart",),
        "log1p",
    ),
    Feature(
        "abandon_rate",
        "funnel",
        "Share of sessions with an add-to-cart and no purchase (smoothed)",
        "share",
        "abandons carts in more of their visits",
        ("cart", VISITS_NEED),
        "none",
        True,
    ),
    Feature(
        "search_share",
        "funnel",
        "Share of events that are searches (smoothed)",
        "share",
        "searches more",
        ("search",),
        "none",
        True,
    ),
    # timing
    Feature(
        "weekend_share",
        "timing",
        "Share of activity on Saturdays and Sundays",
        "share",
        "is more of a weekend visitor",
        (),
        "none",
        True,
        evidence="active_days",
    ),
    Feature(
        "night_share",
        "timing",
        "Share of activity between midnight and 6 am (UTC)",
        "share",
        "is more active at night",
        (),
    ),
    Feature(
        "peak_month_share",
        "timing",
        "Share of the user's active days in their busiest "
        "calendar month (smoothed toward an even spread, 1/12; needs 52 weeks of data)",
        "share",
        "is more seasonal",
        (YEAR_NEED,),
    ),
    Feature(
        "regularity",
        "timing",
        "Spread of the idle time between sessions (coefficient "
        "of variation of the gaps from one session's end to the next one's start; empty "
        "below three sessions)",
        "ratio",
        "visits more irregularly",
        (VISITS_NEED,),
    ),
    # lifecycle
    Feature(
        "tenure_days",
        "lifecycle",
        "Days from first to last activity",
        "days",
        "has been a customer longer",
        (),
    ),
    Feature(
        "days_since_first_seen",
        "lifecycle",
        "Days from the first activity to the reference date",
        "days",
        "arrived longer ago",
        (),
        "none",
        True,
    ),
    Feature(
        "recent_share",
        "lifecycle",
        "Share of the user's activity in the last third of the data window (1/3 = steady)",
        "share",
        "is more active lately",
        (),
    ),
    # breadth
    Feature(
        "categories",
        "breadth",
        "Distinct product categories touched",
        "categories",
        "explores more categories",
        ("column:category",),
        "log1p",
    ),
    Feature(
        "products",
        "breadth",
        "Distinct products touched",
        "products",
        "explores more products",
        ("column:product",),
        "log1p",
    ),
)

BETTER: dict[str, str] = {
    # buying: more and bigger purchases, bought more recently, fewer days between them, and
    # full price rather than discounted (margin)
    "orders": "higher",
    "purchase_rate": "higher",
    "revenue": "higher",
    "avg_order_value": "higher",
    "items_per_order": "higher",
    "days_since_purchase": "lower",
    "days_between_orders": "lower",
    "discount_share": "lower",
    # engagement: visiting more and more often, and having been here recently
    "sessions": "higher",
    "active_days": "higher",
    "sessions_per_week": "higher",
    "active_weeks": "higher",
    "sessions_per_active_week": "higher",
    "days_since_seen": "lower",
    "email_opens": "higher",
    "email_opens_per_week": "higher",
    "email_open_rate": "higher",
    "email_clicks": "higher",
    "email_click_rate": "higher",
    # the funnel: carts filled and completed, fewer left behind
    "view_to_cart": "higher",
    "cart_to_purchase": "higher",
    "abandoned_carts": "lower",
    "abandon_rate": "lower",
    # lifecycle and breadth: kept coming back, active lately, exploring the range
    "tenure_days": "higher",
    "recent_share": "higher",
    "categories": "higher",
    "products": "higher",
}
"""Which way a feature is good news, for the report's colours (green good, red bad). Features not
listed are neither: events or views per visit, visit length, app, weekend, night or seasonal
shares, searches, regularity and when a user arrived describe a habit, not a result."""
CATALOGUE = tuple(replace(f, better=BETTER.get(f.name, "")) for f in CATALOGUE)

BY_NAME = {f.name: f for f in CATALOGUE}


def _weeks() -> str:
    """Weeks between the user's first and last activity, at least :data:`RATE_WEEKS`."""
    return f"greatest(epoch(u.last_ts - u.first_ts) / 86400 / 7, {RATE_WEEKS})"


def _rate(k: str, n: str, prior: str) -> str:
    """Smoothed rate k/n: (k + w * p) / (n + w), p the population rate."""
    return f"(({k}) + {PRIOR_WEIGHT} * {prior}) / (({n}) + {PRIOR_WEIGHT})"


def _session_sql(log: EventLog) -> str:
    """CTE ``sess_u (uid, sessions, session_minutes, regularity, abandoned_carts)``.

    Sessions from a gap (no ``session_col``) come from the tallies of ``user_activity``: a
    user's time in sessions is their tenure less the idle time between sessions, and abandoned
    carts are read off the user's trail of session starts, carts and purchases. Given sessions
    (``session_col``) are grouped by their key, over ``coded``: the log before duplicates are
    dropped, which changes no session's start, end, carts or purchases, and needs no sort.
    """
    if log.session_col:
        cart, purchase = role_codes(log.con, "cart"), role_codes(log.con, "purchase")
        return f"""
sess AS (
    SELECT uid, session_key, min(ts) AS s_start, max(ts) AS s_end,
           bool_or({cart}) AS has_cart, bool_or({purchase}) AS has_purchase
    FROM coded GROUP BY uid, session_key),
idle AS (
    SELECT *, greatest(epoch_us(s_start) - epoch_us(lag(s_end) OVER (
               PARTITION BY uid ORDER BY s_start, session_key)), 0) / 86400e6 AS idle_days
    FROM sess),
sess_u AS (
    SELECT uid, count(*) AS sessions,
           avg(epoch_us(s_end) - epoch_us(s_start)) / 60e6 AS session_minutes,
           CASE WHEN count(idle_days) >= 2 AND avg(idle_days) > 0
                THEN stddev_samp(idle_days) / avg(idle_days) END AS regularity,
           count(*) FILTER (WHERE has_cart AND NOT has_purchase) AS abandoned_carts
    FROM idle GROUP BY uid)"""
    return f"""
sess_u AS (
    SELECT uid, gap_sessions AS sessions,
           (epoch_us(last_ts) - epoch_us(first_ts) - coalesce(idle_us, 0))
               / gap_sessions / 60e6 AS session_minutes,
           CASE WHEN n_idle >= 2 AND idle_mean > 0 THEN idle_sd / idle_mean END AS regularity,
           {abandoned_sql("trail")} AS abandoned_carts
    FROM user_activity)"""


def _peak_month_share(log: EventLog) -> str:
    """Days in the busiest month over active days, smoothed with PRIOR_WEIGHT days spread evenly
    over the twelve months: one active day reads about 0.24, not 100 % seasonal."""
    if not covers_year(log):
        return "CAST(NULL AS DOUBLE)"
    busiest = ", ".join(f"u.days_m{m}" for m in range(1, 13))
    return f"(greatest({busiest}) + {PRIOR_WEIGHT} / 12) / (u.active_days + {PRIOR_WEIGHT})"


def top_unknown_events(log: EventLog) -> list[str]:
    """The :data:`TOP_UNKNOWN_EVENTS` most frequent event names that map to no role (``other``),
    most frequent first: they get count columns ``event:<name>`` beside the role counts, so the
    event mix shows what the unmapped activity is."""
    unknown = [
        (-n, name)
        for name, n in log.event_counts.items()
        if log.role_map.get(name) == "other" and n > 0
    ]
    return [name for _, name in sorted(unknown)[:TOP_UNKNOWN_EVENTS]]


def _unknown_event_columns(log: EventLog) -> str:
    """SQL columns ``event:<name>`` of :func:`top_unknown_events`, from the per-code counts of
    ``user_activity`` (a column per code, or the ``by_code`` MAP with many names)."""
    names = top_unknown_events(log)
    if not names:
        return ""
    codes = dict(log.con.execute("SELECT event, code FROM event_names").fetchall())
    counts = code_counts(log.con, [codes[name] for name in names])
    return "".join(
        f",\n       {count} AS {quote_name(EVENT_PREFIX + name)}"
        for count, name in zip(counts, names)
    )


# The population's totals that the smoothed rates pull towards (:func:`_rate`): name -> the
# per-user count summed. A log that is part of a larger one (a partition of the Spark engine)
# is given the whole log's totals instead (``EventLog.population``).
POPULATION_SUMS = {
    "views": "u.n_views",
    "carts": "u.n_carts",
    "orders": "u.n_orders",
    "clicks": "u.n_clicks",
    "opens": "u.n_opens",
    "sends": "u.n_sends",
    "discounted": "u.n_discounted",
    "searches": "u.n_searches",
    "events": "u.n_events",
    "sessions": "s.sessions",
    "abandoned": "s.abandoned_carts",
}


def _population_sums(log: EventLog) -> str:
    """SQL of one row: the :data:`POPULATION_SUMS` of this log's users, or the ones it is given.

    Given totals are HUGEINT, as DuckDB's sums of the counts are, so the rates divide alike.
    """
    if log.population is not None:
        return "SELECT " + ", ".join(
            f"CAST({int(log.population[name])} AS HUGEINT) AS {name}" for name in POPULATION_SUMS
        )
    return (
        "SELECT "
        + ", ".join(f"sum({column}) AS {name}" for name, column in POPULATION_SUMS.items())
        + " FROM user_activity u JOIN sess_u s USING (uid)"
    )


def population_sums(log: EventLog) -> dict[str, int]:
    """This log's :data:`POPULATION_SUMS` (0 for a log without users)."""
    row = log.con.execute(f"WITH {_session_sql(log).lstrip()} {_population_sums(log)}").fetchone()
    return {name: int(value or 0) for name, value in zip(POPULATION_SUMS, row)}


def feature_sql(log: EventLog) -> str:
    """The query computing every catalogue feature, the role counts and the counts of the top
    unknown events, one row per user.

    It reads the per-user tallies ``user_activity`` (:mod:`personas.activity`), never the
    events. Bound parameter: ``$reference``, the "today" of every "days since ..." feature
    (NULL: the last event).
    """
    return f"""
WITH {_session_sql(log).lstrip()},
sums AS ({_population_sums(log)}),
pop AS (
    SELECT carts / greatest(views, 1) AS p_view_cart,
           orders / greatest(carts, 1) AS p_cart_order,
           clicks / greatest(opens, 1) AS p_click,
           opens / greatest(sends, 1) AS p_open,
           discounted / greatest(orders, 1) AS p_discount,
           searches / greatest(events, 1) AS p_search,
           coalesce(CAST($reference AS TIMESTAMP), (SELECT max(last_ts) FROM user_activity))
               AS t_ref
    FROM sums),
pop_s AS (
    SELECT orders / greatest(sessions, 1) AS p_order,
           abandoned / greatest(sessions, 1) AS p_abandon
    FROM sums)
SELECT us.user_id,
       u.n_orders AS orders,
       coalesce(u.revenue, 0) AS revenue,
       CASE WHEN u.n_priced > 0 THEN u.revenue / u.n_priced END AS avg_order_value,
       CASE WHEN u.n_counted > 0 THEN u.items / u.n_counted END AS items_per_order,
       epoch(pop.t_ref - u.last_purchase) / 86400 AS days_since_purchase,
       CASE WHEN u.n_orders >= 2
            THEN epoch(u.last_purchase - u.first_purchase) / 86400 / (u.n_orders - 1)
       END AS days_between_orders,
       {_rate("u.n_orders", "s.sessions", "pop_s.p_order")} AS purchase_rate,
       {_rate("u.n_discounted", "u.n_orders", "pop.p_discount")} AS discount_share,
       s.sessions,
       u.active_days,
       u.n_events / s.sessions AS events_per_session,
       u.n_views / s.sessions AS views_per_session,
       s.session_minutes,
       s.sessions / {_weeks()} AS sessions_per_week,
       u.active_weeks,
       s.sessions / u.active_weeks AS sessions_per_active_week,
       epoch(pop.t_ref - u.last_ts) / 86400 AS days_since_seen,
       u.n_opens AS email_opens,
       u.n_opens / {_weeks()} AS email_opens_per_week,
       {_rate("u.n_opens", "u.n_sends", "pop.p_open")} AS email_open_rate,
       u.n_clicks AS email_clicks,
       {_rate("u.n_clicks", "u.n_opens", "pop.p_click")} AS email_click_rate,
       u.app_share,
       {_rate("u.n_carts", "u.n_views", "pop.p_view_cart")} AS view_to_cart,
       {_rate("u.n_orders", "u.n_carts", "pop.p_cart_order")} AS cart_to_purchase,
       s.abandoned_carts,
       {_rate("s.abandoned_carts", "s.sessions", "pop_s.p_abandon")} AS abandon_rate,
       {_rate("u.n_searches", "u.n_events", "pop.p_search")} AS search_share,
       u.weekend_share,
       u.night_share,
       {_peak_month_share(log)} AS peak_month_share,
       s.regularity,
       epoch(u.last_ts - u.first_ts) / 86400 AS tenure_days,
       epoch(pop.t_ref - u.first_ts) / 86400 AS days_since_first_seen,
       u.recent_share,
       u.categories,
       u.products,
       u.* LIKE '{ROLE_PREFIX}%'{_unknown_event_columns(log)}
FROM user_activity u
JOIN sess_u s USING (uid)
JOIN users us USING (uid)
CROSS JOIN pop
CROSS JOIN pop_s
ORDER BY u.uid
"""


def available_features(log: EventLog) -> tuple[list[Feature], dict[str, str]]:
    """The catalogue entries this log can support, and a note for each skipped one.

    An order table (no event column) has no visits, so the features of sessions are skipped
    there: its "sessions" would only be its orders again, cut at 30 minutes.
    """
    have = set(log.roles) | {f"column:{c}" for c in log.optional}
    if covers_year(log):
        have.add(YEAR_NEED)
    if log.has_event_column:
        have.add(VISITS_NEED)
    kept, skipped = [], {}
    for feature in CATALOGUE:
        missing = [need for need in feature.needs if need not in have]
        data = [m for m in missing if m not in (YEAR_NEED, VISITS_NEED)]
        if YEAR_NEED in missing:
            skipped[feature.name] = (
                f"skipped: the data covers less than 52 weeks "
                f"({log.counts.get('start')} to {log.counts.get('end')})"
            )
        elif data:
            what = ", ".join(
                m.replace("column:", "") + (" column" if m.startswith("column:") else " events")
                for m in data
            )
            skipped[feature.name] = f"skipped: the data has no {what}"
        elif missing:
            skipped[feature.name] = (
                "skipped: an order table (no event column) has no visits to make sessions of"
            )
        else:
            kept.append(feature)
    return kept, skipped


def covers_year(log: EventLog) -> bool:
    """The events kept span 52 weeks (:func:`personas.activity.spans_year`)."""
    start, end = log.counts.get("start"), log.counts.get("end")
    if not start or not end:
        return False
    return spans_year(pd.Timestamp(start), pd.Timestamp(end))


def compute_features(log: EventLog) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per user (index ``user_id``), one column per supported catalogue feature, then the
    user's event counts per role (``role_<role>``), then their counts of
    the most frequent events no role covers (``event:<name>``, :func:`top_unknown_events`).

    Returns the table and the notes on skipped features.

    Examples
    --------
    >>> from personas.load import load_events
    >>> from personas.params import PersonaParams
    >>> table, skipped = compute_features(load_events(PersonaParams(sample_users=300)))
    >>> len(table), "orders" in table.columns, "role_view" in table.columns
    (300, True, True)
    """
    kept, skipped = available_features(log)
    rows = log.con.execute("SELECT count(*) FROM user_activity").fetchall()[0][0]
    query = log.con.sql(feature_sql(log), params={"reference": log.reference})
    counts = [c for c in query.columns if c.startswith((ROLE_PREFIX, EVENT_PREFIX))]
    return read_table(query, rows, [f.name for f in kept], counts), skipped


def read_table(query, rows: int, rounded: list[str], exact: list[str]) -> pd.DataFrame:
    """The result of ``query`` (a DuckDB relation whose first column is ``user_id`` and which has
    ``rows`` rows) as a float frame indexed by user: columns ``rounded`` to 9 decimals, then
    ``exact``.

    The rows stream in batches straight into the frame's one block of floats, so the table is
    held once in Python, not as DuckDB's result, a pandas copy and a float copy (about 0.4 GB
    each at 1M users). DuckDB's multi-threaded sums may differ in the last bits from run to run;
    9 decimals keep every meaningful digit and make the same input give the same features, hence
    the same personas.
    """
    columns = rounded + exact
    values = np.empty((rows, len(columns)))
    ids = []
    at = 0
    for batch in query.select(
        ", ".join(quote_name(c) for c in ["user_id", *columns])
    ).to_arrow_reader(STREAM_ROWS):
        end = at + batch.num_rows
        # a copy: a view of the ids would keep the whole batch alive
        ids.append(batch.column(0).to_numpy(zero_copy_only=False))
        for j in range(len(columns)):
            values[at:end, j] = batch.column(j + 1).to_numpy(zero_copy_only=False)
        at = end
    if at != rows:
        raise RuntimeError(f"the feature query gave {at:,} rows for {rows:,} users")
    np.round(values[:, : len(rounded)], 9, out=values[:, : len(rounded)])
    index = pd.Index(np.concatenate(ids) if ids else [], dtype="str", name="user_id")
    return pd.DataFrame(values, index=index, columns=columns, copy=False)


PARQUET_ROWS = 1024 * 1024  # users per slice written, pyarrow's own row group size


def write_table(features: pd.DataFrame, path) -> None:
    """Write the feature table to Parquet as ``DataFrame.to_parquet`` does (same columns, index
    and row groups), a slice of :data:`PARQUET_ROWS` users at a time.

    ``to_parquet`` first converts the whole frame to Arrow, a second copy of it (3.3 GB at 10M
    users) on top of the frame; a slice at a time holds one slice's copy (0.35 GB).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(features.iloc[:0])
    with pq.ParquetWriter(path, schema) as writer:
        for at in range(0, max(len(features), 1), PARQUET_ROWS):
            piece = features.iloc[at : at + PARQUET_ROWS]
            writer.write_table(pa.Table.from_pandas(piece, schema=schema))


def read_features(path) -> pd.DataFrame:
    """``features.parquet`` as ``pd.read_parquet`` reads it (floats indexed by ``user_id``), a
    row group at a time into the frame's one block of floats.

    ``pd.read_parquet`` holds the file's Arrow table and the frame's copy of it at once, with
    the pages read: about three times the table at its peak (10 GB at 10M users, the model
    step's peak). Here the table is held once, plus one row group.

    A folder is the Spark engine's dataset (parts with a ``user_id`` column, rows in no order):
    read whole and ordered by user as the DuckDB engine writes it, for tests and checks of small
    runs; the Spark engine's own steps never read it on the driver.
    """
    import pyarrow.parquet as pq

    if Path(path).is_dir():
        frame = pd.read_parquet(path).set_index("user_id").sort_index()
        frame.index = pd.Index(frame.index, dtype="str", name="user_id")
        return frame
    file = pq.ParquetFile(path)
    index = pd.read_parquet(path, columns=[]).index  # the ids, as pandas reads them
    columns = [n for n in file.schema_arrow.names if n != index.name]
    if any(str(file.schema_arrow.field(n).type) != "double" for n in columns):
        return pd.read_parquet(path)  # not a table of floats: pandas' own reading
    values = np.empty((file.metadata.num_rows, len(columns)))
    at = 0
    for group in range(file.num_row_groups):
        batch = file.read_row_group(group, columns=columns)
        end = at + batch.num_rows
        for j in range(len(columns)):
            values[at:end, j] = batch.column(j).to_numpy(zero_copy_only=False)
        at = end
    return pd.DataFrame(values, index=index, columns=columns, copy=False)


def event_mix_counts(features: pd.DataFrame) -> pd.DataFrame:
    """User x kind of event counts for the event mix: one column per role (``view``, ...), with
    the top unknown events (``event:<name>`` columns of :func:`compute_features`) taken out of
    ``other`` into columns of their own, so the mix says which unmapped events they were."""
    mix = features[[c for c in features.columns if c.startswith(ROLE_PREFIX)]]
    mix.columns = [c.removeprefix(ROLE_PREFIX) for c in mix.columns]
    unknown = features[[c for c in features.columns if c.startswith(EVENT_PREFIX)]]
    if unknown.columns.empty:
        return mix
    mix = mix.assign(other=mix["other"] - unknown.sum(axis=1))
    return pd.concat([mix, unknown], axis=1)


def model_columns(columns) -> list[str]:
    """The catalogue features among ``columns`` that the model uses: those flagged ``model``, a
    stand-in only where the feature it stands in for is missing (``orders`` in an order table,
    which has no sessions to give a purchase rate)."""
    present = set(columns)
    return [
        c
        for c in columns
        if c in BY_NAME and BY_NAME[c].model and BY_NAME[c].stands_in_for not in present
    ]


def model_centres(features: pd.DataFrame) -> dict[str, float]:
    """The typical value of each :func:`model_columns` column, after its transform: the median
    over the users who have one (0 when nobody has).

    :func:`model_matrix` fills missing values and pulls thinly evidenced ones toward it. A fitted
    model keeps these centres (``personas.model.FeatureMatrix``), so that users assigned later are
    filled with the fitted users' typical values, not with those of the users being assigned.
    """
    centres = {}
    for name in model_columns(features.columns):
        values = _transformed(features, name)
        present = values[~np.isnan(values)]
        centres[name] = float(np.median(present)) if len(present) else 0.0
    return centres


def _transformed(features: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` with its catalogue transform applied (log1p clips negatives to 0 first)."""
    values = features[name].to_numpy(dtype="float64", copy=True)
    if BY_NAME[name].transform == "log1p":
        values = np.log1p(np.clip(values, 0, None))
    return values


def model_matrix(
    features: pd.DataFrame, centres: dict[str, float] | None = None
) -> tuple[np.ndarray, list[str]]:
    """The model's input: the :func:`model_columns` of the table, filled and transformed.

    Heavy-tailed counts are log1p-transformed (the catalogue's ``transform``); a feature with an
    ``evidence`` count is pulled toward its centre by :data:`EVIDENCE_WEIGHT` pseudo-counts (an
    order value resting on one order sits between that order and the typical one; without orders,
    at the typical one); other missing values take the feature's ``fill``, else the centre. The
    centres are the table's own medians (:func:`model_centres`) unless ``centres`` gives them:
    then its keys are the columns, as when a fitted model prepares new users.
    """
    centres = model_centres(features) if centres is None else centres
    columns = list(centres)
    out = np.empty((len(features), len(columns)), dtype="float64")
    for j, name in enumerate(columns):
        spec = BY_NAME[name]
        values = _transformed(features, name)
        missing = np.isnan(values)
        centre = centres[name]
        if spec.evidence:
            n = np.nan_to_num(features[spec.evidence].to_numpy(dtype="float64"))
            n[missing] = 0.0
            values = pulled_toward(centre, values, n)
        elif missing.any():
            values[missing] = spec.fill if spec.fill is not None else centre
        out[:, j] = values
    return out, columns


def pulled_toward(centre: float, values: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``values`` resting on ``n`` observations each, pulled toward ``centre`` by
    :data:`EVIDENCE_WEIGHT` pseudo-counts (a missing value, or none observed: the centre)."""
    return (n * np.nan_to_num(values) + EVIDENCE_WEIGHT * centre) / (n + EVIDENCE_WEIGHT)


def share_reliability(features: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    """How much of each evidenced share's spread between users is more than luck.

    A share with an ``evidence`` count (``weekend_share``: weekend days among a user's active
    days) seen on a few days is mostly the luck of those days: a user with four orders has a
    weekend share of 0, 1/4, 1/2... whatever their habits. Per share among ``columns``, its
    reliability is sqrt(1 - noise / variance): the variance between users of the value the model
    uses (pulled toward the centre as :func:`model_matrix` does), and the noise a binomial share
    of each user's count would have if every user had the population's share. 1 means all of the
    spread is between users; 0 means it could all be luck. Columns without an evidence count, or
    that are not shares, are left out.
    """
    reliability = {}
    for name in columns:
        spec = BY_NAME[name]
        if not spec.evidence or spec.unit != "share" or spec.evidence not in features:
            continue
        share = features[name].to_numpy(dtype="float64")
        n = np.nan_to_num(features[spec.evidence].to_numpy(dtype="float64"))
        seen = ~np.isnan(share) & (n > 0)
        if seen.sum() < 2:
            continue
        mean, centre = float(share[seen].mean()), float(np.median(share[seen]))
        used = pulled_toward(centre, share, n)
        noise = float(np.mean(n * mean * (1 - mean) / (n + EVIDENCE_WEIGHT) ** 2))
        spread = float(np.var(used))
        reliability[name] = float(np.sqrt(max(0.0, 1 - noise / spread))) if spread else 0.0
    return reliability
