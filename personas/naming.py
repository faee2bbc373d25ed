"""Rule table (rules.yaml) -> persona names such as "Frequent Browser", each checked on its figures.

A name has to be true of the persona it is given to, in the persona's own numbers. So a rule names
a persona only when both hold:

* its ``when`` conditions: the persona's traits (standardised differences of means against all
  users) point the rule's way, which says the rule fits this group better than others;
* its ``claims``: bounds on the persona's own figures -- the numbers its card shows -- absolute
  ("at least 2 orders per user", "first seen at most 60 days ago") and relative to all users
  ("at least 1.5 times as many orders per user"). A group that arrived a bit later than everyone
  else, two years ago, is not "New".

All personas are named together and every name is used once: the best-scoring eligible (persona,
rule) pairs are taken first. A persona whose best rule another persona took (with a better fit)
moves to its next eligible rule only when that one fits almost as well (within the rule table's
``switch_margin``); otherwise, and when no rule is eligible at all, it gets a descriptive name
made of the rule table's ``tags``: an adjective for a figure that is clearly higher or lower than
all users' ("App", "Big-Basket") and a noun from its conversion ("Buyers", "Visitors", or
"Customers" in an order table) -- "App Buyers". Beside the persona that took its rule, the word
is the one that separates the two most. The words are claims as well: each is checked on the
persona's figures and recorded. "Everyday Customer" is kept for a group that is average in fact.

No two names share their head word or contain one another as a phrase, so a report never has
"Champions" beside "Champions · Frequent"; only groups that no word is true of fall back to
"Other <noun>" and then "Persona <id>". Analysts rename afterwards with a ``{old name: new
name}`` mapping, which follows the persona, not its id.

Why it is long: a rule's claims are recomputed from the persona's own figures and checked here,
next to the choice of name they decide; the rules themselves are data in ``rules.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .errors import InputError, yaml_problem
from .features import BY_NAME
from .kpis import KPIS, figure_key
from .results import ClaimCheck, Stat

Z_CAP = 3.0
BOUNDS = ("at_least", "at_most", "lift_at_least", "lift_at_most")
TAG_LIFT = 1.25  # a tag word needs its figure this many times all users' (or 1/this)
AVERAGE_Z = 0.3  # "Everyday Customer": every model feature's |z| below this ...
AVERAGE_LIFT = 1.5  # ... and every KPI and model-feature figure within 1/this..this times
# all users'
BUYERS_FROM = 0.5  # conversion from which a descriptive name's noun is "Buyers"


@dataclass(frozen=True)
class Claim:
    """Bounds one figure of a persona must meet for a name to be true of it."""

    figure: str  # a catalogue feature or a KPI key
    bounds: tuple[tuple[str, float], ...]  # (test, bound), test one of :data:`BOUNDS`

    def check(self, stat: Stat | None, word: str = "") -> ClaimCheck:
        """The claim on ``stat`` (the persona's figure); a figure the data lacks never holds."""
        value = None if stat is None or pd.isna(stat.value) else float(stat.value)
        overall = None if stat is None or pd.isna(stat.overall) else float(stat.overall)
        lift = None if stat is None or stat.lift is None else float(stat.lift)
        holds = all(_meets(test, bound, value, lift) for test, bound in self.bounds)
        label, unit, statistic = (
            (stat.label, stat.unit, stat.statistic) if stat is not None else (self.figure, "", "")
        )
        return ClaimCheck(
            figure=self.figure,
            label=label,
            unit=unit,
            statistic=statistic,
            value=value,
            overall=overall,
            lift=lift,
            bounds=self.bounds,
            holds=holds,
            word=word,
        )


def _meets(test: str, bound: float, value: float | None, lift: float | None) -> bool:
    measured = lift if test.startswith("lift_") else value
    if measured is None:
        return False
    return measured >= bound if test.endswith("at_least") else measured <= bound


@dataclass(frozen=True)
class Rule:
    name: str
    family: str
    data: str  # events | orders | any
    when: tuple[tuple[str, str], ...]  # (feature, "high" | "low")
    description: str  # a verb phrase for "the typical member ..."
    plays: tuple[dict, ...]
    claims: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class Tag:
    """A word for a descriptive name, true when its figure is clearly high (or low)."""

    figure: str
    direction: str  # high | low
    word: str  # "App"
    says: str  # comparative verb phrase: "uses the app more"
    data: str = "any"  # events | orders | any, as for rules


@dataclass(frozen=True)
class RuleBook:
    rules: tuple[Rule, ...]
    tags: tuple[Tag, ...]
    min_z: float
    switch_margin: float = 0.5  # see the module docstring; on the score's (z) scale


@dataclass(frozen=True)
class Naming:
    """A persona's default name and what it rests on."""

    name: str
    rule: Rule | None  # the rule the name is; None for a descriptive name
    family: str  # the rule's family; a descriptive name beside a rival keeps
    # the family of the rule it also meets
    score: float  # the fit of that rule (0 without one)
    evidence: tuple[str, ...]  # features behind the name, strongest first
    claims: tuple[ClaimCheck, ...]  # the claims of the rule or of the words, all holding
    description: str  # verb phrase for "the typical member ..."
    plays: tuple[dict, ...]


# Neither an average group nor one named by its words brings plays of its own: its plays follow
# from its figures (personas.plays), so the group that brings most of the revenue is protected and
# grown whatever its name, and every persona gets a play with a test worth running.
FALLBACK = Rule("Everyday Customer", "average", "any", (), "behaves much like the average user", ())

DESCRIPTIVE_PLAYS: tuple[dict, ...] = ()


# -- the rule file ---------------------------------------------------------------------------------


def _figure_keys() -> set[str]:
    """Every key a claim or tag may name: catalogue features and KPIs."""
    return set(BY_NAME) | {figure_key(k.key) for k in KPIS}


def _bad(path: str | Path | None, message: str) -> InputError:
    return InputError(
        f"rules file {str(path or 'rules.yaml')!r}: {message}", path=str(path or "rules.yaml")
    )


def _claims(raw: Any, rule: str, path: str | Path | None) -> tuple[Claim, ...]:
    """``claims: {figure: {at_least: 2, lift_at_least: 1.5}}`` -> Claims, checked."""
    known = _figure_keys()
    claims = []
    for figure, bounds in (raw or {}).items():
        if figure not in known:
            raise _bad(
                path,
                f"rule {rule!r} claims an unknown figure {figure!r}; use a feature "
                "of the catalogue (features.parquet) or a KPI key (kpi:<key> "
                "where a feature has the same key)",
            )
        if not isinstance(bounds, dict) or not bounds:
            raise _bad(
                path,
                f"rule {rule!r} gives no bounds for {figure!r}; write e.g. "
                f"'{figure}: {{at_least: 2, lift_at_least: 1.5}}'",
            )
        for test, bound in bounds.items():
            if test not in BOUNDS:
                raise _bad(
                    path,
                    f"rule {rule!r} claims {figure!r} with unknown test {test!r}; "
                    "use at_least, at_most, lift_at_least or lift_at_most",
                )
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                raise _bad(
                    path,
                    f"rule {rule!r}: bound {test} of {figure!r} should be a number "
                    f"(found {bound!r})",
                )
        claims.append(Claim(str(figure), tuple((t, float(b)) for t, b in bounds.items())))
    return tuple(claims)


def _tags(raw: Any, path: str | Path | None) -> tuple[Tag, ...]:
    """``tags: {figure: {data: any, high: {word: ..., says: ...}, low: ...}}`` -> Tags. A bare
    word (``high: App``) is accepted; its description then names the figure."""
    known = _figure_keys()
    tags = []
    for figure, spec in (raw or {}).items():
        if figure not in known:
            raise _bad(
                path,
                f"tag for an unknown figure {figure!r}; use a feature of the "
                "catalogue or a KPI key",
            )
        for direction in ("high", "low"):
            entry = spec.get(direction)
            if entry is None:
                continue
            word, says = (
                (entry, "")
                if isinstance(entry, str)
                else (str(entry["word"]), str(entry.get("says", "")))
            )
            tags.append(Tag(str(figure), direction, word, says, str(spec.get("data", "any"))))
    return tuple(tags)


def _read(path: str | Path | None) -> str:
    if not path:
        return resources.files("personas").joinpath("rules.yaml").read_text(encoding="utf-8")
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"rules file {str(path)!r} cannot be read ({exc.strerror})", path=str(path)
        ) from None


