"""Tests of personas.load.load_events: formats, time parsing, roles, sessions, cleaning, errors.

Every log is a tiny hand-made table written to tmp_path; nothing here fits a model.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personas.errors import InputError, ParameterError, SchemaError
from personas.load import (
    EventLog,
    load_events,
    load_role_vocabulary,
    normalise_event_name,
    suggest_column,
)
from personas.params import PersonaParams

BASE = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u2"],
        "timestamp": ["2024-05-01 10:00:00", "2024-05-01 10:05:00", "2024-05-02 08:00:00"],
        "event": ["page_view", "purchase", "page_view"],
        "amount": [None, 12.5, None],
    }
)


def _csv(tmp_path, frame: pd.DataFrame, name: str = "events.csv", **kw) -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False, **kw)
    return str(path)


def _write(tmp_path, text: str | bytes, name: str = "events.csv") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def _load(path: str, **params) -> EventLog:
    return load_events(PersonaParams(events_path=path, **params))


def _rows(log: EventLog, columns: str = "user_id, ts, event, role, amount, session_no"):
    return log.con.execute(f"SELECT {columns} FROM events ORDER BY user_id, ts, event").fetchall()


def _times(log: EventLog) -> list[dt.datetime]:
    return [r[0] for r in log.con.execute("SELECT ts FROM events ORDER BY user_id, ts").fetchall()]


# -- file formats ------------------------------------------------------------------------------
def _check_base(log: EventLog) -> None:
    assert log.counts["events"] == 3
    assert log.counts["users"] == 2
    assert log.counts["rows_read"] == 3
    assert log.counts["start"] == "2024-05-01 10:00:00"
    assert log.counts["end"] == "2024-05-02 08:00:00"
    assert log.has_event_column is True
    assert log.role_map == {"page_view": "view", "purchase": "purchase"}
    assert log.event_counts == {"page_view": 2, "purchase": 1}
    assert _rows(log) == [
        ("u1", dt.datetime(2024, 5, 1, 10, 0), "page_view", "view", None, 1),
        ("u1", dt.datetime(2024, 5, 1, 10, 5), "purchase", "purchase", 12.5, 1),
        ("u2", dt.datetime(2024, 5, 2, 8, 0), "page_view", "view", None, 1),
    ]


def test_csv(tmp_path):
    path = _csv(tmp_path, BASE)
    log = _load(path)
    _check_base(log)
    assert log.source == path
    assert log.columns == ["user_id", "timestamp", "event", "amount"]
    assert log.optional == ["amount"]


def test_csv_gz(tmp_path):
    path = _csv(tmp_path, BASE, "events.csv.gz", compression="gzip")
    _check_base(_load(path))


def test_parquet_file(tmp_path):
    path = tmp_path / "events.parquet"
    BASE.assign(timestamp=pd.to_datetime(BASE["timestamp"])).to_parquet(path, index=False)
    log = _load(str(path))
    _check_base(log)
    assert log.time_format == "datetime"


def test_parquet_with_zone_aware_timestamps(tmp_path):
    path = tmp_path / "events.parquet"
    zoned = pd.to_datetime(BASE["timestamp"]).dt.tz_localize("Europe/Berlin")  # UTC+2 in May
    BASE.assign(timestamp=zoned).to_parquet(path, index=False)
    log = _load(str(path))
    assert log.time_format == "datetime with zone"
    assert _times(log) == [
        dt.datetime(2024, 5, 1, 8, 0),
        dt.datetime(2024, 5, 1, 8, 5),
        dt.datetime(2024, 5, 2, 6, 0),
    ]


def test_folder_of_parquet(tmp_path):
    folder = tmp_path / "parts"
    (folder / "day=2").mkdir(parents=True)
    frame = BASE.assign(timestamp=pd.to_datetime(BASE["timestamp"]))
    frame.iloc[:2].to_parquet(folder / "a.parquet", index=False)
    frame.iloc[2:].to_parquet(folder / "day=2" / "b.parquet", index=False)
    (folder / "notes.txt").write_text("not data")
    _check_base(_load(str(folder)))


def test_glob_of_parquet(tmp_path):
    frame = BASE.assign(timestamp=pd.to_datetime(BASE["timestamp"]))
    frame.iloc[:1].to_parquet(tmp_path / "part-1.parquet", index=False)
    frame.iloc[1:].to_parquet(tmp_path / "part-2.parquet", index=False)
    frame.to_parquet(tmp_path / "other.parquet", index=False)  # not matched by the glob
    log = _load(str(tmp_path / "part-*.parquet"))
    _check_base(log)


# -- time formats ------------------------------------------------------------------------------
def _times_of(tmp_path, values, name="t.csv") -> EventLog:
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(len(values))], "timestamp": values})
    return _load(_csv(tmp_path, frame, name))


def test_iso_without_zone(tmp_path):
    log = _times_of(tmp_path, ["2024-05-01T12:00:00", "2024-05-02T13:30:15"])
    assert log.time_format == "ISO text"
    assert _times(log) == [dt.datetime(2024, 5, 1, 12), dt.datetime(2024, 5, 2, 13, 30, 15)]


def test_iso_with_zone_is_converted_to_utc(tmp_path):
    log = _times_of(tmp_path, ["2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00-05:00"])
    assert log.time_format == "ISO text with zone"
    assert _times(log) == [dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 1, 17)]


def test_iso_mixed_zone_and_no_zone(tmp_path):
    log = _times_of(
        tmp_path, ["2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00", "2024-05-01T12:00:00Z"]
    )
    assert _times(log) == [
        dt.datetime(2024, 5, 1, 10),
        dt.datetime(2024, 5, 1, 12),
        dt.datetime(2024, 5, 1, 12),
    ]


def test_zone_less_times_are_utc_whatever_the_session_zone(tmp_path):
    # DuckDB's default zone is the machine's: times without a zone must not depend on it
    path = _csv(
        tmp_path,
        pd.DataFrame(
            {
                "user_id": ["a", "b"],
                "timestamp": ["2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00"],
            }
        ),
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    log = load_events(PersonaParams(events_path=path), con=con)
    assert _times(log) == [dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 1, 12)]


def test_text_times_with_zone_in_a_text_column(tmp_path):
    # a garbage-free text column that the reader leaves as VARCHAR (a trailing space)
    log = _times_of(tmp_path, ["2024-05-01 12:00:00+02:00 ", "2024-05-01 09:00:00 "])
    assert _times(log) == [dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 1, 9)]


def test_dates_only(tmp_path):
    log = _times_of(tmp_path, ["2024-05-01", "2024-05-03"])
    assert log.time_format == "ISO date"
    assert _times(log) == [dt.datetime(2024, 5, 1), dt.datetime(2024, 5, 3)]


def test_epoch_seconds(tmp_path):
    log = _times_of(tmp_path, [1714557600, 1714564800])
    assert log.time_format == "epoch seconds"
    assert _times(log) == [dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 1, 12)]


def test_epoch_milliseconds(tmp_path):
    log = _times_of(tmp_path, [1714557600000, 1714564800500])
    assert log.time_format == "epoch milliseconds"
    assert _times(log) == [dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 1, 12, 0, 0, 500_000)]


def test_epoch_too_large_is_a_schema_error(tmp_path):
    with pytest.raises(
        SchemaError,
        match=r"1 values in time column 'timestamp' are not "
        r"timestamps \(e\.g\. 1e\+20",
    ):
        _times_of(tmp_path, [1e20, 1714557600])


def test_infinite_times_are_a_schema_error(tmp_path):
    with pytest.raises(
        SchemaError,
        match=r"time column 'timestamp' are not timestamps "
        r"\(e\.g\. '-infinity'\)",
    ):
        _times_of(tmp_path, ["-infinity", "2024-05-01"])


def test_infinite_typed_times_are_a_schema_error(tmp_path):
    # a Parquet TIMESTAMP column can hold infinity too: refused in the cleaning pass, with the
    # file named, before anything is written
    path = tmp_path / "events.parquet"
    duckdb.sql(
        "SELECT * FROM (VALUES ('a', TIMESTAMP '2024-05-01 10:00', 'view'), "
        "('b', TIMESTAMP 'infinity', 'view'), ('c', TIMESTAMP '2024-05-02', 'view')) "
        "t(user_id, timestamp, event)"
    ).write_parquet(str(path))
    with pytest.raises(
        SchemaError,
        match=r"events\.parquet'\: 1 values in time column "
        r"'timestamp' are not timestamps \(e\.g\. 'infinity'\); "
        r"remove them or give real times",
    ):
        load_events(PersonaParams(events_path=str(path)))


# -- order tables and column mapping -----------------------------------------------------------
def test_order_table_without_event_column(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "timestamp": ["2024-05-01", "2024-05-04", "2024-05-02"],
            "amount": [10.0, 20.0, 5.5],
        }
    )
    log = _load(_csv(tmp_path, frame))
    assert log.has_event_column is False
    assert log.role_map == {"purchase": "purchase"}
    assert log.roles == {"purchase"}
    assert log.unknown_events == []
    assert _rows(log, "user_id, event, role, amount") == [
        ("a", "purchase", "purchase", 10.0),
        ("a", "purchase", "purchase", 20.0),
        ("b", "purchase", "purchase", 5.5),
    ]


def test_column_mapping(tmp_path):
    frame = pd.DataFrame(
        {
            "customer": ["c1", "c2"],
            "when": ["2024-05-01 10:00", "2024-05-02 11:00"],
            "action": ["view_item", "purchase"],
            "revenue": [None, 9.99],
            "amount": [100.0, 100.0],
        }
    )  # ignored: amount_col points elsewhere
    log = _load(
        _csv(tmp_path, frame),
        user_col="customer",
        time_col="when",
        event_col="action",
        amount_col="revenue",
    )
    assert log.optional == ["amount"]
    assert _rows(log, "user_id, ts, event, role, amount") == [
        ("c1", dt.datetime(2024, 5, 1, 10), "view_item", "view", None),
        ("c2", dt.datetime(2024, 5, 2, 11), "purchase", "purchase", 9.99),
    ]


def test_mapped_event_column_must_exist(tmp_path):
    with pytest.raises(
        SchemaError,
        match=r"has no 'action' column \(found: user_id, "
        r"timestamp, event, amount\); set event_col=",
    ):
        _load(_csv(tmp_path, BASE), event_col="action")


def test_mapped_amount_column_must_exist(tmp_path):
    with pytest.raises(
        SchemaError,
        match=r"has no 'price' column \(found: user_id, "
        r"timestamp, event, amount\); set amount_col",
    ):
        _load(_csv(tmp_path, BASE), amount_col="price")


def test_optional_columns(tmp_path):
    frame = BASE.assign(
        discount=["", "true", ""],
        platform=["app", "web", "ios"],
        category=["shoes", "shoes", "hats"],
    )
    log = _load(_csv(tmp_path, frame))
    assert log.optional == ["discount", "platform", "category", "amount"]
    assert _rows(log, "user_id, discount, platform, category") == [
        ("u1", None, "app", "shoes"),
        ("u1", True, "web", "shoes"),
        ("u2", None, "ios", "hats"),
    ]


# -- event roles -------------------------------------------------------------------------------
def _roles_of(tmp_path, names, **params) -> EventLog:
    frame = pd.DataFrame(
        {
            "user_id": "u",
            "timestamp": [f"2024-05-01 10:{i:02d}:00" for i in range(len(names))],
            "event": names,
        }
    )
    return _load(_csv(tmp_path, frame), **params)


def test_ga4_names(tmp_path):
    names = [
        "page_view",
        "view_item",
        "view_search_results",
        "add_to_cart",
        "remove_from_cart",
        "begin_checkout",
        "add_payment_info",
        "purchase",
        "refund",
        "sign_up",
        "login",
        "first_open",
        "add_to_wishlist",
        "select_item",
    ]
    log = _roles_of(tmp_path, names)
    assert log.role_map == {
        "page_view": "view",
        "view_item": "view",
        "view_search_results": "search",
        "add_to_cart": "cart",
        "remove_from_cart": "cart_remove",
        "begin_checkout": "checkout",
        "add_payment_info": "checkout",
        "purchase": "purchase",
        "refund": "refund",
        "sign_up": "signup",
        "login": "login",
        "first_open": "app_open",
        "add_to_wishlist": "wishlist",
        "select_item": "view",
    }
    assert log.unknown_events == []


def test_segment_names(tmp_path):
    log = _roles_of(
        tmp_path,
        [
            "Product Viewed",
            "Products Searched",
            "Product Added",
            "Checkout Started",
            "Order Completed",
            "Email Opened",
            "Email Link Clicked",
            "Signed Up",
        ],
    )
    assert log.role_map == {
        "Product Viewed": "view",
        "Products Searched": "search",
        "Product Added": "cart",
        "Checkout Started": "checkout",
        "Order Completed": "purchase",
        "Email Opened": "email_open",
        "Email Link Clicked": "email_click",
        "Signed Up": "signup",
    }


def test_camel_case_and_separators_and_case(tmp_path):
    log = _roles_of(
        tmp_path,
        [
            "addToCart",
            "ADD_TO_CART",
            "add-to-cart",
            "Add To Cart",
            "productViewed",
            "PAGE VIEW",
            "order.completed",
        ],
    )
    assert set(log.role_map.values()) == {"cart", "view", "purchase"}
    assert log.role_map["addToCart"] == log.role_map["add-to-cart"] == "cart"
    assert log.role_map["PAGE VIEW"] == "view"
    assert log.role_map["order.completed"] == "purchase"


def test_unknown_events_become_other(tmp_path):
    log = _roles_of(tmp_path, ["page_view", "hover_banner", "zz_custom", "hover_banner"])
    assert log.role_map == {"page_view": "view", "hover_banner": "other", "zz_custom": "other"}
    assert log.unknown_events == ["hover_banner", "zz_custom"]
    assert log.event_counts == {"hover_banner": 2, "page_view": 1, "zz_custom": 1}
    assert log.roles == {"view", "other"}
    assert _rows(log, "event, role")[0] == ("page_view", "view")


def test_missing_event_names_are_kept_as_missing(tmp_path):
    log = _roles_of(tmp_path, ["page_view", None])
    assert log.role_map == {"page_view": "view", "(missing)": "other"}


def test_roles_path_extends_the_vocabulary(tmp_path):
    roles = tmp_path / "roles.yaml"
    roles.write_text("cart: [basket_add, Basket Plus]\nview: [pdp]\npurchase: [page_view]\n")
    log = _roles_of(
        tmp_path,
        ["basketAdd", "basket_plus", "PDP", "add_to_cart", "page_view", "hover"],
        roles_path=str(roles),
    )
    assert log.role_map == {
        "basketAdd": "cart",
        "basket_plus": "cart",
        "PDP": "view",
        "add_to_cart": "cart",
        "page_view": "purchase",
        "hover": "other",
    }


def test_roles_path_errors(tmp_path):
    with pytest.raises(InputError, match=r"roles file '.*nope\.yaml' cannot be read"):
        load_role_vocabulary(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("cart: [a, b\nview: [c]\n")
    with pytest.raises(InputError, match=r"roles file '.*bad\.yaml' is not valid YAML") as info:
        load_role_vocabulary(str(bad))
    assert "\n" not in str(info.value)  # one line: the CLI prints it as one
    flat = tmp_path / "flat.yaml"
    flat.write_text("- a\n- b\n")
    with pytest.raises(InputError, match=r"should map each role to a list of event names"):
        load_role_vocabulary(str(flat))


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Product Viewed", "product_viewed"),
        ("productViewed", "product_viewed"),
        ("product-viewed", "product_viewed"),
        ("addToCart", "add_to_cart"),
        ("ADD_TO_CART", "add_to_cart"),
        ("  Order  Completed ", "order_completed"),
        ("add--to..cart", "add_to_cart"),
        ("view_item", "view_item"),
        ("step2Done", "step2_done"),
        (42, "42"),
    ],
)
def test_normalise_event_name(name, expected):
    assert normalise_event_name(name) == expected


# -- sessions ----------------------------------------------------------------------------------
def _sessions_of(tmp_path, times, **params) -> list[tuple]:
    frame = pd.DataFrame({"user_id": "u", "timestamp": times, "event": "page_view"})
    log = _load(_csv(tmp_path, frame), **params)
    return log.con.execute("SELECT ts, session_no FROM events ORDER BY ts").fetchall()


def test_gap_of_29_minutes_stays_in_the_session(tmp_path):
    got = _sessions_of(tmp_path, ["2024-05-01 10:00:00", "2024-05-01 10:29:00"])
    assert [s for _, s in got] == [1, 1]


def test_gap_of_31_minutes_starts_a_new_session(tmp_path):
    got = _sessions_of(tmp_path, ["2024-05-01 10:00:00", "2024-05-01 10:31:00"])
    assert [s for _, s in got] == [1, 2]


def test_session_chain_and_custom_gap(tmp_path):
    times = [
        "2024-05-01 10:00:00",
        "2024-05-01 10:20:00",
        "2024-05-01 10:40:00",
        "2024-05-01 11:30:00",
        "2024-05-01 11:36:00",
    ]
    assert [s for _, s in _sessions_of(tmp_path, times)] == [1, 1, 1, 2, 2]
    assert [s for _, s in _sessions_of(tmp_path, times, session_gap_minutes=5)] == [1, 2, 3, 4, 5]


def test_sessions_are_numbered_per_user(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["a", "b", "a", "b"],
            "timestamp": [
                "2024-05-01 10:00",
                "2024-05-01 10:00",
                "2024-05-01 12:00",
                "2024-05-01 10:10",
            ],
            "event": "page_view",
        }
    )
    log = _load(_csv(tmp_path, frame))
    assert log.con.execute(
        "SELECT user_id, session_no FROM events ORDER BY user_id, ts"
    ).fetchall() == [("a", 1), ("a", 2), ("b", 1), ("b", 1)]


def test_session_col_is_used_when_given(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": "u",
            "timestamp": [
                "2024-05-01 10:00",
                "2024-05-01 13:00",
                "2024-05-01 13:01",
                "2024-05-01 13:02",
            ],
            "event": "page_view",
            "sid": ["s1", "s1", "s2", "s3"],
        }
    )
    log = _load(_csv(tmp_path, frame), session_col="sid")
    sessions = [
        s for (s,) in log.con.execute("SELECT session_no FROM events ORDER BY ts").fetchall()
    ]
    # three hours apart yet one session; one minute apart yet two
    assert sessions[0] == sessions[1]
    assert len({sessions[1], sessions[2], sessions[3]}) == 3
    assert sorted(set(sessions)) == [1, 2, 3]


def test_session_col_must_exist(tmp_path):
    with pytest.raises(SchemaError, match=r"has no 'visit' column .*set session_col"):
        _load(_csv(tmp_path, BASE), session_col="visit")


def test_session_col_is_numbered_in_time_order_not_text_order(tmp_path):
    # as text 's10' < 's2' < 's9'; in time s9 comes first, then s10, then s2
    frame = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "u", "v", "v"],
            "timestamp": [
                "2024-05-01 10:00",
                "2024-05-01 10:05",
                "2024-05-01 12:00",
                "2024-05-01 15:00",
                "2024-05-02 09:00",
                "2024-05-01 09:00",
            ],
            "event": "page_view",
            "sid": ["s9", "s9", "s10", "s2", "a", "b"],
        }
    )
    log = _load(_csv(tmp_path, frame), session_col="sid")
    assert log.con.execute(
        "SELECT user_id, strftime(ts, '%d %H:%M'), session_no FROM events ORDER BY user_id, ts"
    ).fetchall() == [
        ("u", "01 10:00", 1),
        ("u", "01 10:05", 1),
        ("u", "01 12:00", 2),
        ("u", "01 15:00", 3),
        ("v", "01 09:00", 1),
        ("v", "02 09:00", 2),
    ]


# -- date window and reference date --------------------------------------------------------------
WINDOW = pd.DataFrame(
    {
        "user_id": ["a", "a", "a", "b", "b", "c"],
        "timestamp": [
            "2024-04-30 23:59:59",
            "2024-05-01 00:00:00",
            "2024-05-31 23:59:59",
            "2024-05-15 12:00:00",
            "2024-06-01 00:00:00",
            "2024-07-01 08:00:00",
        ],
        "event": "page_view",
    }
)


def test_window_of_dates_keeps_the_whole_end_day_and_counts_the_rest(tmp_path):
    log = _load(_csv(tmp_path, WINDOW), start="2024-05-01", end="2024-05-31")
    assert _times(log) == [
        dt.datetime(2024, 5, 1),
        dt.datetime(2024, 5, 31, 23, 59, 59),
        dt.datetime(2024, 5, 15, 12),
    ]
    # one row a second before start, one at the midnight after end, one in July
    assert log.quality["outside_window"] == 3
    assert sum(log.quality.values()) == 3
    assert log.counts == {
        "rows_read": 6,
        "events": 3,
        "users": 2,
        "start": "2024-05-01 00:00:00",
        "end": "2024-05-31 23:59:59",
    }
    assert log.window == {"start": "2024-05-01 00:00:00", "end": "2024-05-31 23:59:59.999999"}


def test_window_of_times_is_exact_to_the_second(tmp_path):
    log = _load(_csv(tmp_path, WINDOW), start="2024-04-30T23:59:59", end="2024-05-31 23:59:58")
    assert _times(log) == [
        dt.datetime(2024, 4, 30, 23, 59, 59),
        dt.datetime(2024, 5, 1),
        dt.datetime(2024, 5, 15, 12),
    ]
    assert log.quality["outside_window"] == 3
    assert log.window == {"start": "2024-04-30 23:59:59", "end": "2024-05-31 23:59:58"}


def test_window_bounds_with_a_zone_are_converted_to_utc(tmp_path):
    # 02:00 at UTC+2 is midnight UTC: the 2024-05-01 00:00 row is the first one kept
    log = _load(_csv(tmp_path, WINDOW), start="2024-05-01T02:00:00+02:00")
    assert _times(log)[0] == dt.datetime(2024, 5, 1)
    assert log.quality["outside_window"] == 1
    assert log.window == {"start": "2024-05-01 00:00:00", "end": None}


def test_window_on_epoch_times(tmp_path):
    frame = pd.DataFrame(
        {"user_id": ["a", "b", "c"], "timestamp": [1714557600, 1714644000, 1714730400]}
    )  # May 1, 2, 3 10:00
    log = _load(_csv(tmp_path, frame), end="2024-05-02")
    assert _times(log) == [dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 2, 10)]
    assert log.quality["outside_window"] == 1


def test_only_future_and_window_rules_apply_to_rows_with_times(tmp_path):
    # a row without a time is a null_time, never also outside the window
    path = _write(tmp_path, "user_id,timestamp\na,\nb,2024-05-02\nc,2024-06-02\n")
    log = _load(path, end="2024-05-31")
    assert log.quality["null_time"] == 1
    assert log.quality["outside_window"] == 1
    assert log.counts["events"] == 1


def test_window_that_leaves_no_rows_names_the_bounds_and_the_data_span(tmp_path):
    path = _csv(tmp_path, WINDOW)
    with pytest.raises(
        InputError,
        match=r"events file '.*events\.csv' has no events inside the "
        r"window start='2023-01-01' and end='2023-12-31'; its "
        r"usable events run from 2024-04-30 23:59:59 to "
        r"2024-07-01 08:00:00, so move start/end",
    ) as info:
        _load(path, start="2023-01-01", end="2023-12-31")
    assert info.value.path == path
    with pytest.raises(InputError, match=r"inside the window start='2025-01-01'; its usable"):
        _load(path, start="2025-01-01")


def test_reference_defaults_to_the_last_event_kept(tmp_path):
    log = _load(_csv(tmp_path, WINDOW), end="2024-06-15")
    assert log.reference == dt.datetime(2024, 6, 1)  # the July row is outside the window
    assert log.reference_from == "last event used"


def test_reference_date_given(tmp_path):
    log = _load(_csv(tmp_path, WINDOW), reference_date="2024-07-02")
    assert log.reference == dt.datetime(2024, 7, 2)
    assert log.reference_from == "reference_date"


def test_reference_date_before_the_last_event_is_a_parameter_error(tmp_path):
    path = _csv(tmp_path, WINDOW)
    # a date alone is its midnight, 8 hours before the last event
    with pytest.raises(
        ParameterError,
        match=r"parameter reference_date='2024-07-01' is before "
        r"the last event used \(2024-07-01 08:00:00\); set "
        r"it to that time or later",
    ) as info:
        _load(path, reference_date="2024-07-01")
    assert info.value.name == "reference_date"
    # once the window ends earlier, the same date is valid
    assert _load(path, reference_date="2024-07-01", end="2024-06-30").reference == dt.datetime(
        2024, 7, 1
    )


def test_window_and_reference_reach_run_json(tmp_path):
    from personas.pipeline import _run_info, features_step, stage_dir

    frame = pd.DataFrame(
        {
            "user_id": [f"u{i:02d}" for i in range(60)] * 2,
            "timestamp": ["2024-05-01 10:00"] * 60 + ["2024-06-01 10:00"] * 60,
            "event": "page_view",
        }
    )
    params = PersonaParams(
        events_path=_csv(tmp_path, frame),
        output_dir=str(tmp_path / "run"),
        end="2024-05-31",
        reference_date="2024-06-01",
    )
    features = features_step(params)
    # the June rows are outside the window; May 1 10:00 to June 1 00:00 is 30 days 14 hours
    assert features["days_since_seen"].tolist() == pytest.approx([30 + 14 / 24] * 60)
    state = json.loads((stage_dir(params) / "state.json").read_text())
    info = _run_info(params, {**state, "model": {}}, (), None, [])["input"]
    assert info["time_format"] == "ISO text"
    assert info["window"] == {"start": "2024-05-01 10:00:00", "end": "2024-05-01 10:00:00"}
    assert info["window_applied"] == {"start": None, "end": "2024-05-31 23:59:59.999999"}
    assert info["reference_date"] == {"value": "2024-06-01 00:00:00", "from": "reference_date"}
    assert state["data_quality"]["outside_window"] == 60


# -- column suggestions --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "missing, param, columns, expected",
    [
        ("action", "event_col", ["user_id", "timestamp", "amount"], None),  # was 'amount' (0.4)
        ("amount", "amount_col", ["user_id", "timestamp", "action"], None),
        ("user_id", "user_col", ["ts", "User-ID"], "User-ID"),  # case and separators
        ("user_id", "user_col", ["ts", "UserId"], "UserId"),
        ("timestamp", "time_col", ["user_id", "timestmp"], "timestmp"),  # a typo
        ("user_id", "user_col", ["ts", "customer_id"], "customer_id"),  # a usual name for it
        ("user_id", "user_col", ["uid", "ts"], "uid"),
        ("timestamp", "time_col", ["user_id", "event_time"], "event_time"),
        ("event", "event_col", ["user_id", "event_name"], "event_name"),
        ("user_id", "user_col", ["ts", "event", "amount"], None),
        ("visit", "session_col", ["user_id", "vest"], None),  # ratio 0.67: too far
    ],
)
def test_suggest_column(missing, param, columns, expected):
    assert suggest_column(missing, param, columns) == expected


def test_missing_mapped_column_without_plausible_name_lists_what_exists(tmp_path):
    path = _write(tmp_path, "user_id,timestamp,amount\na,2024-05-01,3\n")
    with pytest.raises(SchemaError) as info:
        _load(path, event_col="action")
    assert str(info.value) == (
        f"events file {path!r} has no 'action' column (found: user_id, "
        "timestamp, amount); set event_col to the column that holds it"
    )


# -- dirty rows --------------------------------------------------------------------------------
def test_dirty_rows_are_counted_and_dropped_or_repaired(tmp_path):
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame(
        {
            "user_id": ["a", None, "b", "c", "c", "c", "d", "e", "e"],
            "timestamp": [
                "2024-05-01 10:00:00",
                "2024-05-01 10:00:00",
                None,
                "2024-05-02 10:00:00",
                "2024-05-02 10:00:00",
                "2024-05-02 10:00:00",
                future,
                "2024-05-03 09:00:00",
                "2024-05-03 09:00:00",
            ],
            "event": ["purchase"] * 9,
            "amount": [-5.0, 3.0, 3.0, 7.0, 7.0, 7.0, 2.0, 1.0, 2.0],
        }
    )
    log = _load(_csv(tmp_path, frame))
    # a's refund is kept as a purchase of unknown value: the one missing amount
    assert log.quality == {
        "null_user": 1,
        "null_time": 1,
        "outside_window": 0,
        "future": 1,
        "negative_amount": 1,
        "negative_quantity": 0,
        "missing_amount": 1,
        "duplicate": 2,
    }
    assert log.counts["rows_read"] == 9
    assert log.counts["events"] == 4
    assert log.counts["users"] == 3
    # the refund keeps its row with a missing amount; e's two rows differ and both stay
    assert log.con.execute(
        "SELECT user_id, amount FROM events ORDER BY user_id, amount"
    ).fetchall() == [("a", None), ("c", 7.0), ("e", 1.0), ("e", 2.0)]


@pytest.mark.parametrize("extra_names", [0, 40, 70])
def test_per_event_counts_after_duplicates_with_few_or_many_event_names(tmp_path, extra_names):
    # up to 64 names are counted in a column each, more through a MAP per user: same counts
    rows = [
        "user_id,timestamp,event,amount",
        "a,2024-05-01 10:00:00,purchase,",  # unpriced purchase, twice: counted once
        "a,2024-05-01 10:00:00,purchase,",
        "a,2024-05-01 10:01:00,purchase,4",
        "b,2024-05-01 11:00:00,page_view,",
        "b,2024-05-01 11:00:00,page_view,",  # duplicate view
        "b,2024-05-01 11:00:00,page_view,1",
    ]  # not a duplicate: other amount
    rows += [f"c,2024-05-02 10:{i % 60:02d}:00,custom_{i}," for i in range(extra_names)]
    log = _load(_write(tmp_path, "\n".join(rows) + "\n"))
    assert log.event_counts["purchase"] == 2
    assert log.event_counts["page_view"] == 2
    assert sum(log.event_counts.values()) == 4 + extra_names
    assert log.quality["duplicate"] == 2
    assert log.quality["missing_amount"] == 1
    if extra_names:
        assert log.event_counts[f"custom_{extra_names - 1}"] == 1
        roles = log.con.execute(
            'SELECT "role_other", role_purchase FROM user_activity '
            "JOIN users USING (uid) WHERE user_id = 'c'"
        ).fetchone()
        assert roles == (extra_names, 0)


def test_a_row_breaking_two_rules_is_not_counted_twice(tmp_path):
    path = _write(
        tmp_path, "user_id,timestamp,event\n,,view\na,2024-01-01,view\na,2024-01-01,view\n"
    )
    log = _load(path)
    assert log.quality == {
        "null_user": 1,
        "null_time": 1,
        "outside_window": 0,
        "future": 0,
        "negative_amount": 0,
        "negative_quantity": 0,
        "missing_amount": 0,
        "duplicate": 1,
    }
    assert log.counts["events"] == 1


def test_blank_user_ids_count_as_missing(tmp_path):
    # spaces, an ideographic and a no-break space are blank; a tab is an id (trim keeps it)
    path = _write(
        tmp_path,
        'user_id,timestamp\n"  ",2024-05-01\na,2024-05-01\n'
        '"\u3000",2024-05-01\n"\u00a0 ",2024-05-01\n"\t",2024-05-01\n'
        '" b",2024-05-01\n',
    )
    log = _load(path)
    assert log.quality["null_user"] == 3
    assert log.counts["users"] == 3
    assert sorted(u for (u,) in log.con.execute("SELECT user_id FROM users").fetchall()) == [
        "\t",
        " b",
        "a",
    ]


def test_blank_user_check_agrees_with_trim():
    # the cheap comparison in front of trim must let through every id that trims to nothing
    from personas.load.cleaning import BLANK_USER_SQL

    con = duckdb.connect()
    trimmed = [
        chr(c)
        for (c,) in con.execute(
            "SELECT i FROM range(1, 1114112) t(i) WHERE (i < 55296 OR i > 57343) "
            "AND trim(chr(CAST(i AS INTEGER))) = ''"
        ).fetchall()
    ]
    assert " " in trimmed and "\u3000" in trimmed
    ids = (
        ["", "a", "!", "~", "\x7f", "\x80", "\t", "a ", " a", "\u00e9"]
        + trimmed
        + [c * 3 for c in trimmed]
        + [c + "x" for c in trimmed]
        + ["x" + c for c in trimmed]
    )
    con.execute("CREATE TABLE ids (user_id VARCHAR)")
    con.executemany("INSERT INTO ids VALUES (?)", [(i,) for i in ids])
    disagree = con.execute(
        f"SELECT user_id FROM ids WHERE {BLANK_USER_SQL} IS DISTINCT FROM (trim(user_id) = '')"
    ).fetchall()
    assert disagree == []
    assert con.execute(f"SELECT count(*) FROM ids WHERE {BLANK_USER_SQL}").fetchone()[0] == (
        1 + 2 * len(trimmed)
    )


@pytest.mark.parametrize(
    "rule, row",
    [
        ("null_user", ",2024-05-02 10:00:00,purchase,3"),
        ("null_time", "x,,purchase,3"),
        ("outside_window", "x,2023-01-01 10:00:00,purchase,3"),
        ("future", "x,2999-01-01 10:00:00,purchase,3"),
        ("negative_amount", "x,2024-05-02 10:00:00,purchase,-3"),
    ],
)
def test_each_rule_alone_drops_or_repairs_only_its_rows(tmp_path, rule, row):
    # the view of kept rows tests only the rules some row broke: each one alone still works
    text = (
        "user_id,timestamp,event,amount\na,2024-05-01 10:00:00,purchase,5\n"
        f"b,2024-05-01 11:00:00,page_view,\n{row}\n"
    )
    log = _load(_write(tmp_path, text), start="2024-01-01")
    # a repaired refund is a purchase of unknown value
    assert {k: v for k, v in log.quality.items() if v} == (
        {rule: 1, "missing_amount": 1} if rule == "negative_amount" else {rule: 1}
    )
    kept = log.con.execute("SELECT user_id, amount FROM events ORDER BY user_id").fetchall()
    assert kept == (
        [("a", 5.0), ("b", None), ("x", None)]
        if rule == "negative_amount"
        else [("a", 5.0), ("b", None)]
    )


def test_future_rows_use_utc_whatever_the_session_zone(tmp_path):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pd.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "timestamp": [
                (now - dt.timedelta(hours=2)).isoformat(" "),
                "2024-01-01 00:00:00",
                (now + dt.timedelta(hours=3)).isoformat(" "),
            ],
        }
    )
    path = _csv(tmp_path, frame)
    for zone in ("America/New_York", "Asia/Tokyo"):
        con = duckdb.connect()
        con.execute(f"SET TimeZone = '{zone}'")
        log = load_events(PersonaParams(events_path=path), con=con)
        assert log.quality["future"] == 1, zone
        assert log.counts["users"] == 2, zone


def test_nothing_usable_left(tmp_path):
    path = _write(tmp_path, "user_id,timestamp\na,\nb,\n")
    with pytest.raises(InputError, match=r"has no usable rows after cleaning \(null_time: 2\)"):
        _load(path)


# -- bad input ---------------------------------------------------------------------------------
def test_missing_path(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"events file '.*nope\.csv' does not exist") as info:
        _load(path)
    assert info.value.path == path


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(InputError, match=r"events path '.*\*\.parquet' matches no file"):
        _load(str(tmp_path / "*.parquet"))


def test_folder_without_parquet(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "events.csv").write_text("user_id,timestamp\na,2024-01-01\n")
    with pytest.raises(InputError, match=r"events folder '.*data' holds no \.parquet file"):
        _load(str(tmp_path / "data"))


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match=r"events file '.*events\.csv' is empty"):
        _load(_write(tmp_path, ""))


def test_binary_garbage(tmp_path):
    path = _write(tmp_path, bytes(range(256)) * 8, "events.bin")
    with pytest.raises(
        InputError,
        match=r"events file '.*events\.bin' is neither CSV nor "
        r"Parquet \(it holds binary data\)",
    ):
        _load(path)


def test_broken_parquet(tmp_path):
    path = _write(tmp_path, b"PAR1" + b"\x01\x02" * 100, "broken.parquet")
    with pytest.raises(
        InputError,
        match=r"events file '.*broken\.parquet' cannot be parsed as "
        r"a table",
    ):
        _load(path)


def test_header_only_csv(tmp_path):
    with pytest.raises(InputError, match=r"events file '.*events\.csv' has a header but no rows"):
        _load(_write(tmp_path, "user_id,timestamp,event\n"))


def test_missing_user_column_lists_columns_and_suggests(tmp_path):
    path = _write(tmp_path, "uid,timestamp,event\na,2024-05-01,view\n")
    with pytest.raises(
        SchemaError,
        match=r"events file '.*events\.csv' has no 'user_id' column "
        r"\(found: uid, timestamp, event\); set user_col=uid",
    ) as info:
        _load(path)
    assert info.value.column == "user_id"
    assert info.value.path == path


def test_missing_user_column_case_insensitive_suggestion(tmp_path):
    path = _write(tmp_path, "USER_ID,timestamp\na,2024-05-01\n")
    with pytest.raises(SchemaError, match=r"set user_col=USER_ID"):
        _load(path)


def test_missing_time_column_without_close_name(tmp_path):
    path = _write(tmp_path, "user_id,zzz\na,2024-05-01\n")
    with pytest.raises(
        SchemaError,
        match=r"has no 'timestamp' column \(found: user_id, zzz\); "
        r"set time_col to the column that holds it",
    ):
        _load(path)


def test_unparseable_timestamps(tmp_path):
    path = _write(tmp_path, "user_id,timestamp\na,yesterday\nb,2024-01-01\nc,soon\n")
    with pytest.raises(
        SchemaError,
        match=r"events file '.*events\.csv': 2 values in time column "
        r"'timestamp' are not timestamps \(e\.g\. '(yesterday|"
        r"soon)'\)",
    ) as info:
        _load(path)
    assert info.value.column == "timestamp"


def test_non_numeric_amounts(tmp_path):
    path = _write(
        tmp_path, "user_id,timestamp,amount\na,2024-01-01,$5\nb,2024-01-01,3\nc,2024-01-01,\n"
    )
    with pytest.raises(
        SchemaError,
        match=r"events file '.*events\.csv': 1 values in amount "
        r"column 'amount' are not numbers \(e\.g\. '\$5'\)",
    ) as info:
        _load(path)
    assert info.value.column == "amount"


@pytest.mark.parametrize(
    ("times", "example", "form"),
    [
        ("1704067200000\n-62135600000000", "-62135600000000", "epoch milliseconds"),  # year 0
        ("2024-01-01\n0000-06-01", "0001-06-01 (BC)", "ISO date"),  # as DuckDB writes year 0
        ("2024-01-01 10:00\n10000-01-01 10:00", "10000-01-01 10:00:00", "ISO text"),
    ],
)
def test_times_outside_the_years_1_to_9999_are_refused(tmp_path, times, example, form):
    # DuckDB holds them, Python's datetime (and so the report) does not
    first, second = times.split("\n")
    path = _write(tmp_path, f"user_id,timestamp\na,{first}\nb,{second}\n")
    with pytest.raises(
        SchemaError,
        match=re.escape(
            f"1 values in time column 'timestamp' are not timestamps (e.g. '{example}' read as "
            f"{form}: outside the years 1 to 9999); remove or correct them"
        ),
    ) as info:
        _load(path)
    assert info.value.column == "timestamp"


def test_amount_column_of_dates(tmp_path):
    path = _write(
        tmp_path, "user_id,timestamp,amount\na,2024-01-01,2024-01-01\nb,2024-01-02,2024-01-02\n"
    )
    with pytest.raises(
        SchemaError,
        match=r"2 values in amount column 'amount' are not numbers "
        r"\(e\.g\. '2024-01-0[12]'\)",
    ):
        _load(path)


def test_bad_value_past_the_sniffed_rows(tmp_path):
    n = 25_000  # more rows than the CSV reader samples to guess the column types
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i % 50}" for i in range(n)],
            "timestamp": "2024-05-01 10:00:00",
            "amount": "1.5",
        }
    )
    frame.loc[n - 1, "amount"] = "abc"
    with pytest.raises(
        InputError,
        match=r"events file '.*events\.csv' cannot be read to the end "
        r"\(.*amount.*abc",
    ):
        _load(_csv(tmp_path, frame))


# -- property: any small table either loads or raises InputError ---------------------------------
COLUMN_NAMES = [
    "user_id",
    "timestamp",
    "event",
    "amount",
    "discount",
    "platform",
    "category",
    "session",
    "other",
]
VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "view",
            "purchase",
            "add_to_cart",
            "2024-05-01",
            "2024-05-01T10:00:00+02:00",
            "1714557600",
            "true",
            "nan",
            "",
            "-infinity",
            "$5",
        ]
    ),
)


@st.composite
def small_frames(draw) -> pd.DataFrame:
    columns = draw(st.lists(st.sampled_from(COLUMN_NAMES), min_size=1, max_size=6, unique=True))
    n_rows = draw(st.integers(min_value=0, max_value=6))
    return pd.DataFrame(
        {c: draw(st.lists(VALUES, min_size=n_rows, max_size=n_rows)) for c in columns}
    )


@pytest.fixture(scope="module")
def property_dir(tmp_path_factory):
    # module scope: hypothesis runs many examples in one call of the test function
    return tmp_path_factory.mktemp("property")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=small_frames())
def test_any_small_table_loads_or_raises_input_error(property_dir, frame):
    path = str(property_dir / "events.csv")
    frame.to_csv(path, index=False)
    try:
        log = load_events(PersonaParams(events_path=path))
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(log, EventLog)
    assert log.counts["events"] >= 1
    assert log.counts["events"] + sum(log.quality.values()) >= log.counts["rows_read"]


def test_codes_spread_over_several_sort_words_give_the_same_log(tmp_path, monkeypatch):
    # every column's code packs into one BIGINT here; squeezed to 4 bits a word, they take
    # five (the amount, in cents, 11 bits alone), and duplicates, amounts and the decoded events
    # must come out the same
    from personas.load import encoding as events

    rows = [
        "user_id,timestamp,event,amount,discount,platform,category,product",
        "a,2024-05-01 10:00:00,purchase,12.5,true,app,shoes,p1",
        "a,2024-05-01 10:00:00,purchase,12.5,true,app,shoes,p1",  # exact duplicate
        "a,2024-05-01 10:00:00,purchase,12.5,true,app,shoes,p2",  # differs in product only
        "a,2024-05-01 10:05:00,page_view,,,web,bags,p3",
        "b,2024-05-02 09:00:00,purchase,7,false,web,hats,p4",
        "b,2024-05-02 09:00:00,purchase,8,false,web,hats,p4",
    ]  # differs in amount only
    path = _write(tmp_path, "\n".join(rows) + "\n")
    query = (
        "SELECT user_id, ts, event, amount, discount, platform, category, product "
        "FROM events ORDER BY ALL"
    )
    wide = _load(path)
    assert len(events.pack_codes(wide.con)) == 1
    monkeypatch.setattr(events, "WORD_BITS", 4)
    narrow = _load(path)
    assert len(events.pack_codes(narrow.con)) == 5
    assert narrow.con.execute(query).fetchall() == wide.con.execute(query).fetchall()
    assert narrow.quality["duplicate"] == wide.quality["duplicate"] == 1
    assert narrow.counts["events"] == 5
    assert narrow.con.execute("SELECT sum(revenue) FROM user_activity").fetchone()[0] == 40.0


@pytest.mark.parametrize(
    ("amounts", "coded_as"),
    [
        ((12.5, 7.0, 0.0), "cents"),
        ((3.0, 4.0, 4000.0), "whole"),
        ((0.1 + 0.2, 0.3, 7.0), "table"),  # 0.30000000000000004 is no whole cent
        ((2.0**40, 1.0, 2.0), "table"),  # too large to scale
        ((float("nan"), 1.0, 2.0), "table"),
    ],
)
def test_amounts_and_quantities_come_back_exactly_however_they_are_coded(
    tmp_path, amounts, coded_as
):
    from personas.load import encoding as events

    first, second, third = amounts
    columns = {
        "user_id": ["a", "a", "a", "a", "b"],
        "timestamp": ["2024-05-01 10:00:00"] * 4 + ["2024-05-02 10:00:00"],
        "event": ["purchase"] * 5,
        "amount": [first, first, second, third, None],  # a's first two rows are duplicates
        "quantity": [second, second, first, third, 1.0],
    }
    path = tmp_path / "events.parquet"
    # pyarrow, not pandas: pandas would store NaN as a missing value, and None as NaN
    pq.write_table(pa.table(columns), path)
    log = _load(str(path))
    amount, _ = events.value_codings(log.con)
    mode = "table" if amount.encode_join else "cents" if "* 100)" in amount.encode else "whole"
    assert mode == coded_as
    assert log.quality["duplicate"] == 1
    got = log.con.execute("SELECT amount, quantity FROM events WHERE user_id = 'a'").fetchall()
    # repr: exact digits, and NaN equal to itself
    assert sorted((repr(a), repr(q)) for a, q in got) == sorted(
        (repr(a), repr(q)) for a, q in [(first, second), (second, first), (third, third)]
    )
    revenue = log.con.execute("SELECT sum(revenue) FROM user_activity").fetchone()[0]
    assert repr(revenue) == repr(first + second + third)
