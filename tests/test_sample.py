"""Tests of personas.sample: the synthetic event log with planted personas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personas.sample import PERSONAS, make_events, write_sample

N_USERS = 600
SEED = 3
END = "2024-12-31"
WINDOW_START = pd.Timestamp("2025-01-01") - pd.Timedelta(days=365)
WINDOW_END = pd.Timestamp("2025-01-01")
EVENTS = {
    "page_view",
    "view_item",
    "search",
    "add_to_cart",
    "begin_checkout",
    "purchase",
    "email_open",
    "email_click",
}
PRODUCT_EVENTS = {"view_item", "add_to_cart", "purchase"}


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_events(N_USERS, seed=SEED, end=END)


@pytest.fixture(scope="module")
def events(sample) -> pd.DataFrame:
    return sample[0]


@pytest.fixture(scope="module")
def truth(sample) -> pd.DataFrame:
    return sample[1]


@pytest.fixture(scope="module")
def labelled(events, truth) -> pd.DataFrame:
    return events.merge(truth, on="user_id", how="left", validate="many_to_one")


def _sessions(events: pd.DataFrame) -> pd.Series:
    """Session number per event, cutting each user's events at 30 minutes of silence."""
    new_user = events["user_id"].ne(events["user_id"].shift())
    gap = events["timestamp"].diff() > pd.Timedelta(minutes=30)
    return (new_user | gap).cumsum()


# -- determinism ------------------------------------------------------------------------------
def test_same_seed_gives_identical_frames(sample):
    events, truth = make_events(N_USERS, seed=SEED, end=END)
    pd.testing.assert_frame_equal(events, sample[0])
    pd.testing.assert_frame_equal(truth, sample[1])


def test_other_seed_gives_other_frames(events, truth):
    other_events, other_truth = make_events(N_USERS, seed=SEED + 1, end=END)
    assert not other_events.equals(events)
    assert not other_truth["persona"].equals(truth["persona"])


# -- schema -----------------------------------------------------------------------------------
def test_columns_and_dtypes(events, truth):
    assert list(events.columns) == [
        "user_id",
        "timestamp",
        "event",
        "amount",
        "discount",
        "category",
        "platform",
    ]
    dtypes = events.dtypes
    assert dtypes["timestamp"] == np.dtype("datetime64[ns]")
    assert dtypes["amount"] == np.dtype("float64")
    assert dtypes["discount"] == np.dtype("bool")
    for column in ("user_id", "event", "category", "platform"):
        assert dtypes[column] == np.dtype("object"), column
    assert list(truth.columns) == ["user_id", "persona"]
    assert events["user_id"].str.fullmatch(r"u\d{7}").all()
    assert set(events["event"]) == EVENTS
    assert set(events["platform"]) == {"web", "app"}


def test_rows_sorted_by_user_then_time(events):
    assert events["user_id"].is_monotonic_increasing
    key = events["user_id"] + events["timestamp"].astype("int64").astype(str).str.zfill(20)
    assert key.is_monotonic_increasing
    # strictly increasing within a user: no ties to make the order ambiguous
    same_user = events["user_id"].eq(events["user_id"].shift())
    assert (events["timestamp"].diff()[same_user] > pd.Timedelta(0)).all()


def test_personas_constant():
    assert PERSONAS[-1] == "noise"
    assert len(PERSONAS) == len(set(PERSONAS)) == 8
    assert set(PERSONAS) == {
        "frequent_browser",
        "loyal_big_spender",
        "bargain_hunter",
        "cart_abandoner",
        "new_visitor",
        "lapsed",
        "email_engaged",
        "noise",
    }


def test_truth_matches_users(events, truth):
    assert truth["user_id"].is_unique
    assert len(truth) == N_USERS
    assert set(truth["user_id"]) == set(events["user_id"])
    assert set(truth["persona"]) == set(PERSONAS)
    shares = truth["persona"].value_counts(normalize=True)
    assert shares["frequent_browser"] == pytest.approx(0.18, abs=0.01)
    assert shares["noise"] == pytest.approx(0.10, abs=0.01)


