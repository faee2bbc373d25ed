"""Your own per-user features: a YAML file of SQL aggregates over the events or Python functions.

A researcher knows behaviour the catalogue does not (video plays, loyalty points, support
tickets). ``features_path`` names a YAML file; each entry becomes a column of
``features.parquet`` and an entry of the catalogue (:data:`personas.features.BY_NAME`), so it
reaches the model (``model: true``), the profiles, the cards and the report like any other::

    video_plays_per_week:
      description: Videos played per week
      sql: >-
        count(*) FILTER (WHERE event = 'video_play')
        / greatest(date_diff('day', min(ts), max(ts)) / 7, 4)
      unit: plays/week
      higher: watches more videos
      transform: log1p      # none (default) or log1p, for heavy-tailed counts
      model: true           # use it to find personas (default: it only describes them)
    big_basket_share:
      description: Share of purchases above 100
      python: shop_features:big_basket_share   # module:function beside the YAML file

``sql`` is an aggregate over the cleaned events (view ``kept``: user_id, ts, event, amount,
quantity, discount, platform, category, product, session_key; the event names as in the data),
grouped by user. ``python`` names a function given the feature table (one row per user, the
catalogue's columns and the entries above it in the file) that returns one number per user.

The definitions travel with the run (``features.json``), so the notebooks' later kernels and
``personas assign -p features_path=...`` know them too.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from . import features as catalogue
from .errors import ParameterError, yaml_problem
from .load import EventLog

GROUP = "custom"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
KEYS = {"description", "sql", "python", "unit", "higher", "transform", "model"}
TRANSFORMS = ("none", "log1p")


@dataclass(frozen=True)
class CustomFeature:
    """One of the user's features: its catalogue entry and how to compute it."""

    feature: catalogue.Feature
    sql: str = ""
    python: str = ""  # "module:function"
    folder: str = ""  # where the YAML file was, to import ``python`` from

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": asdict(self.feature),
            "sql": self.sql,
            "python": self.python,
            "folder": self.folder,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomFeature:
        spec = dict(data["feature"])
        spec["needs"] = tuple(spec.get("needs", ()))
        return cls(
            catalogue.Feature(**spec),
            data.get("sql", ""),
            data.get("python", ""),
            data.get("folder", ""),
        )


def _error(path: str, message: str) -> ParameterError:
    return ParameterError(f"features file {path!r}: {message}", name="features_path")


def load_custom_features(path: str) -> tuple[CustomFeature, ...]:
    """The features defined in the YAML file ``path`` (none for ""), checked and registered."""
    if not path:
        return ()
    try:
        entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise _error(path, f"cannot be read ({exc.strerror}); check features_path") from None
    except yaml.YAMLError as exc:
        raise _error(path, f"is not valid YAML ({yaml_problem(exc)})") from None
    if not isinstance(entries, dict) or not entries:
        raise _error(
            path,
            "must map feature names to their definitions (see the README, 'Your own features')",
        )
    folder = str(Path(path).resolve().parent)
    found = tuple(_parse(path, str(name), spec, folder) for name, spec in entries.items())
    register(found)
    return found


