"""Events -> one row of behaviour features per user, in DuckDB SQL, plus the feature catalogue.

The SQL runs on the ``events`` view made by :func:`personas.events.load_events`, so it streams from
the file and holds no per-user Python loop. Rates are smoothed towards the population rate with
:data:`PRIOR_WEIGHT` pseudo-observations, so a user with one view and one cart is not "100 %".
Every feature is described in :data:`CATALOGUE`; one whose inputs the data lacks is skipped with a
note, never filled with zeros that would look like behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .events import EventLog, quote_literal, quote_name

PRIOR_WEIGHT = 5.0   # pseudo-observations pulling a user's rate towards the population's
ROLE_PREFIX = "role_"  # columns of per-role event counts in the feature table


@dataclass(frozen=True)
class Feature:
    """One behaviour feature: what it means, what it needs, and how the model uses it."""

    name: str
    group: str            # purchase | engagement | funnel | timing | lifecycle | breadth
    description: str
    unit: str
    higher: str           # "higher means ..."
    needs: tuple[str, ...] = ()   # roles, or "column:<name>" for optional columns
    transform: str = "none"       # before scaling: "log1p" (heavy-tailed counts) or "none"
    model: bool = False           # used to find personas (the rest only describe them)
    fill: float | None = None     # model value when missing (e.g. order value of non-buyers)

    @property
    def label(self) -> str:
        """The description without its parenthesised fine print, for cards and charts."""
        return self.description.split(" (")[0]


CATALOGUE: tuple[Feature, ...] = (
    # purchase behaviour (RFM)
    Feature("orders", "purchase", "Number of purchases", "orders", "buys more often",
            ("purchase",), "log1p", True),
    Feature("revenue", "purchase", "Total revenue from the user's purchases", "currency",
            "spends more", ("purchase",), "log1p"),
    Feature("avg_order_value", "purchase", "Average revenue per purchase (empty for non-buyers)",
            "currency", "buys bigger baskets", ("purchase", "column:amount"), "log1p", True, 0.0),
    Feature("days_since_purchase", "purchase", "Days from the last purchase to the reference "
            "date (the last event unless reference_date is set, empty for non-buyers)", "days",
            "bought longer ago", ("purchase",)),
    Feature("days_between_orders", "purchase", "Average days between consecutive purchases "
            "(empty below two purchases)", "days", "buys less often", ("purchase",)),
    Feature("discount_share", "purchase", "Share of purchases made with a discount (smoothed)",
            "share", "relies more on discounts", ("purchase", "column:discount"), "none", True),
    # engagement
    Feature("sessions", "engagement", "Number of sessions (visits)", "sessions", "visits more",
            (), "log1p", True),
    Feature("active_days", "engagement", "Distinct days with any activity", "days",
            "is active on more days", (), "log1p"),
    Feature("events_per_session", "engagement", "Average events per session", "events",
            "does more per visit", (), "log1p"),
    Feature("views_per_session", "engagement", "Average product/page views per session", "views",
            "browses more per visit", ("view",), "log1p", True),
    Feature("session_minutes", "engagement", "Average session length", "minutes",
            "stays longer per visit", (), "log1p"),
    Feature("sessions_per_week", "engagement", "Sessions per week between first and last visit",
            "sessions/week", "visits more regularly", (), "log1p"),
    Feature("days_since_seen", "engagement", "Days from the last activity to the reference date",
            "days", "has been away longer", (), "none", True),
    Feature("email_opens", "engagement", "Marketing e-mails opened", "opens",
            "opens more e-mails", ("email_open",), "log1p", True),
    Feature("email_click_rate", "engagement", "Clicks per e-mail opened (smoothed)", "share",
            "clicks more of the e-mails opened", ("email_open", "email_click"), "none", True),
    Feature("app_share", "engagement", "Share of activity in the app (platform column)", "share",
            "uses the app more", ("column:platform",), "none", True),
    # funnel
    Feature("view_to_cart", "funnel", "Add-to-carts per product view (smoothed)", "share",
            "adds to cart more of what is viewed", ("view", "cart"), "none", True),
    Feature("cart_to_purchase", "funnel", "Purchases per add-to-cart (smoothed)", "share",
            "completes more carts", ("cart", "purchase"), "none", True),
    Feature("abandoned_carts", "funnel", "Sessions with an add-to-cart and no purchase",
            "sessions", "abandons more carts", ("cart",), "log1p", True),
    Feature("search_share", "funnel", "Share of events that are searches (smoothed)", "share",
            "searches more", ("search",), "none", True),
    # timing
    Feature("weekend_share", "timing", "Share of activity on Saturdays and Sundays", "share",
            "is more of a weekend visitor", ()),
    Feature("night_share", "timing", "Share of activity between midnight and 6 am (UTC)", "share",
            "is more active at night", ()),
    Feature("regularity", "timing", "Spread of the gaps between sessions (coefficient of "
            "variation; empty below three sessions)", "ratio", "visits more irregularly", ()),
    # lifecycle
    Feature("tenure_days", "lifecycle", "Days from first to last activity", "days",
            "has been a customer longer", ()),
    Feature("days_since_first_seen", "lifecycle", "Days from the first activity to the "
            "reference date", "days", "arrived longer ago", (), "none", True),
    Feature("recent_share", "lifecycle", "Share of the user's activity in the last third of the "
            "data window (1/3 = steady)", "share", "is more active lately", ()),
    # breadth
    Feature("categories", "breadth", "Distinct product categories touched", "categories",
            "explores more categories", ("column:category",), "log1p"),
)

BY_NAME = {f.name: f for f in CATALOGUE}


def _rate(k: str, n: str, prior: str) -> str:
    """Smoothed rate k/n: (k + w * p) / (n + w), p the population rate."""
    return f"(({k}) + {PRIOR_WEIGHT} * {prior}) / (({n}) + {PRIOR_WEIGHT})"


# t0..t1 is the data's own span (for recent_share); t_ref is the "today" every "days since ..."
# feature counts to: the bound $reference (EventLog.reference), or the last event when NULL.
FEATURE_SQL = f"""
WITH ev AS NOT MATERIALIZED (SELECT * FROM events),  -- a table already: read it in place
bounds AS (SELECT min(ts) AS t0, max(ts) AS t1,
                  coalesce(CAST($reference AS TIMESTAMP), max(ts)) AS t_ref FROM ev),
