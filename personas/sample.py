"""Synthetic e-commerce event log with planted behavioural personas and their ground truth.

:func:`make_events` draws a year of GA4-style events (``page_view``, ``view_item``, ``search``,
``add_to_cart``, ``begin_checkout``, ``purchase``, ``email_open``, ``email_click``) for users of
the personas in :data:`PERSONAS`; :func:`write_sample` saves such a log and its truth to disk.
``mix="holdout"`` draws a second, different cast (:data:`HOLDOUT_PERSONAS`: app-first users,
one-time buyers, power users, at-risk customers, deal seekers, window shoppers), kept apart so
naming rules can be checked on personas they were not written against. :data:`FAMILIES` says
which naming families describe each planted persona truthfully. ``period=2`` draws the same shop
a year later: the same users moved between personas by :data:`TRANSITIONS` (cart abandoners
turning buyers, big spenders lapsing, lapsed users gone), and new ones, so two periods' truths
give the moves a migration between two runs should find.

How a log is drawn, all vectorised with one ``np.random.default_rng(seed)``:

1. users get a persona (exact shares, shuffled) and their own parameters: the persona's row of
   :data:`_PLANTED` with per-user noise (lognormal intensities, logit-normal probabilities), so
   personas overlap; ``noise`` users take every parameter from an independently drawn persona;
2. each user gets site sessions and email sessions (Poisson counts of a lognormal rate per 30
   active days) at a day of their active window and an hour of a diurnal profile, some moved onto
   a weekend;
3. each session gets its events: an email session is ``email_open`` (then maybe ``email_click``
   and a landing), a site session a landing ``page_view``; then browsing (page views, product
   views, searches), maybe ``view_item``/``add_to_cart`` pairs, ``begin_checkout`` and
   ``purchase`` -- in funnel order;
4. events are seconds to minutes apart (at most 15 minutes), and sessions of one user are pushed
   apart so at least 31 minutes separate them: cutting a user's events at 30 minutes of silence
   recovers the sessions exactly.

Why it is long: the planted casts (:data:`PERSONAS`, :data:`HOLDOUT_PERSONAS`,
:data:`TRANSITIONS`, :data:`FAMILIES`) are data written out in full, so a reader sees what each
planted persona does; the vectorised generator itself is the second half.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ParameterError

__all__ = [
    "CASTS",
    "FAMILIES",
    "GONE",
    "HOLDOUT_PERSONAS",
    "MIXES",
    "NEW_USERS_SHARE",
    "PERSONAS",
    "TRANSITIONS",
    "Archetype",
    "Cast",
    "make_events",
    "write_sample",
]


@dataclass(frozen=True)
class Archetype:
    """How one planted persona behaves; every user draws their own values around these."""

    share: float  # fraction of users
    first_day: tuple[int, int]  # first active day, uniform in [lo, hi]; 0 = window start
    last_day: tuple[int, int]  # end of activity (exclusive day), uniform in [lo, hi]
    sessions: float  # median site sessions per 30 active days
    spread: float  # lognormal sigma of the per-user session/email rates
    depth: float  # mean browsing events per site session
    mix: tuple[float, float, float]  # browsing split: page_view, view_item, search
    cart: float  # P(a session without purchase adds to cart)
    basket: float  # mean add_to_cart events in a cart session (>= 1)
    checkout: float  # P(a cart session without purchase begins checkout)
    buy: float  # P(a site session ends in a purchase)
    aov: float  # median order value, before category price and discount
    discount: float  # P(an order uses a discount code)
    emails: float  # median marketing emails opened per 30 active days
    click: float  # P(an opened email is clicked)
    email_buy: float  # P(a clicked email leads to a purchase in that session)
    app: float  # share of sessions on the app (rest: web)
    weekend: float  # P(a site session is moved onto a weekend day)
    max_sessions: int = 100_000  # cap on site sessions


# The planted personas, in the order of PERSONAS. 'noise' (the last persona) has no row: each of
# its users copies every parameter from an independently drawn planted persona, with wider noise.
_PLANTED: dict[str, Archetype] = {
    # many long browsing sessions all year, weekend-heavy, almost never buys
    "frequent_browser": Archetype(
        share=0.18,
        first_day=(0, 150),
        last_day=(320, 365),
        sessions=1.9,
        spread=0.6,
        depth=6.5,
        mix=(0.35, 0.45, 0.20),
        cart=0.04,
        basket=1.2,
        checkout=0.15,
        buy=0.006,
        aov=60,
        discount=0.30,
        emails=0.8,
        click=0.10,
        email_buy=0.005,
        app=0.60,
        weekend=0.25,
    ),
    # regular visits all year up to now, buys in a large share of them, big baskets, full price
    "loyal_big_spender": Archetype(
        share=0.10,
        first_day=(0, 60),
        last_day=(365, 365),
        sessions=2.2,
        spread=0.45,
        depth=4.0,
        mix=(0.30, 0.60, 0.10),
        cart=0.25,
        basket=2.0,
        checkout=0.30,
        buy=0.40,
        aov=195,
        discount=0.08,
        emails=2.0,
        click=0.30,
        email_buy=0.15,
        app=0.55,
        weekend=0.05,
    ),
    # moderate activity, small discounted orders, clicks promotional emails
    "bargain_hunter": Archetype(
        share=0.15,
        first_day=(0, 180),
        last_day=(300, 365),
        sessions=1.1,
        spread=0.5,
        depth=5.0,
        mix=(0.35, 0.45, 0.20),
        cart=0.30,
        basket=1.5,
        checkout=0.25,
        buy=0.20,
        aov=36,
        discount=0.82,
        emails=2.2,
        click=0.60,
        email_buy=0.20,
        app=0.50,
        weekend=0.25,
    ),
    # fills carts and starts checkouts, rarely pays
    "cart_abandoner": Archetype(
        share=0.14,
        first_day=(0, 180),
        last_day=(300, 365),
        sessions=1.3,
        spread=0.5,
        depth=6.0,
        mix=(0.30, 0.60, 0.10),
        cart=0.65,
        basket=2.2,
        checkout=0.35,
        buy=0.03,
        aov=80,
        discount=0.25,
        emails=1.2,
        click=0.20,
        email_buy=0.02,
        app=0.50,
        weekend=0.10,
    ),
    # first seen in the last 30 days, 1-4 short sessions
    "new_visitor": Archetype(
        share=0.12,
        first_day=(335, 364),
        last_day=(365, 365),
        sessions=4.0,
        spread=0.5,
        depth=3.0,
        mix=(0.50, 0.35, 0.15),
        cart=0.12,
        basket=1.2,
        checkout=0.25,
        buy=0.05,
        aov=55,
        discount=0.40,
        emails=1.0,
        click=0.20,
        email_buy=0.02,
        app=0.40,
        weekend=0.10,
        max_sessions=4,
    ),
    # ordinary buyers in the first 40% of the window, then gone
    "lapsed": Archetype(
        share=0.13,
        first_day=(0, 30),
        last_day=(90, 146),
        sessions=2.5,
        spread=0.5,
        depth=5.0,
        mix=(0.35, 0.50, 0.15),
        cart=0.20,
        basket=1.5,
        checkout=0.30,
        buy=0.35,
        aov=70,
        discount=0.25,
        emails=1.5,
        click=0.20,
        email_buy=0.05,
        app=0.45,
        weekend=0.10,
    ),
    # opens and clicks most emails, little browsing, buys after an email click
    "email_engaged": Archetype(
        share=0.08,
        first_day=(0, 120),
        last_day=(350, 365),
        sessions=0.6,
        spread=0.5,
        depth=3.0,
        mix=(0.45, 0.45, 0.10),
        cart=0.10,
        basket=1.3,
        checkout=0.20,
        buy=0.03,
        aov=65,
        discount=0.35,
        emails=4.5,
        click=0.70,
        email_buy=0.10,
        app=0.35,
        weekend=0.05,
    ),
}
_NOISE_SHARE = 0.10

PERSONAS: tuple[str, ...] = (*_PLANTED, "noise")
"""Planted persona keys, in a fixed order, ``'noise'`` last."""

# A held-out cast, never used to write the naming rules: other personas, and the shared kinds
# (deal seekers, browsers) at other intensities. Same fields and noise mechanism as _PLANTED.
_HOLDOUT: dict[str, Archetype] = {
    # most visits in the app: many short sessions, few e-mails (reached by push instead)
    "app_first": Archetype(
        share=0.15,
        first_day=(0, 200),
        last_day=(330, 365),
        sessions=3.5,
        spread=0.5,
        depth=2.5,
        mix=(0.30, 0.55, 0.15),
        cart=0.15,
        basket=1.3,
        checkout=0.30,
        buy=0.06,
        aov=50,
        discount=0.30,
        emails=0.3,
        click=0.15,
        email_buy=0.02,
        app=0.96,
        weekend=0.15,
    ),
    # one site visit that ends in an order, at any time of the year, then never again
    "one_time_buyer": Archetype(
        share=0.16,
        first_day=(0, 300),
        last_day=(301, 365),
        sessions=1.0,
        spread=0.3,
        depth=4.0,
        mix=(0.30, 0.60, 0.10),
        cart=0.30,
        basket=1.4,
        checkout=0.30,
        buy=0.85,
        aov=70,
        discount=0.30,
        emails=0.05,
        click=0.10,
        email_buy=0.001,
        app=0.35,
        weekend=0.20,
        max_sessions=1,
    ),
    # here all year, many long sessions, buys a lot at ordinary prices
    "power_user": Archetype(
        share=0.10,
        first_day=(0, 60),
        last_day=(355, 365),
        sessions=7.0,
        spread=0.4,
        depth=10.0,
        mix=(0.30, 0.55, 0.15),
        cart=0.35,
        basket=1.8,
        checkout=0.30,
        buy=0.25,
        aov=75,
        discount=0.20,
        emails=2.0,
        click=0.30,
        email_buy=0.05,
        app=0.45,
        weekend=0.20,
    ),
    # good regular buyers for most of the year who stopped 3 to 5 months before its end
    "at_risk": Archetype(
        share=0.15,
        first_day=(0, 90),
        last_day=(220, 280),
        sessions=2.5,
        spread=0.45,
        depth=5.0,
        mix=(0.30, 0.55, 0.15),
        cart=0.25,
        basket=1.6,
        checkout=0.30,
        buy=0.35,
        aov=90,
        discount=0.15,
        emails=1.2,
        click=0.25,
        email_buy=0.05,
        app=0.40,
        weekend=0.10,
    ),
    # buys small baskets almost only with a code; visits more and mails less than bargain_hunter
    "deal_seeker": Archetype(
        share=0.14,
        first_day=(0, 150),
        last_day=(320, 365),
        sessions=2.0,
        spread=0.5,
        depth=4.5,
        mix=(0.35, 0.45, 0.20),
        cart=0.30,
        basket=1.5,
        checkout=0.25,
        buy=0.22,
        aov=28,
        discount=0.92,
        emails=0.6,
        click=0.40,
        email_buy=0.10,
        app=0.40,
        weekend=0.30,
    ),
    # long sessions of product views, hardly any searches, carts or orders
    "window_shopper": Archetype(
        share=0.20,
        first_day=(0, 200),
        last_day=(330, 365),
        sessions=1.5,
        spread=0.55,
        depth=9.0,
        mix=(0.30, 0.65, 0.05),
        cart=0.03,
        basket=1.1,
        checkout=0.10,
        buy=0.004,
        aov=60,
        discount=0.30,
        emails=0.6,
        click=0.08,
        email_buy=0.003,
        app=0.35,
        weekend=0.35,
    ),
}

HOLDOUT_PERSONAS: tuple[str, ...] = (*_HOLDOUT, "noise")
"""Planted persona keys of ``mix="holdout"``, in a fixed order, ``'noise'`` last."""

MIXES: dict[str, tuple[str, ...]] = {"default": PERSONAS, "holdout": HOLDOUT_PERSONAS}
"""Persona keys of every mix :func:`make_events` can draw."""


@dataclass(frozen=True)
class Cast:
    """The planted personas of a log and the share of noise users (who copy every parameter
    from an independently drawn persona, so they belong to none)."""

    archetypes: dict[str, Archetype]
    noise_share: float = 0.10

    @property
    def keys(self) -> tuple[str, ...]:
        """Persona keys in order, ``'noise'`` last."""
        return (*self.archetypes, "noise")


CASTS: dict[str, Cast] = {"default": Cast(_PLANTED, _NOISE_SHARE), "holdout": Cast(_HOLDOUT, 0.10)}
"""The named casts :func:`make_events` draws by ``mix``."""

FAMILIES: dict[str, frozenset[str]] = {
    # default mix
    "frequent_browser": frozenset({"browser"}),
    "loyal_big_spender": frozenset({"champion", "power"}),
    "bargain_hunter": frozenset({"deal_seeker"}),
    "cart_abandoner": frozenset({"cart_abandoner"}),
    "new_visitor": frozenset({"new"}),
    "lapsed": frozenset({"lapsed", "at_risk"}),
    "email_engaged": frozenset({"email"}),
    # holdout mix
    "app_first": frozenset({"app"}),
    "one_time_buyer": frozenset({"one_time"}),
    "power_user": frozenset({"power"}),
    "at_risk": frozenset({"at_risk", "lapsed"}),
    "deal_seeker": frozenset({"deal_seeker"}),
    "window_shopper": frozenset({"browser"}),
}
"""Planted persona -> the naming-rule families (``family`` in rules.yaml) that describe it
truthfully. Recency neighbours (lapsed / at risk) accept each other; noise has no family."""

# A year later: where each planted persona's users are, as probabilities over the default
# cast's keys and "(gone)" (no events that year). Rows sum to 1. Cart abandoners turning buyers,
# loyal big spenders lapsing, new visitors settling into a habit or leaving, lapsed users mostly
# gone: the moves a lifecycle marketer watches for.
GONE = "(gone)"
TRANSITIONS: dict[str, dict[str, float]] = {
    "frequent_browser": {
        "frequent_browser": 0.70,
        "cart_abandoner": 0.12,
        "lapsed": 0.08,
        GONE: 0.10,
    },
    "loyal_big_spender": {
        "loyal_big_spender": 0.75,
        "lapsed": 0.12,
        "bargain_hunter": 0.05,
        GONE: 0.08,
    },
    "bargain_hunter": {
        "bargain_hunter": 0.65,
        "loyal_big_spender": 0.10,
        "lapsed": 0.10,
        GONE: 0.15,
    },
    "cart_abandoner": {
        "cart_abandoner": 0.55,
        "loyal_big_spender": 0.18,
        "bargain_hunter": 0.10,
        "lapsed": 0.07,
        GONE: 0.10,
    },
    "new_visitor": {
        "bargain_hunter": 0.25,
        "cart_abandoner": 0.20,
        "frequent_browser": 0.15,
        "loyal_big_spender": 0.05,
        "lapsed": 0.15,
        GONE: 0.20,
    },
    "lapsed": {
        "lapsed": 0.10,
        "bargain_hunter": 0.10,
        "loyal_big_spender": 0.05,
        "email_engaged": 0.05,
        GONE: 0.70,
    },
    "email_engaged": {"email_engaged": 0.70, "bargain_hunter": 0.10, "lapsed": 0.10, GONE: 0.10},
    "noise": {"noise": 0.80, GONE: 0.20},
}
"""Planted persona (default mix) -> where its users are a year later (:func:`make_events`'s
``period``), with ``"(gone)"`` for users without any event that year."""
NEW_USERS_SHARE = 0.20
"""New users each later period, as a share of ``n_users``; they take the default cast's shares."""
MAX_PERIOD = 20

