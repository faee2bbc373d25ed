"""Random worlds: shops nobody here designed, with planted personas, to judge the model on.

The bundled sample has one cast of personas, and the model and the naming rules were written
beside it; a default chosen on it can be wrong everywhere else. A *world* is drawn at random
from one seed instead:

* a shop's usual behaviour (every :class:`personas.sample.Archetype` field from a wide prior),
  then 4 to 8 archetypes that each differ from it in 2 to 10 randomly chosen aspects (lifecycle,
  visit frequency, browsing, carts, buying, order value, discounts, e-mail, app, weekends), so
  two archetypes may share most of their behaviour, as real segments do, or almost none;
* unequal shares, none below 4 %, and 0-12 % noise users who belong to no archetype;
* an event vocabulary (GA4, Segment, plain words, or names of its own with a roles file), column
  names of its own, a file format, and some optional columns left out (discount, platform,
  category; now and then the amounts);
* or, one world in five, an order table: purchases only, no event column.

:func:`draw_world` makes the description; :func:`world_events` draws the log;
:func:`write_world` writes it with its truth, and returns the run parameters that read it.
``bench/worlds.py`` scores the model on many of them.

Examples
--------
>>> world = draw_world(3)
>>> events, truth = world_events(world, n_users=500)
>>> len(truth), truth["persona"].nunique() <= len(world.cast.archetypes) + 1
(500, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .sample import EVENT_NAMES, Archetype, Cast, make_events

MIN_SHARE = 0.04  # the smallest archetype's share of users
ARCHETYPES = (4, 8)  # fewest and most archetypes in a world
CHANGED_ASPECTS = (2, 10)  # aspects in which an archetype differs from its shop
ORDER_TABLE_SHARE = 0.2  # worlds that are order tables

VOCABULARIES: dict[str, dict[str, str]] = {
    "ga4": {name: name for name in EVENT_NAMES},
    "segment": dict(
        zip(
            EVENT_NAMES,
            (
                "Page",
                "Product Viewed",
                "Products Searched",
                "Product Added",
                "Checkout Started",
                "Order Completed",
                "Email Opened",
                "Email Link Clicked",
            ),
        )
    ),
    "plain": dict(
        zip(
            EVENT_NAMES,
            ("view", "view", "search", "cart", "checkout", "order", "email_open", "email_click"),
        )
    ),
    # names no default vocabulary knows: the world ships a roles file for them
    "own": dict(
        zip(
            EVENT_NAMES,
            (
                "Visited Page",
                "Looked At Item",
                "Typed Query",
                "Put In Basket",
                "Went To Till",
                "Paid",
                "Newsletter Read",
                "Newsletter Link",
            ),
        )
    ),
}
_OWN_ROLES = {
    "view": ["Visited Page", "Looked At Item"],
    "search": ["Typed Query"],
    "cart": ["Put In Basket"],
    "checkout": ["Went To Till"],
    "purchase": ["Paid"],
    "email_open": ["Newsletter Read"],
    "email_click": ["Newsletter Link"],
}

_COLUMN_NAMES = {
    "user_id": ("user_id", "customer_id", "visitor_id", "uid", "client"),
    "timestamp": ("timestamp", "ts", "event_time", "occurred_at"),
    "event": ("event", "event_name", "action", "event_type"),
    "amount": ("amount", "revenue", "value", "order_total"),
}
_PARAM_OF = {
    "user_id": "user_col",
    "timestamp": "time_col",
    "event": "event_col",
    "amount": "amount_col",
}


@dataclass(frozen=True)
class World:
    """One random world: its cast and how its log is written."""

    seed: int
    cast: Cast
    vocabulary: str  # a key of VOCABULARIES, or "orders" (an order table)
    columns: dict[str, str]  # canonical column -> its name in this world's file
    dropped: tuple[str, ...]  # optional columns this world's file leaves out
    file_format: str  # parquet | csv
    time_format: str  # datetime | iso | epoch_ms

    @property
    def order_table(self) -> bool:
        return self.vocabulary == "orders"

    def describe(self) -> str:
        """One line: archetypes, noise, vocabulary, format and what is missing."""
        kind = "order table" if self.order_table else f"{self.vocabulary} events"
        gone = f", no {'/'.join(self.dropped)}" if self.dropped else ""
        return (
            f"{len(self.cast.archetypes)} archetypes (smallest "
            f"{min(a.share for a in self.cast.archetypes.values()):.0%}), "
            f"{self.cast.noise_share:.0%} noise, {kind}, {self.file_format} "
            f"({self.time_format}){gone}"
        )


# -- the cast --------------------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _lifecycle(rng: np.random.Generator, kind: str) -> dict:
    """First and last active day ranges of a lifecycle kind (the window is days 0..365)."""
    if kind == "steady":
        return {
            "first_day": (0, int(rng.integers(20, 200))),
            "last_day": (int(rng.integers(300, 355)), 365),
        }
    if kind == "new":
        lo = int(rng.integers(280, 340))
        return {"first_day": (lo, 364), "last_day": (365, 365)}
    if kind == "lapsed":
        end = int(rng.integers(70, 170))
        return {
            "first_day": (0, int(rng.integers(0, 50))),
            "last_day": (end, end + int(rng.integers(20, 60))),
        }
    # fading: here most of the year, gone for the last two to four months
    end = int(rng.integers(220, 290))
    return {
        "first_day": (0, int(rng.integers(0, 90))),
        "last_day": (end, end + int(rng.integers(10, 40))),
    }


def _aspect(rng: np.random.Generator, aspect: str, order_table: bool) -> dict:
    """Fresh values of one aspect of behaviour, from wide priors."""
    if aspect == "lifecycle":
        return _lifecycle(
            rng, str(rng.choice(["steady", "new", "lapsed", "fading"], p=[0.4, 0.2, 0.25, 0.15]))
        )
    if aspect == "frequency":
        one_visit = not order_table and rng.random() < 0.15
        return {
            "sessions": _log_uniform(rng, 0.3, 8.0),
            "spread": rng.uniform(0.3, 0.7),
            "max_sessions": int(rng.integers(1, 4)) if one_visit else 100_000,
        }
    if aspect == "browsing":
        mix = rng.dirichlet([3.0, 4.0, 1.5])
        return {"depth": _log_uniform(rng, 1.5, 12.0), "mix": tuple(float(x) for x in mix)}
    if aspect == "carts":
        return {
            "cart": _log_uniform(rng, 0.01, 0.7),
            "basket": 1 + _log_uniform(rng, 0.05, 1.5),
            "checkout": rng.uniform(0.05, 0.5),
        }
    if aspect == "buying":
        low = 0.1 if order_table else 0.002
        return {"buy": _log_uniform(rng, low, 0.7)}
    if aspect == "value":
        return {"aov": _log_uniform(rng, 12.0, 320.0)}
    if aspect == "discount":
        return {"discount": rng.uniform(0.02, 0.95)}
    if aspect == "email":
        return {
            "emails": _log_uniform(rng, 0.05, 6.0),
            "click": rng.uniform(0.05, 0.8),
            "email_buy": _log_uniform(rng, 0.001, 0.2),
        }
    if aspect == "app":
        return {"app": rng.uniform(0.03, 0.97)}
    if aspect == "weekend":
        return {"weekend": rng.uniform(0.02, 0.45)}
    raise ValueError(aspect)


EVENT_ASPECTS = (
    "lifecycle",
    "frequency",
    "browsing",
    "carts",
    "buying",
    "value",
    "discount",
    "email",
    "app",
    "weekend",
)
ORDER_ASPECTS = ("lifecycle", "frequency", "buying", "value", "discount")
"""What an archetype may differ in: in an order table only what orders show."""


def draw_cast(rng: np.random.Generator, order_table: bool = False) -> Cast:
    """A shop's usual behaviour, then 4-8 archetypes that each change 2-10 aspects of it."""
    base: dict = {"share": 0.0}
    for aspect in EVENT_ASPECTS:
        base.update(_aspect(rng, aspect, order_table))
    base.update(_lifecycle(rng, "steady"))
    base["max_sessions"] = 100_000
    k = int(rng.integers(ARCHETYPES[0], ARCHETYPES[1] + 1))
    shares = MIN_SHARE + (1 - MIN_SHARE * k) * rng.dirichlet(np.full(k, 1.5))
    aspects = ORDER_ASPECTS if order_table else EVENT_ASPECTS
    archetypes = {}
    for i, share in enumerate(shares):
        values = dict(base, share=float(share))
        n_changed = int(rng.integers(CHANGED_ASPECTS[0], min(CHANGED_ASPECTS[1], len(aspects)) + 1))
        for aspect in rng.choice(aspects, size=n_changed, replace=False):
            values.update(_aspect(rng, str(aspect), order_table))
        archetypes[f"archetype_{i + 1}"] = Archetype(**values)
    return Cast(archetypes, noise_share=float(rng.uniform(0.0, 0.12)))


