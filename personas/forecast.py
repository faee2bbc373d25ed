"""Who will buy again, what each persona is worth over the next ``horizon_days``, and when a
regular buyer is due: buy-till-you-die models on the purchase history alone.

The models need only each buyer's purchase days and amounts, summed per user in DuckDB from the
loaded ``events`` view (rows whose role is ``purchase``), so order tables and event logs alike
get them (:func:`purchase_summary`):

=============== ===========================================================================
frequency       repeat purchase days: days with a purchase, less the first
recency         days from the first to the last purchase day
T               days from the first purchase day to the end of the calibration (the
                run's reference date, or that date less ``holdout_days`` for the check)
monetary_value  mean amount of the repeat purchase days (NaN without one with an amount)
last_purchase   the last purchase day
gap_mean        mean days between consecutive purchase days (NaN below two)
gap_sd          their standard deviation (NaN below three purchase days)
=============== ===========================================================================

Users who never bought are not in it: they have **no purchase history**, and every forecast
column is empty (NaN) for them rather than a made-up zero.

The models are pymc-marketing's: the Pareto/NBD (purchases while alive, and the dropout) and the
Gamma-Gamma (spend per purchase), fitted by maximum a posteriori (MAP) on at most
:data:`FIT_SAMPLE` buyers drawn by ``random_state``; every buyer is then predicted in closed form.
On the CDNOW order table the Pareto/NBD predicted the 273 days after 1997-09-30 within 8 % where
the BG/NBD, faster to fit, was 14 % low (docs/forecast.md), hence the choice.

``holdout_days=N`` repeats the fit on the window less its last N days and compares, per buyer,
the purchase days predicted for those N days with the ones that happened, next to the naive
forecast (the buyer's past repeat rate, frequency / T, carried forward) and to predicting zero
(:func:`validate`).

pymc-marketing imports PyMC and PyTensor (seconds), and PyTensor compiles the models' C code on
first use (about 30 s once per machine, cached in ``~/.pytensor``): both happen only when a run
forecasts, never on ``import personas``.

Why it is long: the purchase summary, the fit, the per-user prediction, the held-out check, the
per-persona sums and the test sizes are the steps of one forecast, kept in the order a run
takes them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

FIT_SAMPLE = 20_000  # buyers the two models are fitted on; the rest are only predicted
MIN_BUYERS = 50  # fewer buyers than this: no forecast (the fit would be noise)
PREDICT_ROWS = 500_000  # buyers predicted per batch (predict)
MIN_REPEAT_BUYERS = 20  # ... and fewer repeat buyers with amounts: no revenue forecast
REGULAR_PURCHASES = 3  # a regular buyer has at least this many purchase days ...
REGULAR_CV = 0.5  # ... gaps whose standard deviation is at most this share of their mean
REGULAR_P_ACTIVE = 0.5  # ... is probably still active ...
REGULAR_OVERDUE = 2.0  # ... and was last seen within this many of their usual gaps
DECILES = 10
COLUMNS = ("p_active", "expected_purchases", "expected_revenue", "next_purchase_due")


# -- the purchase history --------------------------------------------------------------------------

PURCHASE_ROWS = "purchase_rows"


def purchase_rows(con) -> str:
    """Create the view ``purchase_rows`` (user_id, ts, role, amount): the loaded log's purchases,
    exact duplicate rows dropped, as the ``events`` view has them; return its name.

    ``events`` numbers every user's sessions each time it is read, a sort of the whole log
    (46 s at 1M users); this view takes the load's cleaned rows (``kept``: the window applied,
    unusable rows dropped, negative amounts emptied), keeps the purchases and drops duplicates by
    hashing them, which needs no sort. It reads a view the load keeps to itself, so a test checks
    that both give the same summary (tests/test_forecast.py).
    """
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {PURCHASE_ROWS} AS
        SELECT user_id, ts, 'purchase' AS role, amount
        FROM (SELECT DISTINCT * FROM kept
              WHERE event IN (SELECT event FROM event_names WHERE role = 'purchase'))""")
    return PURCHASE_ROWS


