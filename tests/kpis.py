"""The KPI definitions, written out again in the tests rather than imported, so that a changed
definition in personas/profile.py shows up as a failing test."""

KPI_DEFINITIONS = {
    "conversion_rate": lambda f: (f["orders"] > 0).mean(),
    "revenue_per_user": lambda f: f["revenue"].mean(),
    "avg_order_value": lambda f: f["revenue"].sum() / f["orders"].sum(),
    "purchase_frequency": lambda f: f["orders"].mean(),
    "days_since_seen": lambda f: f["days_since_seen"].median(),
    "at_risk_share": lambda f: (f["days_since_seen"] > 60).mean(),
    "engagement_rate": lambda f: f["sessions_per_week"].mean(),
}
