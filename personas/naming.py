"""Rule table (rules.yaml) -> persona names such as "Frequent Browser".

Names come from the personas' traits (standardised differences against all users), never from the
model. All personas are named together so every name is used once: the best-scoring
(persona, rule) pairs are taken first. A persona whose best rule another persona took (with a
better fit) moves to its next free rule only when that one fits almost as well (within the rule
table's ``switch_margin``); otherwise it keeps its best rule with a tag from its strongest other
trait ("Frequent Browser · App"), so a name never turns into a clearly worse description just to
be different. Analysts rename afterwards with a ``{old name: new name}`` mapping, which follows
the persona, not its id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from .errors import InputError

Z_CAP = 3.0


@dataclass(frozen=True)
class Rule:
    name: str
    family: str
    data: str                         # events | orders | any
    when: tuple[tuple[str, str], ...]  # (feature, "high" | "low")
    description: str
    plays: tuple[dict, ...]


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]
    tags: dict[str, dict[str, str]]
    min_z: float
    switch_margin: float = 0.5        # see the module docstring; on the score's (z) scale


@dataclass(frozen=True)
class Naming:
    name: str
    rule: Rule | None
    score: float
    evidence: tuple[str, ...]         # features of the rule's conditions, strongest first


FALLBACK = Rule("Everyday Customer", "average", "any", (), "behaves much like the average user",
                ({"title": "Keep in the main programme",
                  "action": "No special treatment: include in regular campaigns and watch drift.",
                  "kpi": "share of users in this persona",
                  "test": "none needed"},))


def load_rules(path: str | Path | None = None) -> RuleBook:
    """The packaged rule table, or the YAML file at ``path`` (same format, replaces it)."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"rules file {str(path)!r} cannot be read ({exc.strerror})",
                             path=str(path)) from None
    else:
        text = resources.files("personas").joinpath("rules.yaml").read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
        rules = tuple(
            Rule(name=str(r["name"]), family=str(r.get("family", r["name"])),
                 data=str(r.get("data", "any")),
                 when=tuple((str(k), str(v)) for k, v in r["when"].items()),
                 description=str(r.get("description", "")),
                 plays=tuple(r.get("plays", ())))
            for r in raw["rules"])
        book = RuleBook(rules=rules, tags=dict(raw.get("tags", {})),
                        min_z=float(raw.get("min_z", 0.3)),
                        switch_margin=float(raw.get("switch_margin", 0.5)))
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InputError(f"rules file {str(path or 'rules.yaml')!r} is not a valid rule table "
                         f"({exc.__class__.__name__}: {exc}); each rule needs a name and a "
                         "'when' mapping of feature: high|low, and min_z and switch_margin "
                         "are numbers", path=str(path)) from None
    return book


def score_rule(rule: Rule, z: Mapping[str, float], min_z: float) -> float | None:
    """Stouffer-combined signed z of the rule's conditions (sum / sqrt(n), each capped at
    :data:`Z_CAP`), or None when a condition fails or its feature is missing."""
    signed = []
    for feature, direction in rule.when:
        if feature not in z or pd.isna(z[feature]):
            return None
        value = z[feature] if direction == "high" else -z[feature]
        if value < min_z:
            return None
        signed.append(min(value, Z_CAP))
    return sum(signed) / math.sqrt(len(signed)) if signed else None


def _tag(z: Mapping[str, float], rule: Rule, book: RuleBook, taken: set[str], base: str) -> str:
    used = {f for f, _ in rule.when}
    for feature in sorted(z, key=lambda f: -abs(z[f])):
        if feature in used or feature not in book.tags or abs(z[feature]) < book.min_z:
            continue
        word = book.tags[feature].get("high" if z[feature] > 0 else "low")
        if word and f"{base} · {word}" not in taken:
            return f"{base} · {word}"
    n = 2
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"


def name_personas(traits: pd.DataFrame, *, order_table: bool, book: RuleBook | None = None
                  ) -> dict[int, Naming]:
    """Name every persona (row of ``traits``: persona id x feature z-scores) uniquely.

    Rules whose features are missing from ``traits`` are never used, so an order table cannot get
    a browsing or cart name; ``order_table`` switches to the RFM vocabulary.
    """
    book = book or load_rules()
    kind = "orders" if order_table else "events"
    rules = [r for r in book.rules if r.data in (kind, "any")
             and all(f in traits.columns for f, _ in r.when)]
    candidates = []
    for pid, row in traits.iterrows():
        z = row.dropna().to_dict()
        for rule in rules:
            score = score_rule(rule, z, book.min_z)
            if score is not None:
                candidates.append((score, int(pid), rule))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2].name))
    best = {}
    for score, pid, _ in candidates:
        best.setdefault(pid, score)
    result: dict[int, Naming] = {}
    used_rules: set[str] = set()
    for score, pid, rule in candidates:
        if pid in result or rule.name in used_rules:
            continue
        if score < best[pid] - book.switch_margin:   # a clearly worse fit: tag the best instead
            continue
        result[pid] = Naming(rule.name, rule, score, _evidence(rule, traits.loc[pid]))
        used_rules.add(rule.name)
    taken = {n.name for n in result.values()}
    for pid, row in traits.iterrows():
        pid = int(pid)
        if pid in result:
            continue
        z = row.dropna().to_dict()
        own = [c for c in candidates if c[1] == pid]
        rule, score = (own[0][2], own[0][0]) if own else (FALLBACK, 0.0)
        name = rule.name if rule.name not in taken else _tag(z, rule, book, taken, rule.name)
        result[pid] = Naming(name, rule, score, _evidence(rule, row))
        taken.add(name)
    return result


def _evidence(rule: Rule, row: pd.Series) -> tuple[str, ...]:
    features = [f for f, _ in rule.when if f in row and pd.notna(row[f])]
    if not features:   # fallback: the strongest traits, whatever they are
        features = list(row.dropna().abs().sort_values(ascending=False).index[:2])
    return tuple(sorted(features, key=lambda f: -abs(row[f])))


def load_renames(path: str | Path) -> dict[str, str]:
    """A ``{current name: new name}`` mapping from a YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(f"renames file {str(path)!r} cannot be read ({exc.strerror}); check "
                         "renames_path", path=str(path)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"renames file {str(path)!r} is not valid YAML "
                         f"({' '.join(str(exc).split())})", path=str(path)) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(f"renames file {str(path)!r} should map persona names to new names, "
                         "e.g. 'Frequent Browser: Researchers'", path=str(path))
    return {str(k): v for k, v in data.items()}


def apply_renames(names: dict[int, str], renames: Mapping[str, str]) -> dict[int, str]:
    """Rename by current name (``{"Frequent Browser": "Researchers"}``); keep names unique."""
    out = {pid: renames.get(name, name) for pid, name in names.items()}
    if len(set(out.values())) != len(out):
        dupes = sorted({n for n in out.values() if list(out.values()).count(n) > 1})
        raise InputError(f"renames give two personas the same name ({', '.join(dupes)}); "
                         "choose distinct names")
    return out


def describe(rule: Rule | None) -> dict[str, Any]:
    rule = rule or FALLBACK
    return {"family": rule.family, "description": rule.description, "plays": rule.plays}