def load_rules(path: str | Path | None = None) -> RuleBook:
    """The packaged rule table, or the YAML file at ``path`` (same format, replaces it; a file
    without ``tags`` keeps the packaged words for descriptive names)."""
    try:
        raw = yaml.safe_load(_read(path))
        rules = tuple(
            Rule(
                name=str(r["name"]),
                family=str(r.get("family", r["name"])),
                data=str(r.get("data", "any")),
                when=tuple((str(k), str(v)) for k, v in r["when"].items()),
                description=str(r.get("description", "")),
                plays=tuple(r.get("plays", ())),
                claims=_claims(r.get("claims"), str(r["name"]), path),
            )
            for r in raw["rules"]
        )
        tags = _tags(raw["tags"], path) if "tags" in raw else load_rules().tags if path else ()
        book = RuleBook(
            rules=rules,
            tags=tags,
            min_z=float(raw.get("min_z", 0.3)),
            switch_margin=float(raw.get("switch_margin", 0.5)),
        )
    except yaml.YAMLError as exc:
        raise InputError(
            f"rules file {str(path or 'rules.yaml')!r} is not valid YAML ({yaml_problem(exc)})",
            path=str(path),
        ) from None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InputError(
            f"rules file {str(path or 'rules.yaml')!r} is not a valid rule table "
            f"({exc.__class__.__name__}: {exc}); each rule needs a name and a "
            "'when' mapping of feature: high|low, and min_z and switch_margin "
            "are numbers",
            path=str(path),
        ) from None
    return book