sess AS (
    SELECT user_id, session_no, min(ts) AS s_start, max(ts) AS s_end,
           bool_or(role = 'cart') AS has_cart, bool_or(role = 'purchase') AS has_purchase
    FROM ev GROUP BY user_id, session_no),
sess_u AS (
    SELECT user_id, count(*) AS sessions,
           avg(epoch(s_end - s_start)) / 60 AS session_minutes,
           count(*) FILTER (WHERE has_cart AND NOT has_purchase) AS abandoned_carts
    FROM sess GROUP BY user_id),
gaps AS (
    SELECT user_id,
           epoch(s_start - lag(s_start) OVER (PARTITION BY user_id ORDER BY s_start)) / 86400 AS gap
    FROM sess),
gap_u AS (
    SELECT user_id, CASE WHEN count(gap) >= 2 AND avg(gap) > 0
                         THEN stddev_samp(gap) / avg(gap) END AS regularity
    FROM gaps WHERE gap IS NOT NULL GROUP BY user_id),
ord AS (
    SELECT user_id, epoch(ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts)) / 86400 AS gap
    FROM ev WHERE role = 'purchase'),
ord_u AS (SELECT user_id, avg(gap) AS days_between_orders FROM ord WHERE gap IS NOT NULL
          GROUP BY user_id),
u AS (
    SELECT user_id, count(*) AS n_events,
           count(*) FILTER (WHERE role = 'view') AS n_views,
           count(*) FILTER (WHERE role = 'search') AS n_searches,
           count(*) FILTER (WHERE role = 'cart') AS n_carts,
           count(*) FILTER (WHERE role = 'purchase') AS n_orders,
           count(*) FILTER (WHERE role = 'email_open') AS n_opens,
           count(*) FILTER (WHERE role = 'email_click') AS n_clicks,
           count(*) FILTER (WHERE role = 'purchase' AND discount) AS n_discounted,
           sum(amount) FILTER (WHERE role = 'purchase') AS revenue,
           count(amount) FILTER (WHERE role = 'purchase') AS n_priced,
           count(DISTINCT CAST(ts AS DATE)) AS active_days,
           min(ts) AS first_ts, max(ts) AS last_ts,
           max(ts) FILTER (WHERE role = 'purchase') AS last_purchase,
           avg(CASE WHEN dayofweek(ts) IN (0, 6) THEN 1.0 ELSE 0.0 END) AS weekend_share,
           avg(CASE WHEN hour(ts) < 6 THEN 1.0 ELSE 0.0 END) AS night_share,
           avg(CASE WHEN lower(platform) IN ('app', 'ios', 'android', 'mobile_app')
                    THEN 1.0 ELSE 0.0 END) AS app_share,
           count(DISTINCT category) AS categories,
           avg(CASE WHEN ts >= (SELECT t1 - (t1 - t0) / 3 FROM bounds) THEN 1.0 ELSE 0.0 END)
               AS recent_share
    FROM ev GROUP BY user_id),
pop AS (
    SELECT sum(n_carts) / greatest(sum(n_views), 1) AS p_view_cart,
           sum(n_orders) / greatest(sum(n_carts), 1) AS p_cart_order,
           sum(n_clicks) / greatest(sum(n_opens), 1) AS p_click,
           sum(n_discounted) / greatest(sum(n_orders), 1) AS p_discount,
           sum(n_searches) / greatest(sum(n_events), 1) AS p_search
    FROM u)