def purchase_summary(con, cutoff: datetime, source: str = "events") -> pd.DataFrame:
    """Per buyer up to ``cutoff``'s day (the whole day): the columns of the module's table,
    indexed by ``user_id``. ``source`` names a view with the columns user_id, ts, role and amount
    of the loaded ``events`` view (:mod:`personas.load`), or :func:`purchase_rows`' view."""
    frame = con.execute(
        f"""
        WITH days AS (
            SELECT user_id, CAST(ts AS DATE) AS day, sum(amount) AS amount,
                   count(amount) AS priced
            FROM {source}
            WHERE role = 'purchase' AND CAST(ts AS DATE) <= CAST($cutoff AS DATE)
            GROUP BY ALL),
        gaps AS (
            SELECT *, date_diff('day', lag(day) OVER (PARTITION BY user_id ORDER BY day), day)
                      AS gap,
                   row_number() OVER (PARTITION BY user_id ORDER BY day) AS k
            FROM days)
        SELECT user_id, count(*) - 1 AS frequency,
               date_diff('day', min(day), max(day)) AS recency,
               date_diff('day', min(day), CAST($cutoff AS DATE)) AS T,
               avg(amount) FILTER (WHERE k > 1 AND priced > 0) AS monetary_value,
               max(day) AS last_purchase,
               avg(gap) AS gap_mean, stddev_samp(gap) AS gap_sd
        FROM gaps GROUP BY user_id""",
        {"cutoff": cutoff},
    ).df()
    frame["user_id"] = frame["user_id"].astype(str)
    frame["last_purchase"] = pd.to_datetime(frame["last_purchase"])
    for column in ("frequency", "recency", "T", "monetary_value", "gap_mean", "gap_sd"):
        frame[column] = frame[column].astype("float64")
    return frame.set_index("user_id").sort_index()


def holdout_actuals(con, start: datetime, end: datetime, source: str = "events") -> pd.DataFrame:
    """Per buyer, the purchase days and the revenue after ``start``'s day up to ``end``
    (``source`` as in :func:`purchase_summary`)."""
    frame = con.execute(
        f"""
        SELECT user_id, count(DISTINCT CAST(ts AS DATE)) AS purchases, sum(amount) AS revenue
        FROM {source} WHERE role = 'purchase' AND CAST(ts AS DATE) > CAST($start AS DATE)
                            AND ts <= $end
        GROUP BY user_id""",
        {"start": start, "end": end},
    ).df()
    frame["user_id"] = frame["user_id"].astype(str)
    frame["purchases"] = frame["purchases"].astype("float64")
    frame["revenue"] = frame["revenue"].astype("float64")
    return frame.set_index("user_id")


def holdout_cutoff(reference: datetime, holdout_days: int) -> datetime:
    """The end of the calibration window: the reference date's day less ``holdout_days``."""
    return pd.Timestamp(reference).normalize().to_pydatetime() - timedelta(days=holdout_days)