def test_single_user():
    events, truth = make_events(1, seed=0)
    assert len(truth) == 1 and len(events) >= 1
    assert events["user_id"].unique().tolist() == ["u0000000"]


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_bad_user_count_is_rejected(bad):
    with pytest.raises(ValueError):
        make_events(bad)


def test_events_per_user_in_range(events):
    per_user = events.groupby("user_id").size()
    assert 100 <= per_user.mean() <= 200
    assert per_user.max() > 4 * per_user.median()  # heavy tailed


# -- values -----------------------------------------------------------------------------------
def test_amount_positive_exactly_on_purchases(events):
    purchase = events["event"].eq("purchase")
    assert purchase.any()
    assert (events.loc[purchase, "amount"] > 0).all()
    assert events.loc[~purchase, "amount"].isna().all()
    cents = events.loc[purchase, "amount"] * 100
    assert np.allclose(cents, cents.round())


def test_discount_only_on_purchases(events):
    purchase = events["event"].eq("purchase")
    assert not events.loc[~purchase, "discount"].any()
    assert 0 < events.loc[purchase, "discount"].mean() < 1


def test_category_only_on_product_events(events):
    product = events["event"].isin(PRODUCT_EVENTS)
    assert events.loc[~product, "category"].isna().all()
    categories = events.loc[product, "category"]
    assert categories.notna().all()
    assert 8 <= categories.nunique() <= 16


def test_timestamps_inside_window(events):
    assert events["timestamp"].min() >= WINDOW_START
    assert events["timestamp"].max() < WINDOW_END


def test_end_moves_the_window():
    events, _ = make_events(50, seed=1, end="2023-06-30")
    assert events["timestamp"].min() >= pd.Timestamp("2023-07-01") - pd.Timedelta(days=365)
    assert events["timestamp"].max() < pd.Timestamp("2023-07-01")


# -- planted personas -------------------------------------------------------------------------
def test_new_visitors_first_seen_in_last_30_days(labelled):
    first = labelled[labelled["persona"] == "new_visitor"].groupby("user_id")["timestamp"].min()
    assert len(first) > 0
    assert (first >= WINDOW_END - pd.Timedelta(days=30)).all()
    sessions = labelled[labelled["persona"] == "new_visitor"].assign(
        session=_sessions(labelled)[labelled["persona"] == "new_visitor"]
    )
    assert sessions.groupby("user_id")["session"].nunique().max() <= 8  # site 1-4, few emails


def test_lapsed_users_gone_after_first_45_percent(labelled):
    last = labelled[labelled["persona"] == "lapsed"].groupby("user_id")["timestamp"].max()
    assert len(last) > 0
    assert (last < WINDOW_START + pd.Timedelta(days=0.45 * 365)).all()
    buyers = labelled[(labelled["persona"] == "lapsed") & (labelled["event"] == "purchase")]
    assert buyers["user_id"].nunique() > 0.6 * len(last)


def test_loyal_spend_more_and_bargain_hunters_use_discounts(labelled):
    orders = labelled[labelled["event"] == "purchase"]
    median = orders.groupby("persona")["amount"].median()
    assert median["loyal_big_spender"] > 3 * median["bargain_hunter"]
    assert median["loyal_big_spender"] == pytest.approx(180, rel=0.25)
    assert median["bargain_hunter"] == pytest.approx(30, rel=0.25)
    discount = orders.groupby("persona")["discount"].mean()
    assert discount["bargain_hunter"] > 0.6
    assert discount["loyal_big_spender"] < 0.2


def test_cart_abandoners_rarely_complete(labelled):
    counts = labelled.pivot_table(
        index="persona", columns="event", values="user_id", aggfunc="size", fill_value=0
    )
    rate = counts["purchase"] / counts["add_to_cart"]
    assert rate["cart_abandoner"] < 0.1
    assert rate["cart_abandoner"] < rate["loyal_big_spender"] / 3
    per_user = counts.div(labelled.groupby("persona")["user_id"].nunique(), axis=0)
    assert (
        per_user.loc["cart_abandoner", "add_to_cart"]
        > per_user.loc["frequent_browser", "add_to_cart"]
    )