# -- fitting rules ---------------------------------------------------------------------------------


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


def check_claims(rule: Rule, figures: Mapping[str, Stat]) -> tuple[ClaimCheck, ...]:
    """Every claim of ``rule`` checked on one persona's figures (figure key -> Stat)."""
    return tuple(claim.check(figures.get(claim.figure)) for claim in rule.claims)


@dataclass(frozen=True)
class _Fit:
    score: float
    pid: int
    rule: Rule
    checks: tuple[ClaimCheck, ...]


def _fits(
    traits: pd.DataFrame, figures: Mapping[int, Mapping[str, Stat]], rules: list[Rule], min_z: float
) -> list[_Fit]:
    """Every (persona, rule) pair whose conditions and claims all hold, best score first."""
    fits = []
    for pid, row in traits.iterrows():
        z = row.dropna().to_dict()
        own = figures.get(int(pid), {})
        for rule in rules:
            score = score_rule(rule, z, min_z)
            if score is None:
                continue
            checks = check_claims(rule, own)
            if all(c.holds for c in checks):
                fits.append(_Fit(score, int(pid), rule, checks))
    return sorted(fits, key=lambda f: (-f.score, f.pid, f.rule.name))


# -- names that stay apart -------------------------------------------------------------------------


def _words(name: str) -> list[str]:
    return name.casefold().split()


def clashes(name: str, other: str) -> bool:
    """Two names read as one: the same head -- the first word, or its part before a hyphen
    ("Big Spenders" and "Big-Basket Customers", "App-First" and "App Buyers") -- or one holds the
    other as a whole-word phrase ("Champions" and "Champions Frequent", "Lapsed" and "Recently
    Lapsed")."""
    a, b = _words(name), _words(other)
    if not a or not b or a[0].split("-")[0] == b[0].split("-")[0]:
        return True
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return any(long[i : i + len(short)] == short for i in range(len(long) - len(short) + 1))


def _free(name: str, taken: Mapping[str, int]) -> bool:
    return not any(clashes(name, other) for other in taken)


# -- "Everyday Customer" and descriptive names -----------------------------------------------------


def _headline(key: str) -> bool:
    """A KPI or a model feature: the figures an "average" persona must be average on."""
    return key not in BY_NAME or BY_NAME[key].model


def average_checks(
    z: Mapping[str, float], figures: Mapping[str, Stat]
) -> tuple[bool, tuple[ClaimCheck, ...]]:
    """Whether a persona is average in fact -- every model feature's |z| below
    :data:`AVERAGE_Z` and every KPI and model-feature figure within :data:`AVERAGE_LIFT` times
    all users' -- with the lift checks made (a figure without a ratio counts when it equals all
    users')."""
    calm = all(
        abs(v) < AVERAGE_Z
        for f, v in z.items()
        if f in BY_NAME and BY_NAME[f].model and pd.notna(v)
    )
    near = (("lift_at_least", 1 / AVERAGE_LIFT), ("lift_at_most", AVERAGE_LIFT))
    checks, level = [], True
    for key, stat in figures.items():
        if not _headline(key) or pd.isna(stat.value):
            continue
        if stat.lift is None:
            level = level and stat.value == stat.overall
            continue
        checks.append(Claim(key, near).check(stat))
    checks.sort(key=lambda c: -abs(_log_ratio(c.lift, 1.0)))  # furthest from average first
    return calm and level and all(c.holds for c in checks), tuple(checks)


def _noun(figures: Mapping[str, Stat], order_table: bool) -> tuple[str, ClaimCheck | None]:
    """ "Customers" in an order table (everyone bought); else "Buyers" when at least half the
    persona bought, "Visitors" otherwise -- checked on its conversion."""
    if order_table:
        return "Customers", None
    stat = figures.get("conversion_rate")
    if stat is None or pd.isna(stat.value):
        return "Visitors", None
    if stat.value >= BUYERS_FROM:
        return "Buyers", Claim("conversion_rate", (("at_least", BUYERS_FROM),)).check(
            stat, "Buyers"
        )
    return "Visitors", Claim("conversion_rate", (("at_most", BUYERS_FROM),)).check(stat, "Visitors")