# -- the models ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet():
    """PyMC, PyTensor and ArviZ talk on import and while fitting (warnings about BLAS, a future
    ArviZ, a progress bar): none of it concerns a persona run, so it is muted here, and here
    only (no global warning filter or logger change survives the call)."""
    loggers = [logging.getLogger(n) for n in ("pymc", "pytensor", "pymc_marketing", "arviz")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _clv():
    with _quiet():
        from pymc_marketing import clv
    return clv


@dataclass
class Fitted:
    """The fitted models, or why there is none (``reason``)."""

    purchases: Any = None  # pymc_marketing.clv.ParetoNBDModel
    spend: Any = None  # pymc_marketing.clv.GammaGammaModel, None without amounts
    buyers: int = 0
    fitted_on: int = 0
    reason: str = ""  # why there is no purchase forecast ("" = there is one)
    spend_reason: str = ""  # why there is no revenue forecast
    parameters: dict[str, float] = field(default_factory=dict)


def sample_positions(buyers: int, size: int, seed: int) -> np.ndarray | None:
    """The positions (in user_id order) of the buyers the models are fitted on, ascending; None
    when all ``buyers`` are. They are ``pandas.DataFrame.sample(n=size, random_state=seed)``'s
    (numpy's RandomState(seed).choice without replacement) and depend on the count alone, so the
    Spark engine gathers the very same buyers' rows by their rank (personas.spark.purchases)."""
    if buyers <= size:
        return None
    return np.sort(np.random.RandomState(seed).choice(buyers, size=size, replace=False))


def _sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    positions = sample_positions(len(frame), size, seed)
    return frame if positions is None else frame.iloc[positions].sort_index()


def _model_frame(summary: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = summary[list(columns)].reset_index().rename(columns={"user_id": "customer_id"})
    return frame


def fit(summary: pd.DataFrame, random_state: int = 0, sample: int = FIT_SAMPLE) -> Fitted:
    """Fit the Pareto/NBD on at most ``sample`` buyers of ``summary`` (:func:`purchase_summary`)
    and the Gamma-Gamma on the repeat buyers among them with an amount; by MAP."""
    return fit_drawn(
        _sample(summary, sample, random_state),
        buyers=len(summary),
        repeat=bool((summary["frequency"] > 0).any()),
        priced=int(summary["monetary_value"].notna().sum()),
    )


def fit_drawn(drawn: pd.DataFrame, buyers: int, repeat: bool, priced: int) -> Fitted:
    """:func:`fit` on the buyers ``drawn`` from a summary of ``buyers`` buyers, ``repeat``
    whether any of them bought on more than one day, ``priced`` how many have a
    monetary_value: what the Spark engine knows without the whole summary on the driver."""
    if buyers < MIN_BUYERS:
        return Fitted(
            buyers=buyers,
            reason=f"too few buyers to fit the purchase model ({buyers:,}; it needs {MIN_BUYERS})",
        )
    if not repeat:
        return Fitted(
            buyers=buyers,
            reason="no buyer bought on more than one day, so there is "
            "no repeat purchase to learn from",
        )
    clv = _clv()
    with _quiet():
        purchases = clv.ParetoNBDModel()
        purchases.fit(
            _model_frame(drawn, ("frequency", "recency", "T")), method="map", progressbar=False
        )
    fitted = Fitted(purchases=purchases, buyers=buyers, fitted_on=len(drawn))
    fitted.parameters = _parameters(purchases)
    repeaters = drawn[(drawn["frequency"] > 0) & (drawn["monetary_value"] > 0)]
    if priced == 0:
        fitted.spend_reason = "the data has no amounts, so revenue is not forecast"
    elif len(repeaters) < MIN_REPEAT_BUYERS:
        fitted.spend_reason = (
            f"too few repeat buyers with an amount to fit the spend model "
            f"({len(repeaters):,}; it needs {MIN_REPEAT_BUYERS})"
        )
    else:
        with _quiet():
            spend = clv.GammaGammaModel()
            spend.fit(
                _model_frame(repeaters, ("frequency", "monetary_value")),
                method="map",
                progressbar=False,
            )
        fitted.spend = spend
        fitted.parameters.update({f"spend_{k}": v for k, v in _parameters(spend).items()})
    return fitted


def _parameters(model) -> dict[str, float]:
    posterior = model.idata.posterior
    return {
        name: round(float(posterior[name].values.reshape(-1)[0]), 6)
        for name in posterior.data_vars
        if posterior[name].size == 1
    }


def _values(array) -> np.ndarray:
    return np.asarray(array.values, dtype="float64").reshape(-1)


def predict(fitted: Fitted, summary: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Per buyer of ``summary``: ``p_active``, ``expected_purchases`` (purchase days over the
    next ``horizon_days``), ``p_buys`` (probability of at least one), ``expected_spend`` (mean
    amount of a future purchase) and ``expected_revenue``. NaN where a model is missing.

    :data:`PREDICT_ROWS` buyers at a time: the models' predictions go through xarray and
    PyTensor with several copies of their input, which for the 6.6M buyers of 10M users held
    7.5 GB at once. Each buyer's figures are a formula of that buyer's row and the fitted
    parameters, so the batches give the figures of one call (tests/test_forecast.py).
    """
    if fitted.purchases is None or not len(summary):
        return _predict_rows(fitted, summary, horizon_days)
    return pd.concat(
        [
            _predict_rows(fitted, summary.iloc[at : at + PREDICT_ROWS], horizon_days)
            for at in range(0, len(summary), PREDICT_ROWS)
        ]
    )


def _predict_rows(fitted: Fitted, summary: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """:func:`predict` for one batch of buyers."""
    out = pd.DataFrame(index=summary.index)
    if fitted.purchases is None or not len(summary):
        for column in (
            "p_active",
            "expected_purchases",
            "p_buys",
            "expected_spend",
            "expected_revenue",
        ):
            out[column] = np.nan
        return out
    data = _model_frame(summary, ("frequency", "recency", "T"))
    model = fitted.purchases
    with _quiet():
        # a buyer seen on the last day can come out a rounding error above 1
        out["p_active"] = np.clip(_values(model.expected_probability_alive(data)), 0.0, 1.0)
        out["expected_purchases"] = _values(model.expected_purchases(data, future_t=horizon_days))
        none = _values(
            model.expected_purchase_probability(data, n_purchases=0, future_t=horizon_days)
        )
    out["p_buys"] = np.clip(1.0 - none, 0.0, 1.0)
    if fitted.spend is not None:
        spend = summary[["frequency", "monetary_value"]].copy()
        # a buyer without a priced repeat purchase gets the population's mean spend: the
        # Gamma-Gamma's estimate for a buyer with no repeat purchase (its weight on them is 0)
        unknown = spend["monetary_value"].isna() | (spend["monetary_value"] <= 0)
        spend.loc[unknown, ["frequency", "monetary_value"]] = [0.0, 0.0]
        with _quiet():
            out["expected_spend"] = _values(
                fitted.spend.expected_customer_spend(
                    _model_frame(spend, ("frequency", "monetary_value"))
                )
            )
        out["expected_revenue"] = out["expected_purchases"] * out["expected_spend"]
    else:
        out["expected_spend"] = np.nan
        out["expected_revenue"] = np.nan
    return out


def next_purchase_due(summary: pd.DataFrame, p_active: pd.Series, reference: datetime) -> pd.Series:
    """The day a regular buyer's next purchase is due: their last purchase day plus their
    usual gap (the mean days between their purchase days), for buyers with at least
    :data:`REGULAR_PURCHASES` purchase days whose gaps vary by at most :data:`REGULAR_CV` of their
    mean, who are probably still active (``p_active`` at least :data:`REGULAR_P_ACTIVE`) and were
    last seen within :data:`REGULAR_OVERDUE` usual gaps of the reference date. NaT otherwise.
    A date before the reference date means the buyer is overdue."""
    gap = summary["gap_mean"]
    since = (pd.Timestamp(reference).normalize() - summary["last_purchase"]).dt.days
    regular = (
        (summary["frequency"] + 1 >= REGULAR_PURCHASES)
        & (gap > 0)
        & (summary["gap_sd"] <= REGULAR_CV * gap)
        & (p_active.reindex(summary.index) >= REGULAR_P_ACTIVE)
        & (since <= REGULAR_OVERDUE * gap)
    )
    due = summary["last_purchase"] + pd.to_timedelta(gap.round(), unit="D")
    return due.where(regular)


def buyer_forecast(
    fitted: Fitted, summary: pd.DataFrame, horizon_days: int, reference: datetime
) -> pd.DataFrame:
    """Per buyer of ``summary``: :func:`predict`'s columns and ``next_purchase_due``. A buyer's
    row is a formula of that buyer's summary row and the fitted parameters, so the Spark engine
    runs this on each partition of buyers (personas.spark.forecast)."""
    predicted = predict(fitted, summary, horizon_days)
    predicted["next_purchase_due"] = (
        next_purchase_due(summary, predicted["p_active"], reference)
        if fitted.purchases is not None
        else pd.NaT
    )
    return predicted


def user_forecast(
    fitted: Fitted, summary: pd.DataFrame, users: pd.Index, horizon_days: int, reference: datetime
) -> pd.DataFrame:
    """The forecast columns for every user in ``users`` (:data:`COLUMNS`, plus ``p_buys``),
    NaN/NaT for users with no purchase history."""
    predicted = buyer_forecast(fitted, summary, horizon_days, reference)
    return predicted.reindex(pd.Index(users, name="user_id"))


# -- the check on held-out days --------------------------------------------------------------------


def _errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    total, real = float(predicted.sum()), float(actual.sum())
    return {
        "total": round(total, 1),
        "error_share": round((total - real) / real, 4) if real else None,
        "mae": round(float(np.mean(np.abs(predicted - actual))), 4),
        "rmse": round(float(np.sqrt(np.mean((predicted - actual) ** 2))), 4),
    }


def validate(
    calibration: pd.DataFrame,
    actual: pd.DataFrame,
    holdout_days: int,
    cutoff: datetime,
    random_state: int = 0,
    sample: int = FIT_SAMPLE,
) -> dict:
    """Fit on ``calibration`` (the purchase summary up to ``cutoff``) and compare, per buyer, the
    purchase days predicted for the next ``holdout_days`` with ``actual`` (:func:`holdout_actuals`),
    next to the naive forecast (frequency / T, the buyer's past repeat rate, times the days) and to
    predicting zero; also per decile of predicted value (expected revenue, else purchases).

    Buyers whose first purchase falls in the held-out days are not forecast (the models predict
    buyers they have seen) and are counted apart.
    """
    fitted = fit(calibration, random_state, sample)
    record: dict[str, Any] = {
        "holdout_days": holdout_days,
        "calibration_end": str(pd.Timestamp(cutoff).date()),
        "buyers": len(calibration),
    }
    new = actual.index.difference(calibration.index)
    record["new_buyers_in_holdout"] = {
        "users": int(len(new)),
        "purchases": float(actual.loc[new, "purchases"].sum()),
    }
    if fitted.purchases is None:
        record["reason"] = fitted.reason
        return record
    predicted = predict(fitted, calibration, holdout_days)
    real = actual.reindex(calibration.index)
    purchases = real["purchases"].fillna(0.0).to_numpy()
    model = predicted["expected_purchases"].to_numpy()
    T = calibration["T"].to_numpy()
    naive = (
        np.where(T > 0, calibration["frequency"].to_numpy() / np.where(T > 0, T, 1), 0.0)
        * holdout_days
    )
    record["actual_purchases"] = float(purchases.sum())
    record["model"] = _errors(model, purchases)
    record["naive"] = _errors(naive, purchases)
    record["zero"] = _errors(np.zeros_like(purchases), purchases)
    has_revenue = fitted.spend is not None
    record["revenue"] = None
    if has_revenue:
        revenue = real["revenue"].fillna(0.0).to_numpy()
        record["revenue"] = {
            "actual": round(float(revenue.sum()), 2),
            "model": _errors(predicted["expected_revenue"].to_numpy(), revenue),
        }
    value = predicted["expected_revenue" if has_revenue else "expected_purchases"].to_numpy()
    order = np.argsort(-value, kind="stable")
    rows = []
    for d, part in enumerate(np.array_split(order, DECILES), start=1):
        if not len(part):
            continue
        row = {
            "decile": d,
            "users": int(len(part)),
            "predicted_purchases": round(float(model[part].sum()), 1),
            "naive_purchases": round(float(naive[part].sum()), 1),
            "actual_purchases": float(purchases[part].sum()),
        }
        if has_revenue:
            row["predicted_revenue"] = round(float(value[part].sum()), 2)
            row["actual_revenue"] = round(
                float(real["revenue"].fillna(0.0).to_numpy()[part].sum()), 2
            )
        rows.append(row)
    record["deciles_by"] = "expected revenue" if has_revenue else "expected purchases"
    record["deciles"] = rows
    record["verdict"] = verdict(record)
    return record


def verdict(record: dict) -> str:
    """How far to trust the forecast, in one sentence from the held-out check's figures."""
    model, naive, zero = record["model"], record["naive"], record["zero"]
    off = model["error_share"]
    if off is None:
        return "Nobody bought in the held-out days, so the forecast could not be checked."
    better = model["mae"] < naive["mae"] and model["mae"] < zero["mae"]
    size = abs(off)
    close = "close" if size <= 0.15 else "roughly right" if size <= 0.3 else "far off"
    per = (
        "and per buyer it beats both the naive forecast and predicting zero"
        if better
        else "but per buyer it does not beat both the naive forecast and predicting zero"
    )
    return (
        f"In total the forecast was {close} ({'+' if off >= 0 else ''}{off * 100:.0f} % "
        f"against what happened), {per}."
    )


# -- per persona -----------------------------------------------------------------------------------


PERSONA_SUMS = (
    "users",
    "buyers",
    "p_active",
    "expected_purchases",
    "expected_revenue",
    "p_buys",
    "regular_buyers",
    "due_first",
    "due_last",
)


def persona_forecasts(
    forecast: pd.DataFrame, labels: np.ndarray, horizon_days: int, reference: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """Per persona id: users, buyers (users with a purchase history), the predicted churn rate
    (mean of 1 - p_active over its buyers), expected purchases and revenue over the horizon
    (its buyers' sum, per user of the persona and per buyer), the share of all expected revenue
    (of purchases without amounts), the share of its users predicted to buy in the horizon
    (users without a history counted as not buying) and its regular buyers due by the end of
    the horizon (overdue ones included), with the first and last of their due dates.

    The figures come from a row of sums per persona (:data:`PERSONA_SUMS`,
    :func:`persona_figures`), which the Spark engine computes as an aggregate instead."""
    frame = forecast.assign(persona_id=np.asarray(labels))
    due = frame["next_purchase_due"]
    if reference is not None:
        due = due.where(due <= due_by(reference, horizon_days))
    frame = frame.assign(due=due)
    rows = {}
    for pid, group in frame.groupby("persona_id"):
        rows[int(pid)] = {
            "users": len(group),
            "buyers": int(group["p_active"].notna().sum()),
            **{c: float(group[c].sum()) for c in ("p_active", "expected_purchases", "p_buys")},
            "expected_revenue": float(group["expected_revenue"].sum()),
            "regular_buyers": int(group["due"].notna().sum()),
            "due_first": group["due"].min(),
            "due_last": group["due"].max(),
        }
    sums = pd.DataFrame.from_dict(rows, orient="index", columns=list(PERSONA_SUMS))
    return persona_figures(sums, horizon_days, bool(frame["expected_revenue"].notna().any()))


def due_by(reference: datetime, horizon_days: int) -> pd.Timestamp:
    """The last day a regular buyer's due date counts in a persona's figures: the horizon's end."""
    return pd.Timestamp(reference).normalize() + pd.Timedelta(days=horizon_days)


def persona_figures(
    sums: pd.DataFrame, horizon_days: int, has_revenue: bool
) -> dict[int, dict[str, Any]]:
    """:func:`persona_forecasts`' figures from ``sums``, a row per persona id of
    :data:`PERSONA_SUMS` (sums over the persona's buyers; missing values left out)."""
    total_revenue = float(sums["expected_revenue"].sum())
    total_purchases = float(sums["expected_purchases"].sum())
    out = {}
    for pid, row in sums.iterrows():
        n, b = int(row["users"]), int(row["buyers"])
        revenue = float(row["expected_revenue"]) if has_revenue else None
        purchases = float(row["expected_purchases"])
        due = int(row["regular_buyers"])
        out[int(pid)] = {
            "horizon_days": horizon_days,
            "users": n,
            "buyers": b,
            "churn_rate": float(1 - row["p_active"] / b) if b else None,
            "expected_purchases": purchases if b else None,
            "expected_purchases_per_user": purchases / n if b else None,
            "expected_revenue": revenue if b else None,
            "expected_revenue_per_user": revenue / n if b and revenue is not None else None,
            "expected_revenue_per_buyer": revenue / b if b and revenue is not None else None,
            "expected_revenue_share": (
                revenue / total_revenue if b and revenue is not None and total_revenue else None
            ),
            "expected_purchases_share": (
                purchases / total_purchases if b and total_purchases else None
            ),
            "buying_share": float(row["p_buys"] / n) if b else None,
            "regular_buyers": due,
            "due_dates": (
                [
                    str(pd.Timestamp(row["due_first"]).date()),
                    str(pd.Timestamp(row["due_last"]).date()),
                ]
                if due
                else None
            ),
        }
    return out


# -- how many users an A/B test needs --------------------------------------------------------------

POWER = 0.8
ALPHA = 0.05
TEST_LIFT = 0.10  # the effect each suggested test is sized for: a 10 % relative rise


def users_per_arm(
    baseline: float, lift: float = TEST_LIFT, power: float = POWER, alpha: float = ALPHA
) -> int | None:
    """Users per arm (two equal arms, two-sided test at ``alpha``) to detect a rise of the share
    ``baseline`` to ``baseline * (1 + lift)`` with ``power`` (statsmodels: Cohen's h and the
    normal power of two independent samples). None when the share cannot rise so (0 or near 1).

    Examples
    --------
    >>> users_per_arm(0.30)
    3762
    """
    target = baseline * (1 + lift)
    if not 0 < baseline < 1 or target >= 1:
        return None
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    effect = abs(proportion_effectsize(target, baseline))
    n = NormalIndPower().solve_power(
        effect_size=effect, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    return int(math.ceil(n))


# -- the pipeline's use ----------------------------------------------------------------------------

PURCHASES = "purchases.parquet"  # the purchase summary up to the reference date
CALIBRATION = "purchases_calibration.parquet"  # ... up to the reference date less holdout_days
HOLDOUT = "purchases_holdout.parquet"  # purchases in the held-out days, per buyer


def purchase_tables(con, reference: datetime, cutoff: datetime | None = None) -> dict:
    """The purchase summaries of the log loaded in ``con`` (its ``kept`` rows,
    :func:`purchase_rows`) by the file name they are staged under: up to ``reference`` and, with
    a ``cutoff`` (:func:`calibration_cutoff`), up to it and the purchases after it. Each buyer's
    rows depend on that buyer's events only, so the Spark engine runs this on each partition of
    users (:mod:`personas.spark.purchases`): one definition for both engines."""
    source = purchase_rows(con)
    frames = {PURCHASES: purchase_summary(con, reference, source)}
    if cutoff is not None:
        frames[CALIBRATION] = purchase_summary(con, cutoff, source)
        frames[HOLDOUT] = holdout_actuals(con, cutoff, reference, source)
    return frames


def calibration_cutoff(params, reference: datetime, start: str | None) -> datetime | None:
    """The end of the held-out check's calibration (None without ``holdout_days``), the data's
    first event kept being ``start``. Raises ParameterError when it leaves no day to fit on."""
    from .errors import ParameterError

    if not params.holdout_days:
        return None
    cutoff = holdout_cutoff(reference, params.holdout_days)
    first = pd.Timestamp(start) if start else None
    if first is None or cutoff < first.normalize():
        span = ((pd.Timestamp(reference) - first).days + 1) if first is not None else 0
        raise ParameterError(
            f"parameter holdout_days={params.holdout_days} leaves no days to fit the forecast "
            f"on: the data spans {span} days; hold out fewer days (at most about half the "
            "window is sensible) or set holdout_days=0",
            name="holdout_days",
        )
    return cutoff


def purchase_record(reference: datetime, buyers: int, cutoff: datetime | None) -> dict[str, Any]:
    """What the features step computed for the forecast, for the run's state."""
    record: dict[str, Any] = {"reference": str(reference), "buyers": buyers}
    if cutoff is not None:
        record["calibration_end"] = str(cutoff.date())
    return record


def purchase_history(log, params) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The features step's part: the purchase summaries the forecast needs (the loaded log is
    gone by the report step), by the file name they are staged under, and what was computed,
    for the run's state.

    Raises ParameterError when ``holdout_days`` leaves no day to fit on.
    """
    reference = log.reference
    cutoff = calibration_cutoff(params, reference, log.counts.get("start"))
    frames = purchase_tables(log.con, reference, cutoff)
    return frames, purchase_record(reference, len(frames[PURCHASES]), cutoff)


def read_purchases(path) -> pd.DataFrame:
    """A staged purchase table (a file, or the Spark engine's dataset of parts) indexed by
    ``user_id``, sorted by it, as :func:`purchase_summary` or :func:`holdout_actuals` gave it."""
    return normal_purchases(pd.read_parquet(path))


def normal_purchases(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of a purchase table (``user_id`` a column or the index; ``last_purchase`` dates or
    times) as :func:`purchase_summary` or :func:`holdout_actuals` gives them."""
    if "user_id" in frame.columns:
        frame = frame.set_index("user_id")
    frame.index = frame.index.astype(str)
    if "last_purchase" in frame.columns:
        frame["last_purchase"] = pd.to_datetime(frame["last_purchase"]).astype("datetime64[ns]")
    return frame.sort_index()


@dataclass
class RunForecast:
    """What the report step gets: per-user columns, per-persona figures and the record for
    run.json (``info``, the held-out check under ``info["holdout"]``)."""

    users: pd.DataFrame  # index user_id: COLUMNS + p_buys
    personas: dict[int, dict[str, Any]]
    info: dict[str, Any]

    @property
    def available(self) -> bool:
        return not self.info.get("reason")


def run_forecast(stage, params, state: dict, users: pd.Index, labels: np.ndarray) -> RunForecast:
    """Fit, predict every user of ``users`` (persona ``labels``), check on held-out days when
    asked; from the summaries of :func:`purchase_history` staged in ``stage``."""
    reference = pd.Timestamp(state["purchases"]["reference"]).to_pydatetime()
    summary = read_purchases(stage / PURCHASES)
    fitted = fit(summary, params.random_state)
    per_user = user_forecast(fitted, summary, users, params.horizon_days, reference)
    totals = None
    if fitted.purchases is not None:
        revenue = per_user["expected_revenue"]
        totals = {
            "expected_purchases": float(per_user["expected_purchases"].sum()),
            "expected_revenue": float(revenue.sum()) if revenue.notna().any() else None,
            "regular_buyers_due": int(per_user["next_purchase_due"].notna().sum()),
        }
    info = forecast_info(stage, params, state, fitted, len(users), totals)
    personas = (
        persona_forecasts(per_user, labels, params.horizon_days, reference)
        if fitted.purchases is not None
        else {}
    )
    return RunForecast(per_user, personas, info)


def forecast_info(
    stage, params, state: dict, fitted: Fitted, users: int, totals: dict | None
) -> dict[str, Any]:
    """The forecast's record for run.json: the fit, the ``totals`` over every buyer (expected
    purchases, expected revenue or None, regular buyers due; None without a fit) and, with
    ``holdout_days``, the held-out check (:func:`validate`, on the buyers' rows of the staged
    calibration and holdout tables: its deciles rank every buyer)."""
    record = state["purchases"]
    reference = pd.Timestamp(record["reference"]).to_pydatetime()
    info: dict[str, Any] = {
        "model": "Pareto/NBD (purchases and dropout) and Gamma-Gamma (spend), pymc-marketing, MAP",
        "horizon_days": params.horizon_days,
        "reference_date": str(reference.date()),
        "buyers": fitted.buyers,
        "users_without_purchase_history": int(users - fitted.buyers),
        "fitted_on_buyers": fitted.fitted_on,
        "fit_sample": FIT_SAMPLE,
        "parameters": fitted.parameters,
        "reason": fitted.reason,
        "revenue_reason": fitted.spend_reason,
        "regular_buyer": {
            "purchase_days_at_least": REGULAR_PURCHASES,
            "gap_sd_at_most_share_of_mean": REGULAR_CV,
            "p_active_at_least": REGULAR_P_ACTIVE,
            "last_seen_within_gaps": REGULAR_OVERDUE,
        },
    }
    if totals is not None:
        info["expected_purchases"] = round(totals["expected_purchases"], 1)
        revenue = totals["expected_revenue"]
        info["expected_revenue"] = round(revenue, 2) if revenue is not None else None
        info["regular_buyers_due"] = totals["regular_buyers_due"]
    info["holdout"] = None
    if params.holdout_days:
        info["holdout"] = validate(
            read_purchases(stage / CALIBRATION),
            read_purchases(stage / HOLDOUT),
            params.holdout_days,
            pd.Timestamp(record["calibration_end"]).to_pydatetime(),
            params.random_state,
        )
    return info


def assignment_columns(forecast: RunForecast | None, users: pd.Index) -> pd.DataFrame:
    """The four columns assignments.* gain, in the order of ``users``: p_active,
    expected_purchases, expected_revenue (rounded) and next_purchase_due (ISO date text);
    empty for users with no purchase history or without a forecast."""
    if forecast is None:
        frame = pd.DataFrame(index=users, columns=list(COLUMNS), dtype="float64")
        frame["next_purchase_due"] = None
        return frame
    return assignment_frame(forecast.users.reindex(users))


def assignment_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`assignment_columns` of forecast rows ``frame`` (:func:`buyer_forecast`'s columns),
    in its order: the Spark engine's executors format each buyer's row with it too."""
    return pd.DataFrame(
        {
            "p_active": frame["p_active"].round(4),
            "expected_purchases": frame["expected_purchases"].round(4),
            "expected_revenue": frame["expected_revenue"].round(2),
            "next_purchase_due": frame["next_purchase_due"].dt.strftime("%Y-%m-%d"),
        },
        index=frame.index,
    )