def _parse(path: str, name: str, spec: Any, folder: str) -> CustomFeature:
    """One entry of the file as a :class:`CustomFeature`, or a ParameterError saying what to fix."""
    where = f"feature {name!r}"
    if not NAME.match(name):
        raise _error(
            path,
            f"{where}: a name is lower-case letters, digits and underscores, "
            "starting with a letter",
        )
    if name in catalogue.BY_NAME and catalogue.BY_NAME[name].group != GROUP:
        raise _error(path, f"{where} is already in the catalogue; give yours another name")
    if not isinstance(spec, dict):
        raise _error(path, f"{where}: give a mapping with description and sql or python")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise _error(
            path, f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})"
        )
    description = str(spec.get("description") or "").strip()
    if not description:
        raise _error(
            path, f"{where}: needs a description (it is the feature's label in the report)"
        )
    sql, python = str(spec.get("sql") or "").strip(), str(spec.get("python") or "").strip()
    if bool(sql) == bool(python):
        raise _error(
            path,
            f"{where}: give either sql (an aggregate over the events) or python "
            "(module:function over the feature table), not both or neither",
        )
    if python and not re.match(r"^[\w.]+:\w+$", python):
        raise _error(path, f"{where}: python is 'module:function', got {python!r}")
    transform = str(spec.get("transform", "none"))
    if transform not in TRANSFORMS:
        raise _error(
            path, f"{where}: transform is one of {', '.join(TRANSFORMS)}, got {transform!r}"
        )
    model = spec.get("model", False)
    if not isinstance(model, bool):
        raise _error(path, f"{where}: model is true or false, got {model!r}")
    feature = catalogue.Feature(
        name,
        GROUP,
        description,
        str(spec.get("unit", "")),
        str(spec.get("higher", f"has a higher {description.lower()}")),
        transform=transform,
        model=model,
    )
    return CustomFeature(feature, sql, python, folder)


def register(found: tuple[CustomFeature, ...]) -> None:
    """Add the features to the catalogue (:data:`personas.features.BY_NAME`), which the model,
    the profiles and the report read; a later kernel of the same run registers them again from
    the run's state."""
    for custom in found:
        catalogue.BY_NAME[custom.feature.name] = custom.feature


def add_custom_features(
    log: EventLog, features: pd.DataFrame, found: tuple[CustomFeature, ...], path: str = ""
) -> pd.DataFrame:
    """``features`` with a column per custom feature, placed after the catalogue's columns
    (before the role and event counts). Users without events for an SQL aggregate get NaN."""
    if not found:
        return features
    counts = [
        c for c in features.columns if c.startswith((catalogue.ROLE_PREFIX, catalogue.EVENT_PREFIX))
    ]
    table = features.drop(columns=counts)
    for custom in found:
        values = (
            _sql_values(log, custom, path) if custom.sql else _python_values(table, custom, path)
        )
        table[custom.feature.name] = values.reindex(table.index).astype("float64").round(9)
    return table.join(features[counts])


def _sql_values(log: EventLog, custom: CustomFeature, path: str) -> pd.Series:
    query = (
        f"SELECT CAST(user_id AS VARCHAR) AS user_id, CAST(({custom.sql}) AS DOUBLE) AS v "
        "FROM kept GROUP BY user_id"
    )
    try:
        frame = log.con.execute(query).df()
    except Exception as exc:  # duckdb's errors have no common base below Exception
        first = str(exc).splitlines()[0]
        raise _error(
            path,
            f"feature {custom.feature.name!r}: its sql failed ({first}); write "
            "one aggregate over the columns user_id, ts, event, amount, quantity, "
            "discount, platform, category, product, session_key",
        ) from None
    return frame.set_index("user_id")["v"]


def _python_values(table: pd.DataFrame, custom: CustomFeature, path: str) -> pd.Series:
    name = custom.feature.name
    module_name, function_name = custom.python.split(":")
    sys.path.insert(0, custom.folder)
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise _error(
            path,
            f"feature {name!r}: cannot import {custom.python!r} ({exc}); put "
            f"{module_name}.py beside the features file",
        ) from None
    finally:
        sys.path.remove(custom.folder)
    values = function(table.copy())
    if isinstance(values, pd.Series) and values.index.equals(table.index):
        result = values
    elif np.ndim(values) == 1 and len(values) == len(table):
        result = pd.Series(np.asarray(values), index=table.index)
    else:
        raise _error(
            path,
            f"feature {name!r}: {custom.python} must return one value per user "
            f"({len(table):,}), as a Series on the table's index or an array",
        )
    try:
        return pd.to_numeric(result)
    except (TypeError, ValueError):
        raise _error(
            path, f"feature {name!r}: {custom.python} returned values that are not numbers"
        ) from None