# -- the world -------------------------------------------------------------------------------------


def draw_world(seed: int, order_table: bool | None = None) -> World:
    """The world of ``seed``; ``order_table`` forces the kind (None: one world in five is one)."""
    rng = np.random.default_rng([seed, 20261203])
    if order_table is None:
        order_table = bool(rng.random() < ORDER_TABLE_SHARE)
    cast = draw_cast(rng, order_table)
    vocabulary = "orders" if order_table else str(rng.choice(list(VOCABULARIES)))
    columns = {canon: str(rng.choice(names)) for canon, names in _COLUMN_NAMES.items()}
    if order_table:
        columns.pop("event")
        dropped = ("discount",) if rng.random() < 0.5 else ()
    else:
        dropped = tuple(c for c in ("discount", "platform", "category") if rng.random() < 0.25)
        if rng.random() < 0.1:
            dropped += ("amount",)
    return World(
        seed=seed,
        cast=cast,
        vocabulary=vocabulary,
        columns=columns,
        dropped=dropped,
        file_format=str(rng.choice(["parquet", "parquet", "parquet", "csv"])),
        time_format=str(rng.choice(["datetime", "iso", "epoch_ms"])),
    )


def world_events(world: World, n_users: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The world's log with its own columns and names, and the truth (``user_id``, ``persona``).

    An order table keeps purchase rows only, so users who never bought are not in it (nor in
    the truth it returns).
    """
    events, truth = make_events(n_users, seed=world.seed, mix=world.cast)
    if world.order_table:
        events = events[events["event"] == "purchase"]
        events = events.drop(columns=["event", "category", "platform"])
        truth = truth[truth["user_id"].isin(set(events["user_id"]))]
    else:
        names = VOCABULARIES[world.vocabulary]
        events = events.assign(event=events["event"].map(names))
    events = events.drop(columns=[c for c in world.dropped if c in events.columns])
    if world.time_format == "iso":
        events["timestamp"] = events["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    elif world.time_format == "epoch_ms":
        events["timestamp"] = events["timestamp"].astype("int64") // 1_000_000
    events = events.rename(columns=world.columns).reset_index(drop=True)
    return events, truth.reset_index(drop=True)


def write_world(world: World, folder: str | Path, n_users: int) -> tuple[Path, Path, dict]:
    """Write the world's log (and roles file, when it needs one) and truth into ``folder``.

    Returns the events path, the truth path and the run parameters that read the log
    (column mapping and roles file), ready for ``PersonaParams(events_path=..., **params)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"world-{world.seed}-{n_users}"
    events, truth = world_events(world, n_users)
    path = folder / f"{stem}.{world.file_format}"
    if world.file_format == "csv":
        events.to_csv(path, index=False)
    else:
        events.to_parquet(path, index=False)
    truth_path = folder / f"{stem}.truth.csv"
    truth.to_csv(truth_path, index=False)
    params = {_PARAM_OF[c]: name for c, name in world.columns.items()}
    if "amount" in world.dropped:
        params.pop("amount_col")
    if world.vocabulary == "own":
        roles = folder / f"{stem}.roles.yaml"
        roles.write_text(yaml.safe_dump(_OWN_ROLES), encoding="utf-8")
        params["roles_path"] = str(roles)
    return path, truth_path, params


def describe_cast(cast: Cast) -> pd.DataFrame:
    """The cast as a table, one row per archetype (for reading a world's truth)."""
    return pd.DataFrame(
        [dataclasses.asdict(a) for a in cast.archetypes.values()], index=list(cast.archetypes)
    )
