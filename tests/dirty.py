"""A dirty event log for the tests that compare two ways of computing the same features (the
Spark engine, the per-user pass in buckets): every kind of dirt the load cleans."""

from __future__ import annotations

import numpy as np
import pandas as pd


def dirty_log(seed: int, users: int = 300, rows: int = 12_000) -> pd.DataFrame:
    """A log with every kind of dirt the load cleans: duplicates, rows without a user (missing,
    blank) or a time, rows outside the window and in the future, negative amounts and
    quantities, event names in mixed case and unknown ones, odd user ids, amounts in cents and
    not, categories, products, platforms and discounts."""
    rng = np.random.default_rng(seed)
    ids = np.array(
        [f"user-{i:04d}" for i in range(users - 6)]
        + ["007", "7", " padded ", "ünïcödé", "user,comma", 'quote"d']
    )
    names = np.array(
        [
            "Product Viewed",
            "page_view",
            "VIEW_ITEM",
            "add_to_cart",
            "Product Added",
            "purchase",
            "Order Completed",
            "search",
            "email_open",
            "Email Clicked",
            "wishlist_add",
            "Mystery Event",
            "odd `quoted` event",
            "app_open",
        ]
    )
    weights = np.linspace(3, 1, len(names))  # views most often, unknown events least
    start = pd.Timestamp("2024-01-01").value // 1000  # microseconds
    span = 400 * 86_400_000_000
    times = pd.to_datetime(start + rng.integers(0, span, rows), unit="us")
    frame = pd.DataFrame(
        {
            "user_id": rng.choice(ids, rows, p=None),
            "timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
            "event": rng.choice(names, rows, p=weights / weights.sum()),
            "amount": np.where(
                rng.random(rows) < 0.5,
                np.round(rng.gamma(2, 30, rows), 2),
                rng.gamma(2, 30, rows),
            ),
            "quantity": rng.integers(-1, 5, rows).astype("float64"),
            "discount": rng.random(rows) < 0.2,
            "platform": rng.choice(["web", "iOS", "android", "App", None], rows),
            "category": rng.choice(["shoes", "bags", "hats", None], rows),
            "product": rng.choice([f"p{i}" for i in range(90)], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.02, "user_id"] = None
    frame.loc[rng.random(rows) < 0.01, "user_id"] = "   "
    frame.loc[rng.random(rows) < 0.02, "timestamp"] = None
    frame.loc[rng.random(rows) < 0.01, "timestamp"] = "2999-01-01 00:00:00"  # the future
    frame.loc[rng.random(rows) < 0.03, "amount"] = -5.0
    frame.loc[rng.random(rows) < 0.05, "amount"] = None
    frame.loc[frame["event"].isin(["page_view", "search"]), "amount"] = None
    duplicates = frame.sample(frac=0.05, random_state=seed)
    return pd.concat([frame, duplicates], ignore_index=True).sample(frac=1, random_state=seed)


def write_dirty_log(folder, variant: str) -> tuple[str, dict]:
    """:func:`dirty_log` written to ``folder`` as a run would get it: ``variant`` is ``plain``,
    ``window`` (with start, end and reference date), ``epoch seconds`` (times as numbers),
    ``sessions given`` (a session column) or ``csv`` (as CSV, not Parquet). Returns the path and
    the parameters that go with it."""
    frame = dirty_log(seed=len(variant))
    extra = {}
    if variant == "window":
        extra = dict(start="2024-02-01", end="2025-01-31", reference_date="2025-02-15")
    elif variant == "epoch seconds":
        times = pd.to_datetime(frame["timestamp"])
        frame["timestamp"] = (times - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    elif variant == "sessions given":
        frame["session_id"] = (
            frame["user_id"].fillna("-") + "/" + frame["timestamp"].fillna("x").str[:10]
        )
        extra = dict(session_col="session_id")
    path = folder / ("dirty.csv" if variant == "csv" else "dirty.parquet")
    if variant == "csv":  # read by DuckDB's CSV sniffer (and Spark's CSV reader)
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return str(path), extra