def test_browsers_browse_and_rarely_buy(labelled):
    browsers = labelled[labelled["persona"] == "frequent_browser"]
    users = browsers["user_id"].nunique()
    buyers = browsers.loc[browsers["event"] == "purchase", "user_id"].nunique()
    assert buyers / users < 0.3
    views = browsers["event"].isin({"page_view", "view_item", "search"}).sum() / users
    loyal = labelled[labelled["persona"] == "loyal_big_spender"]
    loyal_orders = (loyal["event"] == "purchase").sum() / loyal["user_id"].nunique()
    assert views > 50
    assert loyal_orders > 5


def test_email_engaged_open_most_emails(labelled):
    opens = labelled[labelled["event"] == "email_open"].groupby("persona").size()
    users = labelled.groupby("persona")["user_id"].nunique()
    per_user = opens / users
    assert per_user.idxmax() in {"email_engaged", "noise"}
    assert per_user["email_engaged"] > 2 * per_user["frequent_browser"]


# -- sessions ---------------------------------------------------------------------------------
def test_sessions_have_one_platform(events):
    session = _sessions(events)
    assert session.max() > N_USERS
    assert events.groupby(session)["platform"].nunique().max() == 1


def test_sessions_are_compact(events):
    session = _sessions(events)
    span = events.groupby(session)["timestamp"].agg(lambda t: t.max() - t.min())
    assert span.median() < pd.Timedelta(minutes=15)


def test_purchases_follow_the_funnel(events):
    session = _sessions(events).to_numpy()
    kinds = events["event"].to_numpy()
    bought = np.flatnonzero(kinds == "purchase")
    assert bought.min() >= 3
    assert (kinds[bought - 1] == "begin_checkout").all()
    assert (kinds[bought - 2] == "add_to_cart").all()
    assert (kinds[bought - 3] == "view_item").all()
    assert (session[bought - 3] == session[bought]).all()
    categories = events["category"].to_numpy()
    assert (categories[bought] == categories[bought - 2]).all()


def test_email_sessions_start_with_open(events):
    session = _sessions(events)
    first_event = events.groupby(session)["event"].first()
    assert set(first_event) <= {"page_view", "email_open"}
    clicks = np.flatnonzero(events["event"].to_numpy() == "email_click")
    assert (events["event"].to_numpy()[clicks - 1] == "email_open").all()