_WINDOW_DAYS = 365
_DAY_S = 86_400
_SESSION_GAP_S = 31 * 60  # least silence between two sessions of one user
_MAX_STEP_S = 15 * 60  # most silence between two events of one session
_STEP_MEDIAN_S = 25.0  # median seconds between two events of one session
_MAX_BODY = 80  # most browsing events in one session

EVENT_NAMES = (  # the GA4-style names make_events writes, in the order of their codes
    "page_view",
    "view_item",
    "search",
    "add_to_cart",
    "begin_checkout",
    "purchase",
    "email_open",
    "email_click",
)
_PV, _VI, _SEARCH, _ATC, _CHECKOUT, _PURCHASE, _OPEN, _CLICK = range(len(EVENT_NAMES))

# category: (popularity, price factor)
_CATEGORIES: dict[str, tuple[float, float]] = {
    "apparel": (0.16, 0.9),
    "shoes": (0.11, 1.1),
    "electronics": (0.10, 1.8),
    "home": (0.10, 1.2),
    "beauty": (0.10, 0.7),
    "sports": (0.08, 1.1),
    "toys": (0.07, 0.8),
    "books": (0.06, 0.5),
    "grocery": (0.07, 0.5),
    "jewelry": (0.04, 1.6),
    "garden": (0.05, 1.0),
    "pets": (0.06, 0.7),
}