def _tag_claim(tag: Tag) -> Claim:
    bound = (
        ("lift_at_least", TAG_LIFT) if tag.direction == "high" else ("lift_at_most", 1 / TAG_LIFT)
    )
    return Claim(tag.figure, (bound,))


def _log_ratio(a: float | None, b: float | None) -> float:
    """log(a / b), 0 when it means nothing (a missing or non-positive figure)."""
    if a is None or b is None or pd.isna(a) or pd.isna(b) or a <= 0 or b <= 0:
        return 0.0
    return math.log(a / b)


def _true_words(
    book: RuleBook, figures: Mapping[str, Stat], kind: str, rival: Mapping[str, Stat] | None
) -> list[tuple[Tag, ClaimCheck]]:
    """The tags whose claim holds on the persona's figures, the most telling first: beside a
    rival, the words that also set it apart from the rival (by the ratio of the two personas'
    figures), then the others; each group by how far the figure is from all users'."""
    true = []
    for tag in book.tags:
        if tag.data not in (kind, "any") or tag.figure not in figures:
            continue
        check = _tag_claim(tag).check(figures[tag.figure], tag.word)
        if check.holds:
            true.append((tag, check))

    def rank(item: tuple[Tag, ClaimCheck]) -> tuple[int, float]:
        tag, check = item
        sign = 1 if tag.direction == "high" else -1
        apart = 0.0
        if rival is not None and tag.figure in rival:
            apart = sign * _log_ratio(check.value, rival[tag.figure].value)
        return (0 if apart > 0 else 1), -(apart if apart > 0 else abs(_log_ratio(check.lift, 1)))

    return sorted(true, key=rank)


def _says(tag: Tag, check: ClaimCheck) -> str:
    if tag.says:
        return tag.says
    return (
        f"stands out with a {'higher' if tag.direction == 'high' else 'lower'} "
        f"{check.label[:1].lower() + check.label[1:]}"
    )


def descriptive_name(
    pid: int,
    figures: Mapping[str, Stat],
    book: RuleBook,
    *,
    order_table: bool,
    taken: Mapping[str, int],
    rival: Mapping[str, Stat] | None = None,
) -> tuple[str, str, tuple[ClaimCheck, ...]]:
    """(name, description, claims) of a persona no free rule names: one true word and the noun
    ("App Buyers"), two words when every single one is taken, else "Other <noun>" and, past
    that, "Persona <id>" -- the only names that say nothing, for groups no word is true of."""
    noun, noun_check = _noun(figures, order_table)
    words = _true_words(book, figures, "orders" if order_table else "events", rival)
    options = [[w] for w in words] + [
        [a, b] for i, a in enumerate(words) for b in words[i + 1 :] if a[0].figure != b[0].figure
    ]
    extra = (noun_check,) if noun_check is not None else ()
    for chosen in options:
        name = " ".join([tag.word for tag, _ in chosen] + [noun])
        if _free(name, taken):
            says = " and ".join(_says(tag, check) for tag, check in chosen)
            return (
                name,
                f"{says} than the average user",
                tuple(check for _, check in chosen) + extra,
            )
    fallback = f"Other {noun}" if _free(f"Other {noun}", taken) else f"Persona {pid}"
    return fallback, "has no figure far enough from the average user's for a naming word", extra


# -- naming all personas ---------------------------------------------------------------------------