# -- files ------------------------------------------------------------------------------------
def _read_back(path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(
            path,
            dtype={"user_id": str, "event": str, "category": str, "platform": str},
            parse_dates=["timestamp"],
        )
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
    for column in ("user_id", "event", "category", "platform"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


@pytest.mark.parametrize("name", ["shop.parquet", "shop.csv", "shop.csv.gz"])
def test_write_sample_round_trip(tmp_path, name):
    events_path, truth_path = write_sample(tmp_path / "out" / name, n_users=120, seed=5)
    assert events_path == tmp_path / "out" / name
    assert truth_path == tmp_path / "out" / "shop.truth.csv"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([name, "shop.truth.csv"])
    expected_events, expected_truth = make_events(120, seed=5)
    pd.testing.assert_frame_equal(_read_back(events_path), expected_events)
    truth = pd.read_csv(truth_path, dtype=str).astype(object)
    pd.testing.assert_frame_equal(truth, expected_truth)


def test_write_sample_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError):
        write_sample(tmp_path / "shop.json", n_users=10)
    assert list(tmp_path.iterdir()) == []


def test_write_sample_leaves_nothing_on_failure(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError):
        write_sample(tmp_path / "shop.csv", n_users=10)
    assert list(tmp_path.iterdir()) == []


# -- the held-out cast ------------------------------------------------------------------------
from personas.sample import FAMILIES, HOLDOUT_PERSONAS, MIXES  # noqa: E402


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    events, truth = make_events(1200, seed=SEED, end=END, mix="holdout")
    return events.merge(truth, on="user_id", how="left", validate="many_to_one")


def test_mix_default_is_the_default_sample(sample):
    events, truth = make_events(N_USERS, seed=SEED, end=END, mix="default")
    pd.testing.assert_frame_equal(events, sample[0])
    pd.testing.assert_frame_equal(truth, sample[1])


def test_unknown_mix_is_rejected():
    with pytest.raises(ValueError, match="not a planted-persona mix"):
        make_events(10, mix="other")


def test_holdout_cast_is_other_personas_in_the_same_truth_format(holdout):
    assert set(HOLDOUT_PERSONAS) == {
        "app_first",
        "one_time_buyer",
        "power_user",
        "at_risk",
        "deal_seeker",
        "window_shopper",
        "noise",
    }
    assert not (set(HOLDOUT_PERSONAS) - {"noise"}) & set(PERSONAS)
    assert MIXES == {"default": PERSONAS, "holdout": HOLDOUT_PERSONAS}
    events, truth = make_events(300, seed=1, mix="holdout")
    assert list(truth.columns) == ["user_id", "persona"] and truth["user_id"].is_unique
    assert list(events.columns) == [
        "user_id",
        "timestamp",
        "event",
        "amount",
        "discount",
        "category",
        "platform",
    ]
    shares = holdout.groupby("persona")["user_id"].nunique() / holdout["user_id"].nunique()
    assert shares["window_shopper"] == pytest.approx(0.20, abs=0.01)
    assert shares["power_user"] == pytest.approx(0.10, abs=0.01)


def test_every_planted_persona_has_naming_families():
    planted = (set(PERSONAS) | set(HOLDOUT_PERSONAS)) - {"noise"}
    assert set(FAMILIES) == planted
    assert all(FAMILIES[k] for k in planted)


def _per_user(frame: pd.DataFrame, event: str) -> pd.Series:
    """Events of one kind per user, zero for users without any, indexed by user."""
    counts = frame[frame["event"] == event].groupby("user_id").size()
    return counts.reindex(frame["user_id"].unique(), fill_value=0)


def test_holdout_personas_behave_as_planted(holdout):
    by = holdout.groupby("persona")
    app = by["platform"].apply(lambda p: (p == "app").mean())
    assert app["app_first"] > 0.85 and app.drop(["app_first", "noise"]).max() < 0.5

    once = holdout[holdout["persona"] == "one_time_buyer"]
    orders = _per_user(once, "purchase")
    assert orders.max() <= 1 and (orders == 1).mean() > 0.7
    site = once[once["event"] != "email_open"]
    assert (
        site.groupby("user_id")["timestamp"].agg(lambda t: t.max() - t.min())
        < pd.Timedelta(hours=2)
    ).mean() > 0.9  # one visit

    per_user = by.size() / by["user_id"].nunique()
    assert per_user.idxmax() == "power_user"
    last = holdout[holdout["persona"] == "at_risk"].groupby("user_id")["timestamp"].max()
    assert (last < WINDOW_END - pd.Timedelta(days=80)).all()
    assert (last > WINDOW_START + pd.Timedelta(days=200)).mean() > 0.9

    bought = holdout[holdout["event"] == "purchase"]
    discount = bought.groupby("persona")["discount"].agg(["mean", "size"])
    others = discount.drop(["deal_seeker", "noise"])
    assert discount.loc["deal_seeker", "mean"] > 0.8
    assert others.loc[others["size"] >= 50, "mean"].max() < 0.45  # enough orders to tell
    shopper = holdout[holdout["persona"] == "window_shopper"]
    kinds = shopper["event"].value_counts(normalize=True)
    assert kinds["view_item"] > 0.5 and kinds.get("search", 0) < 0.1
    assert _per_user(shopper, "purchase").mean() < 0.2


@pytest.mark.parametrize("mix", ["holdout", "default"])
def test_cli_sample_mix_writes_that_cast(capsys, tmp_path, mix):
    from personas.cli import main

    out = tmp_path / "shop.csv"
    assert (
        main(["sample", "-q", "--users", "300", "--seed", "3", "--mix", mix, "--out", str(out)])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    truth = pd.read_csv(tmp_path / "shop.truth.csv")
    assert set(truth["persona"]) == set(MIXES[mix])  # 300 users: every persona drawn
    expected = make_events(300, seed=3, mix=mix)[1]
    assert list(truth["persona"]) == list(expected["persona"])


def test_cli_sample_rejects_an_unknown_mix(capsys, tmp_path):
    from personas.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--mix", "other", "--out", str(tmp_path / "s.csv")])
    assert exit_info.value.code == 2
    assert "argument --mix: invalid choice: 'other'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