# relative activity per hour of the day (UTC): quiet nights, evening peak; emails read mornings too
_SITE_HOURS = (
    1.0,
    0.6,
    0.35,
    0.25,
    0.25,
    0.4,
    0.9,
    1.6,
    2.4,
    2.9,
    3.1,
    3.3,
    3.6,
    3.4,
    3.2,
    3.3,
    3.6,
    4.1,
    4.9,
    5.8,
    6.4,
    6.2,
    4.8,
    2.6,
)
_EMAIL_HOURS = (
    0.5,
    0.3,
    0.2,
    0.2,
    0.2,
    0.4,
    1.5,
    3.5,
    5.0,
    4.5,
    3.5,
    3.0,
    3.2,
    2.8,
    2.5,
    2.5,
    2.6,
    2.8,
    3.2,
    3.6,
    3.8,
    3.4,
    2.4,
    1.2,
)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------
def make_events(
    n_users: int = 5000,
    seed: int = 0,
    end: str = "2024-12-31",
    mix: str | Cast = "default",
    period: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw a synthetic e-commerce event log with planted personas.

    Parameters
    ----------
    n_users : int, default 5000
        Number of users; each has at least one event.
    seed : int, default 0
        Seed of the only random generator used: same ``(n_users, seed, end)``, same frames.
    end : str, default "2024-12-31"
        Last day of the log; events lie in the 365 days ending with it (naive UTC).
    mix : {"default", "holdout"} or Cast, default "default"
        Which cast of planted personas to draw: :data:`PERSONAS`, :data:`HOLDOUT_PERSONAS`, or
        a :class:`Cast` of your own (:mod:`personas.worlds` draws random ones).
    period : int, default 1
        Which year of the same shop (default mix only): 1 is the year ending ``end``; period 2
        the 365 days after it, with the users of period 1 moved between personas by
        :data:`TRANSITIONS` (some to ``"(gone)"``: no events that year) and new users
        (:data:`NEW_USERS_SHARE` of ``n_users``, ids after the earlier periods' ones); period 3
        the year after that, and so on. Every period of one ``(n_users, seed)`` draws the same
        users in its earlier periods, so the truths of two periods give the planted moves.

    Returns
    -------
    events : pandas.DataFrame
        One row per event, sorted by ``user_id`` then ``timestamp``, with columns ``user_id``
        (str, ``u0000042``), ``timestamp`` (datetime64[ns]), ``event`` (str), ``amount``
        (float64, > 0 on purchases, NaN elsewhere), ``discount`` (bool, only on purchases),
        ``category`` (str on view_item / add_to_cart / purchase, None elsewhere) and
        ``platform`` ("web" or "app", constant within a session). There is no session id:
        sessions are the runs of a user's events without a 30-minute gap.
    truth : pandas.DataFrame
        One row per user: ``user_id`` and ``persona`` (a key of the cast, or ``'noise'``).

    Examples
    --------
    >>> events, truth = make_events(200, seed=1)
    >>> list(events.columns)
    ['user_id', 'timestamp', 'event', 'amount', 'discount', 'category', 'platform']
    >>> truth["persona"].isin(PERSONAS).all() and len(truth) == 200
    True
    """
    n_users = _check_users(n_users)
    cast = _cast_of(mix)
    period = _check_period(period, mix)
    rng = np.random.default_rng(seed)
    end_day = pd.Timestamp(end).normalize() + pd.Timedelta(days=_WINDOW_DAYS * (period - 1))
    origin = end_day + pd.Timedelta(days=1) - pd.Timedelta(days=_WINDOW_DAYS)
    persona = _assign_personas(n_users, rng, cast)
    ids = _user_ids(n_users)
    if period > 1:
        persona, ids = _later_period(persona, n_users, seed, period, cast)
        rng = np.random.default_rng((seed, period))
    users = _draw_users(persona, rng, cast.archetypes)
    sess = _draw_sessions(users, origin.weekday(), rng)
    _draw_contents(sess, users, rng)
    steps = _draw_steps(sess["n_events"], rng)
    steps = _place_sessions(sess, users, steps)
    events = _build_events(sess, users, steps, origin, ids, rng)
    truth = pd.DataFrame(
        {
            "user_id": pd.Series(ids, dtype=object),
            "persona": pd.Series(np.array(cast.keys, dtype=object)[persona], dtype=object),
        }
    )
    return events, truth


def write_sample(
    path: str | os.PathLike,
    n_users: int = 5000,
    seed: int = 0,
    mix: str | Cast = "default",
    period: int = 1,
) -> tuple[Path, Path]:
    """Write a synthetic event log and its ground truth.

    The log goes to ``path`` (Parquet for ``.parquet``, CSV for ``.csv``, gzipped CSV for
    ``.csv.gz``), the truth beside it as ``<stem>.truth.csv`` (``user_id``, ``persona``). Both
    are written to temporary files in the target folder and renamed into place only once both
    are complete, so a failure leaves no half-written file.

    Parameters
    ----------
    path : str or os.PathLike
        Where the events go; the suffix picks the format. Missing folders are created.
    n_users : int, default 5000
        Number of users, passed to :func:`make_events`.
    seed : int, default 0
        Seed, passed to :func:`make_events`.
    mix : {"default", "holdout"} or Cast, default "default"
        Cast of planted personas, passed to :func:`make_events`.
    period : int, default 1
        Year of the same shop, passed to :func:`make_events`.

    Returns
    -------
    events_path, truth_path : pathlib.Path
        The two files written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> events_path, truth_path = write_sample(folder / "shop.parquet", n_users=100)
    >>> truth_path.name
    'shop.truth.csv'
    """
    path = Path(path)
    fmt, stem = _format_of(path)
    n_users = _check_users(n_users)
    events, truth = make_events(n_users, seed, mix=mix, period=period)
    truth_path = path.with_name(f"{stem}.truth.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        events_tmp = _temp_beside(path, temps)
        if fmt == "parquet":
            events.to_parquet(events_tmp, index=False)
        else:
            events.to_csv(events_tmp, index=False, compression="gzip" if fmt == "csv.gz" else None)
        truth_tmp = _temp_beside(truth_path, temps)
        truth.to_csv(truth_tmp, index=False)
        os.replace(events_tmp, path)
        os.replace(truth_tmp, truth_path)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return path, truth_path


# ---------------------------------------------------------------------------------------------
# users
# ---------------------------------------------------------------------------------------------
def _check_users(n_users: int) -> int:
    if isinstance(n_users, bool) or int(n_users) != n_users or n_users < 1:
        raise ParameterError(
            f"n_users={n_users!r} must be a whole number of at least 1", name="n_users"
        )
    return int(n_users)


def _cast_of(mix: str | Cast) -> Cast:
    """The cast a ``mix`` argument names (or is)."""
    if isinstance(mix, Cast):
        return mix
    if mix not in CASTS:
        raise ParameterError(
            f"mix={mix!r} is not a planted-persona mix; use one of {', '.join(CASTS)}", name="mix"
        )
    return CASTS[mix]


def _check_period(period: int, mix: str | Cast) -> int:
    if isinstance(period, bool) or int(period) != period or not 1 <= period <= MAX_PERIOD:
        raise ParameterError(
            f"period={period!r} must be a whole number from 1 to {MAX_PERIOD}", name="period"
        )
    if period > 1 and (isinstance(mix, Cast) or mix != "default"):
        raise ParameterError(
            f"period={period} needs mix='default': only the default cast has "
            "planted moves from one year to the next (TRANSITIONS)",
            name="period",
        )
    return int(period)


def _later_period(
    persona: np.ndarray, n_users: int, seed: int, period: int, cast: Cast
) -> tuple[np.ndarray, np.ndarray]:
    """Persona codes and ids of the users present in ``period`` (>= 2), period 1's ``persona``
    moved one year at a time by :data:`TRANSITIONS`, with new users joining each year.

    Each year draws from its own generator, ``default_rng((seed, year, 0))``, so period 3 repeats
    period 2's users exactly. Users gone one year stay gone.
    """
    keys = cast.keys
    target = (*keys, GONE)
    table = np.array([[TRANSITIONS[k].get(t, 0.0) for t in target] for k in keys])
    gone = len(keys)
    numbers = np.arange(n_users, dtype=np.int64)  # user i is u{i:07d}
    next_number = n_users
    for year in range(2, period + 1):
        rng = np.random.default_rng((seed, year, 0))
        moved = np.empty(persona.size, dtype=np.int8)
        for code in range(len(keys)):
            mine = np.flatnonzero(persona == code)
            moved[mine] = rng.choice(len(target), size=mine.size, p=table[code])
        stay = moved != gone
        new = _assign_personas(max(1, round(NEW_USERS_SHARE * n_users)), rng, cast)
        persona = np.concatenate([moved[stay], new])
        numbers = np.concatenate([numbers[stay], next_number + np.arange(new.size, dtype=np.int64)])
        next_number += new.size
    width = max(7, len(str(n_users - 1)))
    ids = np.char.add("u", np.char.zfill(numbers.astype(str), width)).astype(object)
    return persona, ids


def _assign_personas(n_users: int, rng: np.random.Generator, cast: Cast) -> np.ndarray:
    """Persona index per user: exact shares (largest remainder), in random order."""
    shares = np.array([p.share for p in cast.archetypes.values()] + [cast.noise_share])
    raw = shares / shares.sum() * n_users
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(counts - raw, kind="stable")[: n_users - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(shares), dtype=np.int8), counts))


def _logit_jitter(p: np.ndarray, sd: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-user probabilities scattered around ``p`` on the logit scale."""
    logit = np.log(p / (1 - p)) + rng.normal(0.0, 1.0, p.size) * sd
    return 1.0 / (1.0 + np.exp(-logit))


def _draw_users(
    persona: np.ndarray, rng: np.random.Generator, table: dict[str, Archetype]
) -> dict[str, np.ndarray]:
    """Per-user parameters (arrays indexed by user)."""
    rows = list(table.values())
    noise = persona == len(rows)
    n_noise = int(noise.sum())

    def source() -> np.ndarray:
        src = persona.astype(np.int64)
        src[noise] = rng.integers(0, len(rows), n_noise)
        return src

    def column(name: str, src: np.ndarray) -> np.ndarray:
        return np.array([getattr(row, name) for row in rows], dtype=np.float64)[src]

    n = persona.size
    wide = np.where(noise, 2.5, 1.0)  # noise users scatter more around their source

    src = source()  # the active window comes from one persona
    first_lo, first_hi = np.array([r.first_day for r in rows])[src].T
    last_lo, last_hi = np.array([r.last_day for r in rows])[src].T
    first = rng.integers(first_lo, first_hi + 1).astype(np.int32)
    last = np.clip(rng.integers(last_lo, last_hi + 1), first + 1, _WINDOW_DAYS).astype(np.int32)
    max_sessions = np.array([r.max_sessions for r in rows], dtype=np.int64)[src]
    months = (last - first) / 30.0

    users: dict[str, np.ndarray] = {"first": first, "last": last}
    spread = column("spread", source()) * np.where(noise, 1.5, 1.0)
    rate = column("sessions", source()) * np.exp(rng.normal(0.0, 1.0, n) * spread)
    users["n_site"] = np.clip(1 + rng.poisson(np.maximum(rate * months - 1, 0)), 1, max_sessions)
    rate = column("emails", source()) * np.exp(rng.normal(0.0, 1.0, n) * spread)
    users["n_email"] = rng.poisson(rate * months)
    users["depth"] = column("depth", source()) * np.exp(rng.normal(0.0, 0.35, n) * wide)
    users["basket"] = 1 + (column("basket", source()) - 1) * np.exp(rng.normal(0.0, 0.3, n) * wide)
    users["aov"] = column("aov", source()) * np.exp(rng.normal(0.0, 0.3, n) * wide)

    mix = np.array([r.mix for r in rows])[source()] * np.exp(
        rng.normal(0.0, 0.25, (n, 3)) * wide[:, None]
    )
    mix /= mix.sum(axis=1, keepdims=True)
    users["mix_pv"] = mix[:, 0]
    users["mix_pv_vi"] = mix[:, 0] + mix[:, 1]

    for name in ("cart", "checkout", "buy", "discount", "click", "email_buy", "app", "weekend"):
        users[name] = _logit_jitter(column(name, source()), 0.5 * wide, rng)

    popularity = np.array([v[0] for v in _CATEGORIES.values()])
    users["fav_category"] = rng.choice(len(popularity), size=n, p=popularity / popularity.sum())
    users["p_fav"] = rng.beta(2.0, 3.0, n)
    return users


# ---------------------------------------------------------------------------------------------
# sessions
# ---------------------------------------------------------------------------------------------
def _group_starts(counts: np.ndarray) -> np.ndarray:
    """Index of the first element of each group, for groups of the given sizes laid end to end."""
    starts = np.zeros(counts.size, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts


def _lookup_table(weights: tuple[float, ...] | np.ndarray, size: int = 1024) -> np.ndarray:
    """``size`` codes, code ``i`` repeated in proportion to ``weights[i]``: indexing it with
    uniform integers in ``[0, size)`` draws codes by weight, cheaply and in small dtypes."""
    cdf = np.cumsum(weights) / np.sum(weights)
    quantiles = (np.arange(size) + 0.5) / size
    return np.minimum(np.searchsorted(cdf, quantiles, side="right"), len(cdf) - 1)


def _draw_sessions(
    users: dict[str, np.ndarray], first_weekday: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Sessions of every user (site then email), with a start second, sorted by user and start.

    Start seconds count from the window start and fit int32 (a year is ~3.2e7 s).
    """
    n_site, n_email = users["n_site"], users["n_email"]
    counts = n_site + n_email
    n = int(counts.sum())
    user = np.repeat(np.arange(counts.size, dtype=np.int32), counts)
    email = np.repeat(
        np.tile(np.array([False, True]), counts.size), np.column_stack([n_site, n_email]).ravel()
    )

    first, last = users["first"][user], users["last"][user]
    day = rng.integers(first, last, dtype=np.int32)
    # some site sessions move to the Saturday or Sunday of their week (or the week before)
    weekend = day + (5 - (first_weekday + day) % 7) % 7 + rng.integers(0, 2, n, dtype=np.int32)
    weekend[weekend >= last] -= 7
    move = ~email & (rng.random(n, dtype=np.float32) < users["weekend"].astype(np.float32)[user])
    move &= weekend >= first
    day[move] = weekend[move]
    del first, last, weekend, move

    hours = np.concatenate([_lookup_table(_SITE_HOURS), _lookup_table(_EMAIL_HOURS)])
    pick = rng.integers(0, 1024, n, dtype=np.int16)
    pick[email] += 1024
    start = day * _DAY_S + hours.astype(np.int32)[pick] * 3600
    start += rng.integers(0, 3600, n, dtype=np.int32)
    del day, pick

    # one in-place sort of (user, start, email) packed in an int64: users are already grouped
    key = user.astype(np.int64) << 27
    key |= start.astype(np.int64) << 1
    key |= email
    key.sort()
    start = ((key >> 1) & ((1 << 26) - 1)).astype(np.int32)
    email = (key & 1).astype(bool)
    return {"user": user, "email": email, "start": start}


def _draw_contents(
    sess: dict[str, np.ndarray], users: dict[str, np.ndarray], rng: np.random.Generator
) -> None:
    """Which funnel steps each session holds, and how many events (added to ``sess``).

    Flags (bool): ``email`` (starts with email_open), ``clicked`` (then email_click),
    ``landing`` (a landing page_view), ``checkout``, ``buy``, ``app``; counts (int32): ``body``
    browsing events, ``pairs`` of view_item + add_to_cart, ``n_events``.
    """
    user, email = sess["user"], sess["email"]
    n = user.size
    site = ~email
    clicked = email & (rng.random(n) < users["click"][user])
    landing = site | clicked
    depth = users["depth"][user] * np.where(site, 1.0, 0.4) * landing
    body = np.minimum(rng.poisson(depth), _MAX_BODY).astype(np.int32)
    p_buy = np.where(site, users["buy"][user], np.where(clicked, users["email_buy"][user], 0.0))
    buy = rng.random(n) < p_buy
    cart = buy | (landing & (rng.random(n) < users["cart"][user]))
    pairs = (cart * (1 + rng.poisson(users["basket"][user] - 1))).astype(np.int32)
    checkout = buy | (cart & (rng.random(n) < users["checkout"][user]))
    app = rng.random(n) < users["app"][user]
    n_events = email + clicked.astype(np.int32) + landing + body + 2 * pairs + checkout + buy
    sess.update(
        clicked=clicked,
        landing=landing,
        body=body,
        pairs=pairs,
        checkout=checkout,
        buy=buy,
        app=app,
        n_events=n_events.astype(np.int32),
    )


def _draw_steps(n_events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seconds since the previous event of the session, per event (0 for a session's first)."""
    total = int(n_events.sum())
    steps = rng.standard_normal(total, dtype=np.float32)
    steps = np.exp(steps * np.float32(0.9) + np.float32(np.log(_STEP_MEDIAN_S)), out=steps)
    steps = np.clip(steps, 2, _MAX_STEP_S, out=steps).astype(np.int32)
    steps[_group_starts(n_events)] = 0
    return steps


def _place_sessions(
    sess: dict[str, np.ndarray], users: dict[str, np.ndarray], steps: np.ndarray
) -> np.ndarray:
    """Push sessions of one user apart and drop those pushed past the user's activity.

    A session starts no earlier than drawn and at least ``_SESSION_GAP_S`` after the end of the
    previous one of its user: ``t[i] = max(s[i], t[i-1] + dur[i-1] + gap)``, which is a running
    maximum of ``s - C`` (``C``: the user's earlier durations plus gaps) taken per user. Pushed
    sessions that would end after the user's last active day are dropped (always a suffix, never
    the user's first session). Updates ``sess`` in place, returns the steps of kept events.
    """
    user, n_events = sess["user"], sess["n_events"]
    duration = np.add.reduceat(steps, _group_starts(n_events), dtype=np.int32)
    limit = users["last"][user] * np.int32(_DAY_S)
    start = np.minimum(sess["start"], limit - duration - 1)

    step = duration.astype(np.int64)
    step += _SESSION_GAP_S
    earlier = np.cumsum(step)
    earlier -= step  # steps of all earlier sessions
    del step
    counts = users["n_site"] + users["n_email"]  # sessions per user, all >= 1
    earlier -= np.repeat(earlier[_group_starts(counts)], counts)  # ... of the same user
    key = user.astype(np.int64) << 34  # wider than any start - earlier
    key += start
    key -= earlier
    np.maximum.accumulate(key, out=key)  # running max, restarting per user
    key -= user.astype(np.int64) << 34
    key += earlier
    start = key.astype(np.int32)
    del key, earlier

    keep = start + duration < limit
    sess["start"], sess["duration"] = start, duration
    if keep.all():
        return steps
    steps = steps[np.repeat(keep, n_events)]
    for name, values in sess.items():
        sess[name] = values[keep]
    return steps


# ---------------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------------
def _build_events(
    sess: dict[str, np.ndarray],
    users: dict[str, np.ndarray],
    steps: np.ndarray,
    origin: pd.Timestamp,
    ids: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Lay out every session's events in funnel order and give them times and values.

    ``steps`` (int32 seconds since the previous event) is overwritten to save memory: with ~100M
    events every event-level array is hundreds of MB, so they use the smallest dtypes.
    """
    n_events = sess["n_events"]
    firsts = _group_starts(n_events)
    event_user = np.repeat(sess["user"], n_events)
    kind, pair_at, buy_at = _event_kinds(sess, users, firsts, event_user, rng)
    category = _categories(kind, pair_at, buy_at, users, event_user, rng)
    amount, discount = _orders(kind.size, buy_at, category, users, event_user, rng)
    del pair_at

    # times: one cumulative sum of the steps, where a session's first step (overwritten in
    # place) jumps from the end of the previous session to its own start
    start, duration = sess["start"], sess["duration"]
    steps[firsts[0]] = start[0]
    steps[firsts[1:]] = start[1:] - start[:-1] - duration[:-1]
    seconds = np.cumsum(steps, dtype=np.int64)
    seconds *= 1_000_000_000
    seconds += origin.value

    columns = {  # copy=False: no second copy of ~100M rows
        "user_id": ids[event_user],
        "timestamp": seconds.view("datetime64[ns]"),
        "event": np.array(EVENT_NAMES, dtype=object)[kind],
        "amount": amount,
        "discount": discount,
        "category": np.array([*_CATEGORIES, None], dtype=object)[category],
        "platform": np.array(["web", "app"], dtype=object)[
            np.repeat(sess["app"].view(np.int8), n_events)
        ],
    }
    return pd.DataFrame(
        {
            name: pd.Series(values, dtype=values.dtype, copy=False)
            for name, values in columns.items()
        },
        copy=False,
    )


def _event_kinds(
    sess: dict[str, np.ndarray],
    users: dict[str, np.ndarray],
    firsts: np.ndarray,
    event_user: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event kind codes, positions of the view_item of each cart pair and of each purchase.

    Session layout: [email_open] [email_click] [landing page_view] browsing...
    (view_item, add_to_cart)... [begin_checkout] [purchase].
    """
    # browsing by default: page_view (0), view_item (1) or search (2) by the user's mix,
    # compared on a 16-bit scale to keep the per-event temporaries small
    u = rng.integers(0, 1 << 16, event_user.size, dtype=np.uint16)
    scale = float((1 << 16) - 1)
    kind = (u > (users["mix_pv"] * scale).astype(np.uint16)[event_user]).view(np.int8)
    kind += u > (users["mix_pv_vi"] * scale).astype(np.uint16)[event_user]
    del u
    email, clicked, landing = sess["email"], sess["clicked"], sess["landing"]
    at_landing = firsts + email + clicked
    at_pairs = at_landing + landing + sess["body"]
    at_checkout = at_pairs + 2 * sess["pairs"]
    at_buy = at_checkout + sess["checkout"]

    kind[firsts[email]] = _OPEN
    kind[firsts[clicked] + 1] = _CLICK
    kind[at_landing[landing]] = _PV
    pairs = sess["pairs"]
    pair_at = np.repeat(at_pairs, pairs) + 2 * (
        np.arange(pairs.sum()) - np.repeat(_group_starts(pairs), pairs)
    )
    kind[pair_at] = _VI
    kind[pair_at + 1] = _ATC
    kind[at_checkout[sess["checkout"]]] = _CHECKOUT
    buy_at = at_buy[sess["buy"]]
    kind[buy_at] = _PURCHASE
    return kind, pair_at, buy_at


def _categories(
    kind: np.ndarray,
    pair_at: np.ndarray,
    buy_at: np.ndarray,
    users: dict[str, np.ndarray],
    event_user: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Category code per event (``len(_CATEGORIES)`` = none).

    A product view is of the user's favourite category or of one drawn by popularity;
    add_to_cart takes the category of the view just before it, purchase that of the last item
    added.
    """
    none = len(_CATEGORIES)
    category = np.full(kind.size, none, dtype=np.int8)
    viewed = np.flatnonzero(kind == _VI)
    who = event_user[viewed]
    table = _lookup_table([share for share, _ in _CATEGORIES.values()])
    pick = table[rng.integers(0, table.size, viewed.size, dtype=np.int16)].astype(np.int8)
    favourite = rng.random(viewed.size, dtype=np.float32) < users["p_fav"].astype(np.float32)[who]
    pick[favourite] = users["fav_category"].astype(np.int8)[who[favourite]]
    category[viewed] = pick
    del viewed, who, pick, favourite
    category[pair_at + 1] = category[pair_at]
    category[buy_at] = category[buy_at - 2]
    return category


def _orders(
    n_events: int,
    buy_at: np.ndarray,
    category: np.ndarray,
    users: dict[str, np.ndarray],
    event_user: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Order value (NaN off purchases) and discount flag per event."""
    who = event_user[buy_at]
    price = np.array([v[1] for v in _CATEGORIES.values()])[category[buy_at]]
    used = rng.random(buy_at.size) < users["discount"][who]
    value = users["aov"][who] * price * rng.lognormal(0.0, 0.45, buy_at.size)
    value = np.round(np.maximum(value * np.where(used, 0.85, 1.0), 1.0), 2)
    amount = np.full(n_events, np.nan)
    amount[buy_at] = value
    discount = np.zeros(n_events, dtype=bool)
    discount[buy_at] = used
    return amount, discount


def _user_ids(n_users: int) -> np.ndarray:
    """``u0000042``-style ids (at least 7 digits), as an object array."""
    width = max(7, len(str(n_users - 1)))
    digits = np.char.zfill(np.arange(n_users).astype(str), width)
    return np.char.add("u", digits).astype(object)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def _format_of(path: Path) -> tuple[str, str]:
    """(format, stem) of an events path: parquet, csv or csv.gz."""
    name = path.name
    for suffix in (".parquet", ".csv.gz", ".csv"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return suffix[1:], name[: -len(suffix)]
    raise ParameterError(
        f"cannot tell the format of {str(path)!r}; end the name with .parquet, .csv or .csv.gz",
        name="path",
    )


def _temp_beside(target: Path, temps: list[Path]) -> Path:
    """A new empty temporary file in ``target``'s folder, recorded in ``temps``."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    temps.append(Path(name))
    return temps[-1]