def name_personas(
    traits: pd.DataFrame,
    figures: Mapping[int, Mapping[str, Stat]],
    *,
    order_table: bool,
    book: RuleBook | None = None,
) -> dict[int, Naming]:
    """Name every persona (row of ``traits``: persona id x feature z-scores) uniquely.

    ``figures`` maps each persona id to its figures by key (catalogue features as the card shows
    them and KPIs, :func:`personas.profile.figure_table`); the claims are checked on them.
    Rules whose features are missing from ``traits`` are never used, so an order table cannot get
    a browsing or cart name; ``order_table`` switches to the RFM vocabulary.
    """
    book = book or load_rules()
    kind = "orders" if order_table else "events"
    rules = [
        r
        for r in book.rules
        if r.data in (kind, "any") and all(f in traits.columns for f, _ in r.when)
    ]
    fits = _fits(traits, figures, rules, book.min_z)
    best: dict[int, _Fit] = {}
    for fit in fits:
        best.setdefault(fit.pid, fit)
    result: dict[int, Naming] = {}
    taken: dict[str, int] = {}  # name -> persona id
    for fit in fits:
        if fit.pid in result or not _free(fit.rule.name, taken):
            continue
        if fit.score < best[fit.pid].score - book.switch_margin:  # clearly worse: keep apart
            continue
        result[fit.pid] = Naming(
            fit.rule.name,
            fit.rule,
            fit.rule.family,
            fit.score,
            _evidence(fit.rule.when, traits.loc[fit.pid]),
            fit.checks,
            fit.rule.description,
            fit.rule.plays,
        )
        taken[fit.rule.name] = fit.pid
    rest = sorted(
        (int(p) for p in traits.index if int(p) not in result),
        key=lambda p: (-best[p].score if p in best else 0.0, p),
    )
    for pid in rest:
        result[pid] = _unnamed(
            pid, traits.loc[pid], figures, best.get(pid), book, order_table=order_table, taken=taken
        )
        taken[result[pid].name] = pid
    return result


def _unnamed(
    pid: int,
    row: pd.Series,
    figures: Mapping[int, Mapping[str, Stat]],
    fit: _Fit | None,
    book: RuleBook,
    *,
    order_table: bool,
    taken: Mapping[str, int],
) -> Naming:
    """The name of a persona the rules left: beside the persona that took its best rule, what
    sets it apart; "Everyday Customer" when it is average in fact; else its strongest true
    traits."""
    own = figures.get(pid, {})
    z = row.dropna().to_dict()
    if fit is not None:
        held = next(n for n in taken if clashes(fit.rule.name, n))  # the name in the way
        name, says, checks = descriptive_name(
            pid, own, book, order_table=order_table, taken=taken, rival=figures.get(taken[held], {})
        )
        why = (
            "a name that went to a persona that fits it better"
            if held == fit.rule.name
            else f"a name too close to {held}, which another persona has"
        )
        description = f"{says}; the group also matches {fit.rule.name}, {why}"
        return Naming(
            name,
            None,
            fit.rule.family,
            fit.score,
            _word_evidence(checks, row),
            checks,
            description,
            fit.rule.plays,
        )
    average, checks = average_checks(z, own)
    if average and _free(FALLBACK.name, taken):
        return Naming(
            FALLBACK.name,
            FALLBACK,
            FALLBACK.family,
            0.0,
            _evidence((), row),
            checks,
            FALLBACK.description,
            FALLBACK.plays,
        )
    name, says, checks = descriptive_name(pid, own, book, order_table=order_table, taken=taken)
    return Naming(
        name, None, "descriptive", 0.0, _word_evidence(checks, row), checks, says, DESCRIPTIVE_PLAYS
    )


def _evidence(when: tuple[tuple[str, str], ...], row: pd.Series) -> tuple[str, ...]:
    features = [f for f, _ in when if f in row and pd.notna(row[f])]
    if not features:  # no conditions: the strongest traits, whatever they are
        features = list(row.dropna().abs().sort_values(ascending=False).index[:2])
    return tuple(sorted(features, key=lambda f: -abs(row[f])))


def _word_evidence(checks: tuple[ClaimCheck, ...], row: pd.Series) -> tuple[str, ...]:
    """The features behind a descriptive name's words, in word order; else the strongest
    traits."""
    features = [c.figure for c in checks if c.figure in row and pd.notna(row[c.figure])]
    return tuple(dict.fromkeys(features)) or _evidence((), row)


# -- renames ---------------------------------------------------------------------------------------


def load_renames(path: str | Path) -> dict[str, str]:
    """A ``{current name: new name}`` mapping from a YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(
            f"renames file {str(path)!r} cannot be read ({exc.strerror}); check renames_path",
            path=str(path),
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(
            f"renames file {str(path)!r} is not valid YAML ({yaml_problem(exc)})", path=str(path)
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(
            f"renames file {str(path)!r} should map persona names to new names, "
            "e.g. 'Frequent Browser: Researchers'",
            path=str(path),
        )
    return {str(k): v for k, v in data.items()}


def apply_renames(names: dict[int, str], renames: Mapping[str, str]) -> dict[int, str]:
    """Rename by current name (``{"Frequent Browser": "Researchers"}``); keep names unique."""
    out = {pid: renames.get(name, name) for pid, name in names.items()}
    if len(set(out.values())) != len(out):
        dupes = sorted({n for n in out.values() if list(out.values()).count(n) > 1})
        raise InputError(
            f"renames give two personas the same name ({', '.join(dupes)}); choose distinct names"
        )
    return out
