"""Tests of personas.features: every value checked against a hand computation on a tiny log.

The log (times UTC, 2024-05-01 is a Wednesday; the data ends 2024-05-10 12:00):

====  ================  ==============  ======  ========
user  time              event           amount  discount
====  ================  ==============  ======  ========
u1    Fri 05-10 12:00   page_view
u2    Thu 05-02 09:00   page_view
u2    Thu 05-02 09:10   page_view
u2    Thu 05-02 09:15   add_to_cart
u2    Thu 05-02 09:20   add_to_cart
u2    Sat 05-04 03:00   page_view
u3    Wed 05-01 09:50   page_view
u3    Wed 05-01 09:55   add_to_cart
u3    Wed 05-01 10:00   purchase        10      true
u3    Fri 05-03 09:55   page_view
u3    Fri 05-03 10:00   purchase        20      false
u3    Thu 05-09 10:00   purchase        60      false
u4    Sun 05-05 15:00   purchase        50      false
====  ================  ==============  ======  ========
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from personas import activity
from personas.errors import SchemaError
from personas.features import (
    CATALOGUE,
    PRIOR_WEIGHT,
    ROLE_PREFIX,
    TOP_UNKNOWN_EVENTS,
    available_features,
    compute_features,
    event_mix_counts,
    model_matrix,
)
from personas.load import load_events
from personas.params import PersonaParams

W = PRIOR_WEIGHT
END = datetime(2024, 5, 10, 12, 0)
ROWS = [
    ("u1", "2024-05-10 12:00:00", "page_view", None, None),
    ("u2", "2024-05-02 09:00:00", "page_view", None, None),
    ("u2", "2024-05-02 09:10:00", "page_view", None, None),
    ("u2", "2024-05-02 09:15:00", "add_to_cart", None, None),
    ("u2", "2024-05-02 09:20:00", "add_to_cart", None, None),
    ("u2", "2024-05-04 03:00:00", "page_view", None, None),
    ("u3", "2024-05-01 09:50:00", "page_view", None, None),
    ("u3", "2024-05-01 09:55:00", "add_to_cart", None, None),
    ("u3", "2024-05-01 10:00:00", "purchase", 10.0, "true"),
    ("u3", "2024-05-03 09:55:00", "page_view", None, None),
    ("u3", "2024-05-03 10:00:00", "purchase", 20.0, "false"),
    ("u3", "2024-05-09 10:00:00", "purchase", 60.0, "false"),
    ("u4", "2024-05-05 15:00:00", "purchase", 50.0, "false"),
]


def _days(start: str, end: datetime = END) -> float:
    return (end - datetime.fromisoformat(start)) / timedelta(days=1)


def _log(tmp_path, rows, columns=("user_id", "timestamp", "event", "amount", "discount"), **params):
    path = tmp_path / "events.csv"
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return load_events(PersonaParams(events_path=str(path), **params))


@pytest.fixture()
def log(tmp_path):
    return _log(tmp_path, ROWS)


@pytest.fixture()
def table(log):
    frame, skipped = compute_features(log)
    return frame


# -- the table's shape ----------------------------------------------------------------------------
def test_one_row_per_user_and_catalogue_then_role_columns(log, table):
    kept, _ = available_features(log)
    assert list(table.index) == ["u1", "u2", "u3", "u4"]
    assert table.index.name == "user_id"
    assert list(table.columns) == [f.name for f in kept] + [
        "role_cart",
        "role_purchase",
        "role_view",
    ]
    assert (table.dtypes == "float64").all()


def test_skipped_features_name_what_is_missing(log):
    kept, skipped = available_features(log)
    assert skipped == {
        "items_per_order": "skipped: the data has no quantity column",
        "email_opens": "skipped: the data has no email_open events",
        "email_opens_per_week": "skipped: the data has no email_open events",
        "email_open_rate": "skipped: the data has no email_send events, email_open events",
        "email_clicks": "skipped: the data has no email_click events",
        "email_click_rate": "skipped: the data has no email_open events, email_click events",
        "app_share": "skipped: the data has no platform column",
        "search_share": "skipped: the data has no search events",
        "categories": "skipped: the data has no category column",
        "products": "skipped: the data has no product column",
        "peak_month_share": "skipped: the data covers less than 52 weeks "
        "(2024-05-01 09:50:00 to 2024-05-10 12:00:00)",
    }
    assert [f.name for f in kept] + list(skipped) != []
    assert {f.name for f in kept} | set(skipped) == {f.name for f in CATALOGUE}
    assert not {f.name for f in kept} & set(skipped)


def test_role_count_columns(log, table):
    # the prefix must not collide with catalogue names (events_per_session)
    assert ROLE_PREFIX == "role_"
    assert not any(f.name.startswith(ROLE_PREFIX) for f in CATALOGUE)
    counts = table[["role_view", "role_cart", "role_purchase"]]
    assert counts.loc["u1"].tolist() == [1, 0, 0]
    assert counts.loc["u2"].tolist() == [3, 2, 0]
    assert counts.loc["u3"].tolist() == [2, 1, 3]
    assert counts.loc["u4"].tolist() == [0, 0, 1]


# -- purchase features ----------------------------------------------------------------------------
def test_user_with_one_view_only(table):
    u1 = table.loc["u1"]
    assert u1["orders"] == 0
    assert u1["revenue"] == 0
    assert math.isnan(u1["avg_order_value"])
    assert math.isnan(u1["days_since_purchase"])
    assert math.isnan(u1["days_between_orders"])
    assert u1["sessions"] == 1
    assert u1["events_per_session"] == 1
    assert u1["views_per_session"] == 1
    assert u1["session_minutes"] == 0
    assert u1["days_since_seen"] == 0
    assert u1["days_since_first_seen"] == 0
    assert u1["tenure_days"] == 0
    assert u1["active_days"] == 1
    assert math.isnan(u1["regularity"])


def test_user_without_purchases(table):
    u2 = table.loc["u2"]
    assert u2["orders"] == 0
    assert u2["revenue"] == 0
    assert math.isnan(u2["avg_order_value"])
    assert math.isnan(u2["days_since_purchase"])
    assert math.isnan(u2["days_between_orders"])


def test_user_with_three_purchases(table):
    u3 = table.loc["u3"]
    assert u3["orders"] == 3
    assert u3["revenue"] == 90
    assert u3["avg_order_value"] == pytest.approx(30)
    assert u3["days_since_purchase"] == pytest.approx(_days("2024-05-09 10:00:00"))  # 1d 2h
    assert u3["days_since_purchase"] == pytest.approx(26 / 24)
    assert u3["days_between_orders"] == pytest.approx((2 + 6) / 2)
    u4 = table.loc["u4"]
    assert (u4["orders"], u4["revenue"], u4["avg_order_value"]) == (1, 50, 50)
    assert math.isnan(u4["days_between_orders"])
    assert u4["days_since_purchase"] == pytest.approx(4 + 21 / 24)


def test_discount_share_is_smoothed_towards_the_population(table):
    population = 1 / 4  # one discounted purchase out of four
    assert table.loc["u3", "discount_share"] == pytest.approx((1 + W * population) / (3 + W))
    assert table.loc["u3", "discount_share"] == pytest.approx(0.28125)
    assert table.loc["u4", "discount_share"] == pytest.approx((0 + W * population) / (1 + W))
    # no purchases: the population rate itself
    assert table.loc["u1", "discount_share"] == pytest.approx(population)
    assert table.loc["u2", "discount_share"] == pytest.approx(population)


def test_amounts_missing_on_some_purchases_average_over_priced_ones(tmp_path):
    rows = [
        ("a", "2024-05-01 10:00:00", "purchase", 10.0, None),
        ("a", "2024-05-02 10:00:00", "purchase", None, None),
        ("a", "2024-05-03 10:00:00", "purchase", 30.0, None),
        ("b", "2024-05-03 10:00:00", "purchase", -4.0, None),
    ]  # a refund: set to missing
    table, _ = compute_features(_log(tmp_path, rows))
    assert table.loc["a", "orders"] == 3
    assert table.loc["a", "revenue"] == 40
    assert table.loc["a", "avg_order_value"] == pytest.approx(20)
    assert table.loc["b", "orders"] == 1
    assert table.loc["b", "revenue"] == 0
    assert math.isnan(table.loc["b", "avg_order_value"])


# -- engagement and funnel ---------------------------------------------------------------------
def test_sessions_and_per_session_averages(table):
    expected = {
        "u1": (1, 1.0, 1.0),
        "u2": (2, 5 / 2, 3 / 2),
        "u3": (3, 6 / 3, 2 / 3),
        "u4": (1, 1.0, 0.0),
    }
    for user, (sessions, events, views) in expected.items():
        row = table.loc[user]
        assert row["sessions"] == sessions, user
        assert row["events_per_session"] == pytest.approx(events), user
        assert row["views_per_session"] == pytest.approx(views), user


def test_session_minutes_active_days_tenure_and_rate(table):
    assert table.loc["u2", "session_minutes"] == pytest.approx((20 + 0) / 2)
    assert table.loc["u3", "session_minutes"] == pytest.approx((10 + 5 + 0) / 3)
    assert table.loc["u2", "active_days"] == 2
    assert table.loc["u3", "active_days"] == 3
    tenure = 8 + 10 / 1440  # 05-01 09:50 -> 05-09 10:00
    assert table.loc["u3", "tenure_days"] == pytest.approx(tenure)
    # three sessions in eight days: counted over the four weeks a weekly rate needs at least
    assert table.loc["u3", "sessions_per_week"] == pytest.approx(3 / 4)
    # under four weeks of activity counts as four weeks: two sessions are half a session a week
    assert table.loc["u2", "sessions_per_week"] == pytest.approx(2 / 4)


def test_active_weeks_and_sessions_per_active_week(table):
    # weeks run Monday to Sunday: 04-29..05-05 and 05-06..05-12
    # u1: Fri 05-10; u2: Thu 05-02 and Sat 05-04, two sessions; u3: Wed 05-01, Fri 05-03 and
    # Thu 05-09, three sessions; u4: Sun 05-05
    assert table["active_weeks"].to_dict() == {"u1": 1, "u2": 1, "u3": 2, "u4": 1}
    assert table["sessions_per_active_week"].to_dict() == pytest.approx(
        {"u1": 1.0, "u2": 2.0, "u3": 1.5, "u4": 1.0}
    )


def test_active_weeks_at_week_and_year_boundaries(tmp_path):
    rows = [
        ("a", "2024-05-05 23:50:00", "page_view"),  # Sunday ...
        ("a", "2024-05-06 00:10:00", "page_view"),  # ... then Monday: one session, 2 weeks
        ("b", "2024-12-30 10:00:00", "page_view"),  # Monday ...
        ("b", "2025-01-05 22:00:00", "page_view"),  # ... and the Sunday of the same week
        ("c", "2024-05-01 10:00:00", "page_view"),  # the same day twice, then 13 days on
        ("c", "2024-05-01 18:00:00", "page_view"),
        ("c", "2024-05-14 10:00:00", "page_view"),
    ]
    table, _ = compute_features(_log(tmp_path, rows, columns=("user_id", "timestamp", "event")))
    assert table["active_weeks"].to_dict() == {"a": 2, "b": 1, "c": 2}
    assert table["sessions"].to_dict() == {"a": 1, "b": 2, "c": 3}
    assert table["sessions_per_active_week"].to_dict() == pytest.approx(
        {"a": 0.5, "b": 2.0, "c": 1.5}
    )


def test_weeks_weekends_and_nights_before_1970(tmp_path):
    # counted from the Monday before the first event: no negative division anywhere
    rows = [
        ("a", "1969-12-28 03:00:00", "page_view"),  # Sunday night
        ("a", "1969-12-29 23:00:00", "page_view"),  # Monday evening, a new week
        ("a", "1970-01-04 05:59:59", "page_view"),
    ]  # Sunday, the same week, at night
    table, _ = compute_features(_log(tmp_path, rows, columns=("user_id", "timestamp", "event")))
    assert table.loc["a", "active_weeks"] == 2
    assert table.loc["a", "active_days"] == 3
    assert table.loc["a", "weekend_share"] == pytest.approx(2 / 3)
    assert table.loc["a", "night_share"] == pytest.approx(2 / 3)


def test_email_counts_and_rates(tmp_path):
    rows = [
        ("a", "2024-05-01 08:00:00", "email_sent"),
        ("a", "2024-05-02 08:00:00", "email_sent"),
        ("a", "2024-05-03 08:00:00", "email_sent"),
        ("a", "2024-05-03 09:00:00", "Email Opened"),
        ("a", "2024-05-03 09:01:00", "email_click"),
        ("a", "2024-05-03 09:02:00", "email_click"),
        ("b", "2024-05-01 08:00:00", "email_delivered"),
        ("c", "2024-05-01 08:00:00", "page_view"),
    ]
    log = _log(tmp_path, rows, columns=("user_id", "timestamp", "event"))
    assert log.role_map["email_sent"] == log.role_map["email_delivered"] == "email_send"
    table, skipped = compute_features(log)
    assert not {"email_opens", "email_open_rate", "email_clicks", "email_click_rate"} & set(skipped)
    assert table["email_opens"].to_dict() == {"a": 1, "b": 0, "c": 0}
    assert table["email_clicks"].to_dict() == {"a": 2, "b": 0, "c": 0}
    p_open = 1 / 4  # one open per four e-mails sent
    assert table["email_open_rate"].to_dict() == pytest.approx(
        {"a": (1 + W * p_open) / (3 + W), "b": (0 + W * p_open) / (1 + W), "c": p_open}
    )
    p_click = 2 / 1  # two clicks per open
    assert table.loc["a", "email_click_rate"] == pytest.approx((2 + W * p_click) / (1 + W))


def test_regularity_needs_three_sessions(table):
    # idle time between u3's three sessions: from the end of one to the start of the next
    gaps = [2 - 5 / 1440, 6]
    assert table.loc["u3", "regularity"] == pytest.approx(
        statistics.stdev(gaps) / statistics.mean(gaps)
    )
    assert math.isnan(table.loc["u2", "regularity"])  # two sessions: one gap


def test_abandoned_carts(table):
    # u2's first session has carts and no purchase; u3's cart was bought in the same session
    assert table["abandoned_carts"].to_dict() == {"u1": 0, "u2": 1, "u3": 0, "u4": 0}


def test_view_to_cart_is_smoothed(table):
    p = 3 / 6  # population: three carts per six views
    expected = {"u1": (0, 1), "u2": (2, 3), "u3": (1, 2), "u4": (0, 0)}
    for user, (carts, views) in expected.items():
        assert table.loc[user, "view_to_cart"] == pytest.approx((carts + W * p) / (views + W)), user
    assert table.loc["u2", "view_to_cart"] == pytest.approx(0.5625)


def test_cart_to_purchase_is_smoothed(table):
    p = 4 / 3  # population: four purchases per three carts
    assert table.loc["u3", "cart_to_purchase"] == pytest.approx((3 + W * p) / (1 + W))
    assert table.loc["u2", "cart_to_purchase"] == pytest.approx((0 + W * p) / (2 + W))


def test_recency_is_relative_to_the_last_event_in_the_data(table):
    assert table.loc["u1", "days_since_seen"] == 0
    assert table.loc["u2", "days_since_seen"] == pytest.approx(6 + 9 / 24)
    assert table.loc["u3", "days_since_seen"] == pytest.approx(_days("2024-05-09 10:00:00"))
    assert table.loc["u4", "days_since_seen"] == pytest.approx(4 + 21 / 24)
    assert table.loc["u2", "days_since_first_seen"] == pytest.approx(8 + 3 / 24)
    assert table.loc["u3", "days_since_first_seen"] == pytest.approx(9 + 130 / 1440)
    assert table.loc["u4", "days_since_first_seen"] == pytest.approx(4 + 21 / 24)


def test_reference_date_moves_every_days_since_feature_and_nothing_else(tmp_path, table):
    # the data ends 05-10 12:00; reference 05-12 (its midnight) is 1.5 days later
    moved, _ = compute_features(_log(tmp_path, ROWS, reference_date="2024-05-12"))
    # by hand, from the table in the module docstring to 2024-05-12 00:00
    assert moved.loc["u1", "days_since_seen"] == pytest.approx(1.5)
    assert moved.loc["u2", "days_since_seen"] == pytest.approx(7 + 21 / 24)  # from 05-04 03:00
    assert moved.loc["u3", "days_since_purchase"] == pytest.approx(2 + 14 / 24)  # from 05-09 10:00
    assert moved.loc["u4", "days_since_purchase"] == pytest.approx(6 + 9 / 24)  # from 05-05 15:00
    assert moved.loc["u3", "days_since_first_seen"] == pytest.approx(10 + 14 / 24 + 10 / 1440)
    recency = ["days_since_purchase", "days_since_seen", "days_since_first_seen"]
    shift = (moved[recency] - table[recency]).to_numpy().ravel()
    shift = shift[~np.isnan(shift)]  # u1 and u2 never bought: no days_since_purchase
    assert shift == pytest.approx(np.full(10, 1.5))
    others = [c for c in table.columns if c not in recency]
    pd.testing.assert_frame_equal(moved[others], table[others])  # recent_share, tenure, ...


def test_reference_date_with_a_zone(tmp_path):
    # 02:00 at UTC+2 is 05-11 00:00 UTC: u1's last event (05-10 12:00) is half a day before
    moved, _ = compute_features(_log(tmp_path, ROWS, reference_date="2024-05-11T02:00:00+02:00"))
    assert moved.loc["u1", "days_since_seen"] == pytest.approx(0.5)


# -- timing ----------------------------------------------------------------------------------------
def test_weekend_and_night_shares(table):
    # u2: one of five events on a Saturday at 03:00; u4: Sunday 15:00; u1, u3: weekdays by day
    assert table["weekend_share"].to_dict() == pytest.approx(
        {"u1": 0.0, "u2": 0.2, "u3": 0.0, "u4": 1.0}
    )
    assert table["night_share"].to_dict() == pytest.approx(
        {"u1": 0.0, "u2": 0.2, "u3": 0.0, "u4": 0.0}
    )


def test_night_share_boundaries(tmp_path):
    rows = [
        ("n", f"2024-05-01 {h}", "page_view", None, None)
        for h in ("00:00:00", "05:59:59", "06:00:00", "23:59:00")
    ]
    table, _ = compute_features(_log(tmp_path, rows))
    assert table.loc["n", "night_share"] == pytest.approx(2 / 4)


def test_recent_share(table):
    # the data spans 05-01 09:50 .. 05-10 12:00; its last third starts 05-07 11:16:40
    assert table["recent_share"].to_dict() == pytest.approx(
        {"u1": 1.0, "u2": 0.0, "u3": 1 / 6, "u4": 0.0}
    )


def test_a_user_spanning_the_window_end_counts_only_what_lies_inside(tmp_path):
    rows = [
        ("a", "2024-05-01 10:00:00", "page_view", None, None),
        ("a", "2024-05-05 10:00:00", "purchase", 10.0, None),
        ("a", "2024-05-12 10:00:00", "purchase", 20.0, None),  # after end: dropped
        ("b", "2024-05-08 09:00:00", "page_view", None, None),
    ]
    log = _log(tmp_path, rows, end="2024-05-10")
    assert log.quality["outside_window"] == 1
    table, _ = compute_features(log)
    a = table.loc["a"]
    assert (a["orders"], a["revenue"], a["sessions"], a["active_days"]) == (1, 10, 2, 2)
    assert a["tenure_days"] == pytest.approx(4)
    # "today" is the last event kept, b's view on 05-08 09:00, not a's purchase after the end
    assert a["days_since_seen"] == pytest.approx(2 + 23 / 24)
    assert a["days_since_purchase"] == pytest.approx(2 + 23 / 24)
    assert table.loc["b", "days_since_seen"] == 0
    # the window's last third is measured over the events kept: 05-01 10:00 .. 05-08 09:00
    assert table["recent_share"].to_dict() == pytest.approx({"a": 0.0, "b": 1.0})


def test_same_timestamp_twice(tmp_path):
    rows = [
        ("x", "2024-05-01 10:00:00", "page_view", None, None),
        ("x", "2024-05-01 10:00:00", "add_to_cart", None, None),
        ("x", "2024-05-01 10:00:00", "page_view", None, None),  # exact duplicate: once
        ("y", "2024-05-01 10:00:00", "page_view", None, None),
    ]
    log = _log(tmp_path, rows)
    assert log.quality["duplicate"] == 1
    table, _ = compute_features(log)
    x = table.loc["x"]
    assert x["sessions"] == 1
    assert x["events_per_session"] == 2
    assert x["session_minutes"] == 0
    assert x["tenure_days"] == 0
    assert x["abandoned_carts"] == 1
    assert (x["role_view"], x["role_cart"]) == (1, 1)
    assert table.loc["y", "days_since_seen"] == 0
    assert table.loc["y", "recent_share"] == 1.0  # a window of zero length: all of it is recent


def test_cart_sharing_its_time_with_a_session_start_belongs_to_that_session(tmp_path):
    # "product_added" (cart) sorts after "page_view", so the view starts the 10:00 session and the
    # cart only shares its time: it must count in the new session, not in the 08:00 one that
    # ended in a purchase
    rows = [
        ("x", "2024-05-01 08:00:00", "add_to_cart", None, None),
        ("x", "2024-05-01 08:05:00", "purchase", 10.0, None),
        ("x", "2024-05-01 10:00:00", "page_view", None, None),
        ("x", "2024-05-01 10:00:00", "product_added", None, None),
    ]
    table, _ = compute_features(_log(tmp_path, rows))
    assert table.loc["x", "sessions"] == 2
    assert table.loc["x", "abandoned_carts"] == 1


def test_abandoned_carts_counts_sessions_with_a_cart_and_no_purchase(tmp_path):
    rows = [
        ("x", "2024-05-01 08:00:00", "purchase", 10.0, None),
        ("x", "2024-05-01 08:05:00", "add_to_cart", None, None),  # after a purchase: kept
        ("x", "2024-05-01 10:00:00", "add_to_cart", None, None),  # abandoned, counted once
        ("x", "2024-05-01 10:01:00", "add_to_cart", None, None),
        ("x", "2024-05-01 12:00:00", "page_view", None, None),  # no cart
        ("x", "2024-05-01 14:00:00", "add_to_cart", None, None),
    ]  # the last session: abandoned
    table, _ = compute_features(_log(tmp_path, rows))
    assert table.loc["x", "sessions"] == 4
    assert table.loc["x", "abandoned_carts"] == 2


def test_abandoned_carts_before_1970(tmp_path):
    # times before the epoch are negative microseconds: the trail counts from the first event
    rows = [
        ("x", "1969-12-31 08:00:00", "add_to_cart", None, None),  # abandoned
        ("x", "1969-12-31 10:00:00", "page_view", None, None),
        ("x", "1969-12-31 10:05:00", "add_to_cart", None, None),
        ("x", "1969-12-31 10:06:00", "purchase", 3.0, None),
        ("x", "1970-01-01 00:00:10", "add_to_cart", None, None),
    ]  # abandoned
    table, _ = compute_features(_log(tmp_path, rows))
    assert table.loc["x", "sessions"] == 3
    assert table.loc["x", "abandoned_carts"] == 2


@pytest.mark.parametrize("n_categories", [3, 70])
def test_distinct_categories_below_and_above_64(tmp_path, n_categories):
    # up to 64 categories are counted as bits, more by a distinct count: same answer
    rows = [
        ("x", f"2024-05-01 10:{i % 60:02d}:00", "page_view", f"c{i:03d}")
        for i in range(n_categories)
    ]
    rows += [
        ("x", "2024-05-02 10:00:00", "page_view", "c000"),  # a category seen again
        ("y", "2024-05-01 10:00:00", "page_view", None),  # no category at all
        ("z", "2024-05-01 10:00:00", "page_view", f"c{n_categories - 1:03d}"),
    ]
    log = _log(tmp_path, rows, columns=("user_id", "timestamp", "event", "category"))
    table, _ = compute_features(log)
    assert table["categories"].to_dict() == {"x": n_categories, "y": 0, "z": 1}


def test_peak_month_share_needs_a_year_and_is_smoothed(tmp_path):
    rows = [("a", f"2024-12-0{d} 10:00:00", "page_view") for d in range(1, 6)]  # December
    rows += [("b", f"2024-{m:02d}-15 10:00:00", "page_view") for m in range(1, 13)]  # every month
    rows += [
        ("c", "2024-06-10 10:00:00", "page_view"),
        ("c", "2024-06-10 18:00:00", "page_view"),
        ("z", "2024-01-01 00:00:00", "page_view"),
        ("z", "2024-12-31 00:00:00", "page_view"),
    ]
    log = _log(tmp_path, rows, columns=("user_id", "timestamp", "event"))
    table, skipped = compute_features(log)
    assert "peak_month_share" not in skipped
    w = PRIOR_WEIGHT
    assert table["peak_month_share"].to_dict() == pytest.approx(
        {
            "a": (5 + w / 12) / (5 + w),  # all five days in one month: seasonal
            "b": (1 + w / 12) / (12 + w),  # one day a month: as even as it gets
            "c": (1 + w / 12) / (1 + w),  # two events, one day
            "z": (1 + w / 12) / (2 + w),
        }
    )
    # under 52 weeks the busiest month says when the export started, not the season
    short = _log(tmp_path, rows[:12], columns=("user_id", "timestamp", "event"))
    table, skipped = compute_features(short)
    assert "peak_month_share" not in table.columns
    assert skipped["peak_month_share"] == (
        "skipped: the data covers less than 52 weeks (2024-01-15 10:00:00 to 2024-12-05 10:00:00)"
    )


@pytest.mark.parametrize(
    ("start", "end", "bits"),
    [
        ("2024-01-01", "2024-12-31", 5),  # every month once: at most 31 days
        ("2024-01-02", "2025-01-15", 6),  # January twice: 30 + 15 days
        ("2022-01-01", "2024-12-31", 7),  # three years: 93 days
        ("1970-01-01", "2024-12-31", 11),
    ],
)  # 55 years: too many for twelve in 128 bits
def test_month_bits_hold_the_most_days_any_calendar_month_can_have(start, end, bits):
    assert activity.month_bits(datetime.fromisoformat(start), datetime.fromisoformat(end)) == bits


@pytest.mark.parametrize("first_year", [2019, 1970])
def test_busiest_month_over_several_years_packed_or_counted(tmp_path, first_year):
    # 2019-2024 packs the twelve monthly day counts into one number; from 1970 they overflow
    # 128 bits and are counted one by one: the same answer either way
    rows = [
        ("a", f"{first_year}-03-10 10:00:00", "page_view"),
        ("a", "2024-03-10 10:00:00", "page_view"),
        ("a", "2024-03-11 09:00:00", "page_view"),
        ("a", "2024-07-01 10:00:00", "page_view"),
        ("a", "2024-07-01 11:00:00", "page_view"),
        ("b", "2024-12-31 10:00:00", "page_view"),
    ]
    table, skipped = compute_features(
        _log(tmp_path, rows, columns=("user_id", "timestamp", "event"))
    )
    w = PRIOR_WEIGHT
    assert table["peak_month_share"].to_dict() == pytest.approx(
        {
            "a": (3 + w / 12) / (4 + w),  # three March days (two years), one July day
            "b": (1 + w / 12) / (1 + w),
        }
    )


def test_distinct_products_and_rows_differing_only_in_product(tmp_path):
    rows = [
        ("x", "2024-05-01 10:00:00", "page_view", "p1"),
        ("x", "2024-05-01 10:00:00", "page_view", "p2"),  # not a duplicate: other product
        ("x", "2024-05-01 10:05:00", "page_view", "p1"),
        ("x", "2024-05-01 10:05:00", "page_view", "p1"),  # exact duplicate: once
        ("y", "2024-05-01 10:00:00", "search", None),
    ]
    log = _log(tmp_path, rows, columns=("user_id", "timestamp", "event", "product"))
    assert log.optional == ["product"]
    assert log.quality["duplicate"] == 1
    table, skipped = compute_features(log)
    assert "products" not in skipped and "categories" in skipped
    assert table["products"].to_dict() == {"x": 2, "y": 0}
    assert table.loc["x", "role_view"] == 3
    assert log.con.execute(
        "SELECT product FROM events WHERE user_id = 'x' ORDER BY ts, product"
    ).fetchall() == [("p1",), ("p2",), ("p1",)]


def test_items_per_order_from_the_quantity_column(tmp_path):
    rows = [
        ("a", "2024-05-01 10:00:00", "purchase", 10.0, 2),
        ("a", "2024-05-02 10:00:00", "purchase", 10.0, 5),
        ("a", "2024-05-03 10:00:00", "purchase", 10.0, None),  # unknown: not averaged
        ("a", "2024-05-03 10:05:00", "add_to_cart", None, 9),  # not a purchase
        ("b", "2024-05-03 10:00:00", "purchase", 5.0, -1),  # a return: missing
        ("c", "2024-05-03 10:00:00", "page_view", None, None),
    ]
    log = _log(tmp_path, rows, columns=("user_id", "timestamp", "event", "amount", "quantity"))
    assert "quantity" in log.optional
    assert log.quality["negative_quantity"] == 1
    table, skipped = compute_features(log)
    assert "items_per_order" not in skipped
    assert table.loc["a", "items_per_order"] == pytest.approx(3.5)
    assert math.isnan(table.loc["b", "items_per_order"])
    assert math.isnan(table.loc["c", "items_per_order"])
    assert table.loc["a", "orders"] == 3
    assert log.con.execute(
        "SELECT quantity FROM events WHERE user_id = 'a' ORDER BY ts"
    ).fetchall() == [(2.0,), (5.0,), (None,), (9.0,)]


def test_rows_differing_only_in_quantity_are_not_duplicates(tmp_path):
    rows = [
        ("a", "2024-05-01 10:00:00", "purchase", 10.0, 1),
        ("a", "2024-05-01 10:00:00", "purchase", 10.0, 3),
        ("a", "2024-05-01 10:00:00", "purchase", 10.0, 1),
    ]  # exact duplicate: once
    log = _log(tmp_path, rows, columns=("user_id", "timestamp", "event", "amount", "quantity"))
    assert log.quality["duplicate"] == 1
    table, _ = compute_features(log)
    assert table.loc["a", "orders"] == 2
    assert table.loc["a", "items_per_order"] == pytest.approx(2)


def test_quantity_text_that_is_no_number_is_refused(tmp_path):
    rows = [
        ("a", "2024-05-01 10:00:00", "purchase", "two"),
        ("a", "2024-05-02 10:00:00", "purchase", "1"),
    ]
    with pytest.raises(
        SchemaError,
        match=r"1 values in quantity column 'quantity' are not "
        r"numbers \(e\.g\. 'two'\); give the number of items",
    ):
        _log(tmp_path, rows, columns=("user_id", "timestamp", "event", "quantity"))


# -- the event mix -------------------------------------------------------------------------------
@pytest.mark.parametrize("n_other", [0, 70])
def test_top_unknown_events_get_count_columns_and_their_own_place_in_the_mix(tmp_path, n_other):
    # seven unknown events, used 7, 6, ... 1 times; n_other more names push the log past the
    # 64 names that get a count column each (then the counts come from a MAP)
    unknown = {f"custom_{chr(ord('a') + i)}": 7 - i for i in range(7)}
    rows = [
        ("u", f"2024-05-01 10:{j:02d}:{i:02d}", name)
        for i, (name, n) in enumerate(unknown.items())
        for j in range(n)
    ]
    rows += [
        ("u", "2024-05-02 10:00:00", "page_view"),
        ("v", "2024-05-02 10:00:00", "page_view"),
        ("v", "2024-05-02 10:01:00", "custom_a"),
    ]
    rows += [("w", "2024-05-03 09:00:00", "page_view")]
    rows += [
        ("w", f"2024-05-03 10:{i // 60:02d}:{i % 60:02d}", f"rare_{i:03d}") for i in range(n_other)
    ]
    table, _ = compute_features(_log(tmp_path, rows, columns=("user_id", "timestamp", "event")))
    top = [f"event:custom_{c}" for c in "abcde"]
    assert TOP_UNKNOWN_EVENTS == 5
    assert [c for c in table.columns if c.startswith("event:")] == top
    assert table.loc["u", top].tolist() == [7, 6, 5, 4, 3]
    assert table.loc["v", top].tolist() == [1, 0, 0, 0, 0]
    assert table.loc["u", "role_other"] == sum(unknown.values())
    mix = event_mix_counts(table)
    assert list(mix.columns) == ["other", "view", *top]
    assert mix.loc["u"].tolist() == [2 + 1, 1, 7, 6, 5, 4, 3]  # other: custom_f, custom_g
    assert mix.loc["v"].tolist() == [0, 1, 1, 0, 0, 0, 0]
    assert mix.loc["w", "other"] == n_other


# -- order tables ----------------------------------------------------------------------------------
def test_order_table_skips_funnel_and_email_features(tmp_path):
    rows = [
        ("a", "2024-05-01", 10.0),
        ("a", "2024-05-04", 20.0),
        ("a", "2024-05-10", 30.0),
        ("b", "2024-05-05", 5.0),
    ]
    log = _log(tmp_path, rows, columns=("user_id", "timestamp", "amount"))
    assert log.has_event_column is False
    kept, skipped = available_features(log)
    table, skipped_again = compute_features(log)
    assert skipped_again == skipped
    assert skipped["views_per_session"] == "skipped: the data has no view events"
    assert skipped["view_to_cart"] == "skipped: the data has no view events, cart events"
    assert skipped["cart_to_purchase"] == "skipped: the data has no cart events"
    assert skipped["abandoned_carts"] == "skipped: the data has no cart events"
    assert skipped["email_opens"] == "skipped: the data has no email_open events"
    assert skipped["discount_share"] == "skipped: the data has no discount column"
    assert skipped["search_share"] == "skipped: the data has no search events"
    kept_names = [f.name for f in kept]
    assert list(table.columns) == kept_names + ["role_purchase"]
    assert {
        "orders",
        "revenue",
        "avg_order_value",
        "days_since_purchase",
        "days_between_orders",
        "active_days",
    } <= set(kept_names)
    # no visits in an order table: nothing per session, not even its "sessions"
    per_session = [
        "sessions",
        "events_per_session",
        "session_minutes",
        "sessions_per_week",
        "sessions_per_active_week",
        "regularity",
    ]
    assert not set(per_session) & set(kept_names)
    assert {skipped[f] for f in per_session} == {
        "skipped: an order table (no event column) has no visits to make sessions of"
    }
    assert table.loc["a", "orders"] == 3
    assert table.loc["a", "avg_order_value"] == pytest.approx(20)
    assert table.loc["a", "days_between_orders"] == pytest.approx((3 + 6) / 2)
    assert table.loc["b", "days_since_purchase"] == pytest.approx(5)
    assert table["role_purchase"].to_dict() == {"a": 3, "b": 1}


def test_order_table_without_amount_skips_order_value(tmp_path):
    log = _log(
        tmp_path, [("a", "2024-05-01"), ("b", "2024-05-02")], columns=("user_id", "timestamp")
    )
    kept, skipped = available_features(log)
    assert skipped["avg_order_value"] == "skipped: the data has no amount column"
    assert skipped["revenue"] == "skipped: the data has no amount column"  # unknown, not 0
    assert "orders" in [f.name for f in kept]


# -- the model matrix --------------------------------------------------------------------------
def test_purchase_and_abandon_rates_are_per_session_and_smoothed(table):
    # sessions 1, 2, 3, 1 (7); orders 0, 0, 3, 1 (4); abandoned carts 0, 1, 0, 0 (1)
    p_order, p_abandon = 4 / 7, 1 / 7
    assert table["purchase_rate"].tolist() == pytest.approx(
        [(0 + 5 * p_order) / 6, (0 + 5 * p_order) / 7, (3 + 5 * p_order) / 8, (1 + 5 * p_order) / 6]
    )
    assert table.loc["u2", "abandon_rate"] == pytest.approx((1 + 5 * p_abandon) / 7)
    assert table.loc["u3", "abandon_rate"] == pytest.approx((0 + 5 * p_abandon) / 8)


def test_model_matrix(table):
    matrix, columns = model_matrix(table)
    assert columns == [
        "purchase_rate",
        "avg_order_value",
        "discount_share",
        "events_per_session",
        "views_per_session",
        "sessions_per_week",
        "days_since_seen",
        "view_to_cart",
        "cart_to_purchase",
        "abandon_rate",
        "weekend_share",
        "days_since_first_seen",
    ]
    # orders stands in for purchase_rate only where sessions are missing (order tables)
    assert "orders" not in columns
    assert model_matrix(table.drop(columns="purchase_rate"))[1][0] == "orders"
    assert matrix.shape == (4, len(columns))
    assert not np.isnan(matrix).any()
    got = pd.DataFrame(matrix, columns=columns, index=table.index)
    # log1p features
    assert got["sessions_per_week"].tolist() == pytest.approx(
        np.log1p(table["sessions_per_week"]).tolist()
    )
    # order value rests on orders: pulled toward the median by two pseudo-orders; non-buyers at it
    centre = (np.log1p(30) + np.log1p(50)) / 2
    assert got["avg_order_value"].tolist() == pytest.approx(
        [centre, centre, (3 * np.log1p(30) + 2 * centre) / 5, (np.log1p(50) + 2 * centre) / 3]
    )
    # untransformed features pass through
    assert got["days_since_seen"].tolist() == pytest.approx(table["days_since_seen"].tolist())
    assert got["view_to_cart"].tolist() == pytest.approx(table["view_to_cart"].tolist())
    assert "role_view" not in columns and "revenue" not in columns
    assert "sessions" not in columns  # in the catalogue, but not a model feature


def test_model_matrix_fills_with_median_and_clips_before_log():
    features = pd.DataFrame(
        {
            "view_to_cart": [0.2, np.nan, 0.4, 0.9],
            "days_since_seen": [np.nan] * 4,
            "orders": [-1.0, 0.0, 1.0, np.nan],
            "revenue": [np.nan] * 4,  # not a model feature
            "role_view": [1.0, 2.0, 3.0, 4.0],
        }
    )
    matrix, columns = model_matrix(features)
    assert columns == ["view_to_cart", "days_since_seen", "orders"]
    assert matrix[:, 0].tolist() == pytest.approx([0.2, 0.4, 0.4, 0.9])  # median of the rest
    assert matrix[:, 1].tolist() == [0.0] * 4  # nothing to take
    assert matrix[:, 2].tolist() == pytest.approx([0.0, 0.0, math.log(2), 0.0])
    assert features["view_to_cart"].isna().sum() == 1  # input untouched


def test_custom_roles_from_roles_path_get_count_columns(tmp_path):
    roles = tmp_path / "roles.yaml"
    roles.write_text('"won\'t buy": [hesitate]\nquiz: [Quiz Done]\n', encoding="utf-8")
    rows = [
        ("a", "2024-05-01 10:00:00", "hesitate", None, None),
        ("a", "2024-05-01 10:01:00", "quizDone", None, None),
        ("a", "2024-05-01 10:02:00", "hesitate", None, None),
        ("b", "2024-05-01 11:00:00", "page_view", None, None),
    ]
    log = _log(tmp_path, rows, roles_path=str(roles))
    table, _ = compute_features(log)
    assert table[["role_quiz", "role_view", "role_won't buy"]].to_dict("index") == {
        "a": {"role_quiz": 1, "role_view": 0, "role_won't buy": 2},
        "b": {"role_quiz": 0, "role_view": 1, "role_won't buy": 0},
    }


@pytest.mark.parametrize("users", [0, 5, 7, 20])
def test_write_table_writes_what_to_parquet_writes_a_slice_at_a_time(tmp_path, monkeypatch, users):
    import pyarrow.parquet as pq

    from personas import features as module

    monkeypatch.setattr(module, "PARQUET_ROWS", 7)  # slices of 7 users: 0, 1 or 3 row groups
    ids = pd.Index([f"u{i}" for i in range(users)], dtype="str", name="user_id")
    table = pd.DataFrame(
        np.random.default_rng(0).random((users, 3)), index=ids, columns=["orders", "x", "role_view"]
    )
    table.iloc[:2, 1] = np.nan
    table.to_parquet(tmp_path / "whole.parquet")
    module.write_table(table, tmp_path / "sliced.parquet")
    back = pd.read_parquet(tmp_path / "sliced.parquet")
    pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "whole.parquet"))
    pd.testing.assert_frame_equal(back, table)
    schemas = [pq.read_schema(tmp_path / f"{name}.parquet") for name in ("whole", "sliced")]
    assert schemas[0].equals(schemas[1], check_metadata=True)
    assert pq.ParquetFile(tmp_path / "sliced.parquet").metadata.num_row_groups == max(
        -(-users // 7), 1
    )


def test_read_features_reads_what_pd_read_parquet_reads(tmp_path, monkeypatch):
    from personas import features as module

    monkeypatch.setattr(module, "PARQUET_ROWS", 4)  # three row groups, filled one at a time
    ids = pd.Index(
        ["007", "b", "ä", "c", "d", "e", "f", "g", "h", "i"], dtype="str", name="user_id"
    )
    table = pd.DataFrame(
        np.random.default_rng(1).random((10, 3)), index=ids, columns=["orders", "y", "role_cart"]
    )
    table.iloc[3, 1] = np.nan
    module.write_table(table, tmp_path / "features.parquet")
    read = module.read_features(tmp_path / "features.parquet")
    pd.testing.assert_frame_equal(read, pd.read_parquet(tmp_path / "features.parquet"))
    pd.testing.assert_frame_equal(read, table)
    # a column that is not a float (a table written by other means): pandas' own reading
    table.assign(note="x").to_parquet(tmp_path / "mixed.parquet")
    pd.testing.assert_frame_equal(
        module.read_features(tmp_path / "mixed.parquet"), table.assign(note="x")
    )