SELECT u.user_id,
       u.n_orders AS orders,
       coalesce(u.revenue, 0) AS revenue,
       CASE WHEN u.n_priced > 0 THEN u.revenue / u.n_priced END AS avg_order_value,
       epoch(b.t_ref - u.last_purchase) / 86400 AS days_since_purchase,
       o.days_between_orders,
       {_rate('u.n_discounted', 'u.n_orders', 'pop.p_discount')} AS discount_share,
       s.sessions,
       u.active_days,
       u.n_events / s.sessions AS events_per_session,
       u.n_views / s.sessions AS views_per_session,
       s.session_minutes,
       s.sessions / greatest(epoch(u.last_ts - u.first_ts) / 86400 / 7, 1) AS sessions_per_week,
       epoch(b.t_ref - u.last_ts) / 86400 AS days_since_seen,
       u.n_opens AS email_opens,
       {_rate('u.n_clicks', 'u.n_opens', 'pop.p_click')} AS email_click_rate,
       u.app_share,
       {_rate('u.n_carts', 'u.n_views', 'pop.p_view_cart')} AS view_to_cart,
       {_rate('u.n_orders', 'u.n_carts', 'pop.p_cart_order')} AS cart_to_purchase,
       s.abandoned_carts,
       {_rate('u.n_searches', 'u.n_events', 'pop.p_search')} AS search_share,
       u.weekend_share,
       u.night_share,
       g.regularity,
       epoch(u.last_ts - u.first_ts) / 86400 AS tenure_days,
       epoch(b.t_ref - u.first_ts) / 86400 AS days_since_first_seen,
       u.recent_share,
       u.categories
FROM u
JOIN sess_u s USING (user_id)
LEFT JOIN gap_u g USING (user_id)
LEFT JOIN ord_u o USING (user_id)
CROSS JOIN bounds b
CROSS JOIN pop
ORDER BY u.user_id
"""


def available_features(log: EventLog) -> tuple[list[Feature], dict[str, str]]:
    """The catalogue entries this log can support, and a note for each skipped one."""
    have = set(log.roles) | {f"column:{c}" for c in log.optional}
    kept, skipped = [], {}
    for feature in CATALOGUE:
        missing = [need for need in feature.needs if need not in have]
        if missing:
            what = ", ".join(m.replace("column:", "") + (" column" if m.startswith("column:")
                                                         else " events") for m in missing)
            skipped[feature.name] = f"skipped: the data has no {what}"
        else:
            kept.append(feature)
    return kept, skipped


def compute_features(log: EventLog) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per user (index ``user_id``), one column per supported catalogue feature, then the
    user's event counts per role (``role_<role>``, see :func:`role_counts`).

    Returns the table and the notes on skipped features.

    Examples
    --------
    >>> from personas.events import load_events
    >>> from personas.params import PersonaParams
    >>> table, skipped = compute_features(load_events(PersonaParams(sample_users=300)))
    >>> len(table), "orders" in table.columns, "role_view" in table.columns
    (300, True, True)
    """
    kept, skipped = available_features(log)
    frame = log.con.execute(FEATURE_SQL, {"reference": log.reference}).df()
    frame["user_id"] = frame["user_id"].astype(str)
    # DuckDB's multi-threaded sums may differ in the last bits from run to run; 9 decimals keep
    # every meaningful digit and make the same input give the same features, hence personas
    frame = frame.set_index("user_id")[[f.name for f in kept]].astype("float64").round(9)
    return frame.join(role_counts(log)), skipped


def role_counts(log: EventLog) -> pd.DataFrame:
    """User x role event counts (columns ``role_<role>``): the raw event mix, for profiles."""
    roles = sorted(set(log.role_map.values()))
    # role names come from the user's roles_path: quote them
    columns = ", ".join(f"count(*) FILTER (WHERE role = {quote_literal(r)}) "
                        f"AS {quote_name(ROLE_PREFIX + r)}" for r in roles)
    frame = log.con.execute(f"SELECT user_id, {columns} FROM events GROUP BY user_id").df()
    frame["user_id"] = frame["user_id"].astype(str)
    return frame.set_index("user_id").astype("float64")


def model_matrix(features: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """The model's input: catalogue features flagged ``model``, filled and transformed.

    Heavy-tailed counts are log1p-transformed (the catalogue's ``transform``); missing values take
    the feature's ``fill`` (e.g. an order value of 0 for non-buyers), else the median.
    """
    columns = [c for c in features.columns if c in BY_NAME and BY_NAME[c].model]
    out = np.empty((len(features), len(columns)), dtype="float64")
    for j, name in enumerate(columns):
        spec = BY_NAME[name]
        values = features[name].to_numpy(dtype="float64", copy=True)
        missing = np.isnan(values)
        if missing.any():
            fill = spec.fill if spec.fill is not None else np.nanmedian(values) if (~missing).any() else 0.0
            values[missing] = fill
        if spec.transform == "log1p":
            values = np.log1p(np.clip(values, 0, None))
        out[:, j] = values
    return out, columns
