"""Names from rules: scores, claims on the persona's own figures, names kept apart, descriptive
names, vocabularies, grammar, renames and rule files."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from personas.errors import InputError
from personas.naming import (
    FALLBACK,
    Claim,
    Rule,
    apply_renames,
    clashes,
    load_rules,
    name_personas,
    score_rule,
)
from personas.profile import figure_table, lift_of, trait_table
from personas.results import Stat

BOOK = load_rules()
RULES = {r.name: r for r in BOOK.rules}


def test_rule_score_is_stouffer_combined_and_fails_on_any_weak_condition():
    rule = Rule("X", "x", "any", (("a", "high"), ("b", "low")), "", ())
    assert score_rule(rule, {"a": 1.0, "b": -2.0}, 0.3) == pytest.approx(3 / math.sqrt(2))
    assert score_rule(rule, {"a": 9.0, "b": -1.0}, 0.3) == pytest.approx(4 / math.sqrt(2))  # cap 3
    assert score_rule(rule, {"a": 1.0, "b": -0.1}, 0.3) is None
    assert score_rule(rule, {"a": 1.0}, 0.3) is None


# -- helpers ---------------------------------------------------------------------------------------


def traits(rows: dict[int, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index")


EVENT_COLUMNS = [
    "orders",
    "avg_order_value",
    "days_since_seen",
    "discount_share",
    "view_to_cart",
    "cart_to_purchase",
    "abandoned_carts",
    "search_share",
    "sessions",
    "app_share",
    "email_opens",
    "email_click_rate",
    "days_since_first_seen",
    "recent_share",
    "active_days",
    "events_per_session",
    "views_per_session",
    "revenue",
    "tenure_days",
    "days_between_orders",
]


def base(**z):
    row = dict.fromkeys(EVENT_COLUMNS, 0.0)
    row.update(z)
    return row


def stat(key: str, value: float, overall: float, lift: float | None = None, unit: str = "") -> Stat:
    """A figure as the profile makes it; ``lift`` set by hand keeps a bound exact."""
    return Stat(
        key,
        key.replace("_", " "),
        float(value),
        float(overall),
        lift if lift is not None else lift_of(value, overall),
        unit,
        "mean",
    )


def meeting(*rules: str, **figures: tuple[float, float]) -> dict[str, Stat]:
    """Figures that meet every claim of ``rules`` exactly at its bounds, plus ``figures``
    given as (value, all users' value)."""
    out = {}
    for name in rules:
        for claim in RULES[name].claims:
            bounds = dict(claim.bounds)
            value = bounds.get("at_least", bounds.get("at_most", 1.0))
            lift = bounds.get("lift_at_least", bounds.get("lift_at_most", 1.0))
            out[claim.figure] = stat(claim.figure, value, value / lift, lift)
    out.update({k: stat(k, *v) for k, v in figures.items()})
    return out


def names_of(namings) -> dict[int, str]:
    return {pid: n.name for pid, n in namings.items()}


def assert_apart(names) -> None:
    """Unique names, no tags, no shared first word, none inside another."""
    names = list(names)
    assert len(set(names)) == len(names), names
    assert not any("·" in n or re.search(r" \d+$", n) for n in names), names
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not clashes(a, b), (a, b)


# -- claims ----------------------------------------------------------------------------------------


def test_claims_hold_at_their_thresholds_and_fail_just_past_them():
    at_least = Claim("purchase_frequency", (("at_least", 2.0), ("lift_at_least", 1.5)))
    assert at_least.check(stat("purchase_frequency", 2.0, 1.0, lift=1.5)).holds
    assert not at_least.check(stat("purchase_frequency", 1.99, 1.0, lift=1.5)).holds
    assert not at_least.check(stat("purchase_frequency", 2.0, 1.0, lift=1.49)).holds
    at_most = Claim("days_since_first_seen", (("at_most", 60.0), ("lift_at_most", 0.5)))
    assert at_most.check(stat("days_since_first_seen", 60.0, 120.0)).holds
    assert not at_most.check(stat("days_since_first_seen", 60.5, 121.0)).holds  # 60.5 > 60
    assert not at_most.check(stat("days_since_first_seen", 50.0, 99.0)).holds  # lift 0.505
    check = at_least.check(stat("purchase_frequency", 3.0, 1.5))
    assert (check.value, check.overall, check.lift, check.holds) == (3.0, 1.5, 2.0, True)
    assert check.bounds == (("at_least", 2.0), ("lift_at_least", 1.5)) and check.word == ""
    # a figure the data lacks, or a lift that means nothing, never holds
    missing = at_least.check(None)
    assert missing.holds is False and missing.value is None
    assert missing.label == "purchase_frequency"
    assert not at_least.check(stat("purchase_frequency", 3.0, 0.0)).holds  # no lift
    assert not at_least.check(stat("purchase_frequency", float("nan"), 1.0)).holds


def test_each_behaviour_gets_its_name():
    t = traits(
        {
            0: base(orders=1.5, avg_order_value=1.2, days_since_seen=-0.8),
            1: base(view_to_cart=1.0, cart_to_purchase=-1.5, abandoned_carts=1.2),
            2: base(search_share=1.0, view_to_cart=-1.0, orders=-0.8),
            3: base(days_since_seen=2.2, recent_share=-1.4),
            4: base(discount_share=1.7, avg_order_value=-0.8),
        }
    )
    figures = {
        0: meeting("Loyal Big Spender"),
        1: meeting("Cart Abandoner"),
        2: meeting("Frequent Browser"),
        3: meeting("Lapsed"),
        4: meeting("Bargain Hunter"),
    }
    named = name_personas(t, figures, order_table=False)
    assert names_of(named) == {
        0: "Loyal Big Spender",
        1: "Cart Abandoner",
        2: "Frequent Browser",
        3: "Lapsed",
        4: "Bargain Hunter",
    }
    # each records its rule's claims with the persona's numbers, all holding
    assert [c.figure for c in named[3].claims] == ["kpi:days_since_seen"]
    assert named[3].claims[0].value == 60 and named[3].claims[0].lift == 1.5
    assert all(c.holds for n in named.values() for c in n.claims)
    assert named[1].description == RULES["Cart Abandoner"].description
    assert named[1].family == "cart_abandoner" and named[1].rule == RULES["Cart Abandoner"]


def test_a_rule_whose_claim_fails_on_the_persona_figures_is_not_used():
    """The CDNOW case: traits say "arrived later, buys more" (New Customer fits best), but the
    group was first seen 482 days ago, against 502 for all users: not new. It gets the next rule
    whose claims hold; once no rule holds, a name from the figures that are true of it."""
    t = traits(
        {0: {"days_since_first_seen": -2.5, "orders": 1.0, "revenue": 1.0, "days_since_seen": -0.8}}
    )
    assert score_rule(RULES["New Customer"], t.loc[0], 0.3) > score_rule(
        RULES["Champions"], t.loc[0], 0.3
    )
    old = {
        "days_since_first_seen": (482.0, 502.0),
        "purchase_frequency": (6.0, 3.0),
        "revenue_per_user": (300.0, 100.0),
        "kpi:days_since_seen": (100.0, 400.0),
        "conversion_rate": (1.0, 1.0),
    }
    named = name_personas(t, {0: meeting(**old)}, order_table=True)[0]
    assert named.name == "Champions"
    assert [c.figure for c in named.claims] == [
        "purchase_frequency",
        "revenue_per_user",
        "kpi:days_since_seen",
    ]
    recent = {**old, "days_since_first_seen": (20.0, 502.0)}
    assert name_personas(t, {0: meeting(**recent)}, order_table=True)[0].name == "New Customer"
    # Champions' claim of buying often fails too (1.3x all users, not 1.5x): a descriptive name
    modest = {**old, "purchase_frequency": (3.9, 3.0)}
    named = name_personas(t, {0: meeting(**modest)}, order_table=True)[0]
    assert named.rule is None and named.family == "descriptive"
    assert named.name == "High-Value Customers"  # revenue 3x: the furthest true word
    assert [(c.word, c.figure, c.holds) for c in named.claims] == [
        ("High-Value", "revenue_per_user", True)
    ]
    assert "New" not in named.name.split()


def test_the_buyer_group_with_most_revenue_is_never_everyday():
    """All of it bought, 3.3x the orders and most of the revenue: whatever the traits say, that
    is not "much like the average user"."""
    t = traits({0: base(), 1: base(orders=0.25, avg_order_value=0.2)})
    biggest = meeting(
        conversion_rate=(1.0, 0.3),
        purchase_frequency=(3.3, 1.0),
        revenue_per_user=(960.0, 300.0),
        avg_order_value=(80.0, 75.0),
    )
    for pid in (0, 1):
        named = name_personas(t.loc[[pid]], {pid: biggest}, order_table=False)[pid]
        assert named.name != FALLBACK.name
        assert named.name == "Frequent Buyers"  # 3.3x: the furthest true word
        assert {c.word: c.holds for c in named.claims} == {"Frequent": True, "Buyers": True}
        assert named.description == "buys more often than the average user"


def test_a_genuinely_average_group_is_everyday_and_says_why():
    t = traits({0: base(orders=0.1, days_since_seen=-0.2)})
    figures = meeting(
        conversion_rate=(0.31, 0.30),
        purchase_frequency=(1.1, 1.0),
        revenue_per_user=(95.0, 100.0),
        orders=(1.0, 1.0),
    )
    named = name_personas(t, {0: figures}, order_table=False)[0]
    assert named.name == "Everyday Customer" and named.family == "average"
    assert named.description == "behaves much like the average user"
    assert {c.figure for c in named.claims} == {
        "conversion_rate",
        "purchase_frequency",
        "revenue_per_user",
        "orders",
    }
    assert all(
        c.holds and c.bounds == (("lift_at_least", 1 / 1.5), ("lift_at_most", 1.5))
        for c in named.claims
    )
    assert named.claims[0].figure == "purchase_frequency"  # furthest from 1 first (1.1x)
    # a model feature 0.3 standard deviations off is no longer average
    moved = traits({0: base(orders=0.3)})
    assert name_personas(moved, {0: figures}, order_table=False)[0].name != "Everyday Customer"


def test_two_personas_fitting_one_rule_get_names_that_tell_them_apart():
    cart = dict(view_to_cart=1.0, cart_to_purchase=-1.5, abandoned_carts=1.2)
    # 1's app share is no match for its cart traits (App-First would fit far worse)
    t = traits({0: base(**cart), 1: base(**{k: v * 0.9 for k, v in cart.items()}, app_share=0.8)})
    figures = {
        0: meeting("Cart Abandoner", app_share=(0.5, 0.5), conversion_rate=(0.2, 0.4)),
        1: meeting("Cart Abandoner", app_share=(0.8, 0.5), conversion_rate=(0.2, 0.4)),
    }
    named = name_personas(t, figures, order_table=False)
    assert names_of(named) == {0: "Cart Abandoner", 1: "App Visitors"}
    second = named[1]
    assert second.rule is None and second.family == "cart_abandoner"  # it meets the rule
    assert second.plays == RULES["Cart Abandoner"].plays
    assert [(c.word, c.figure, c.value, c.overall) for c in second.claims] == [
        ("App", "app_share", 0.8, 0.5),
        ("Visitors", "conversion_rate", 0.2, 0.4),
    ]
    assert second.description == (
        "uses the app more than the average user; the group also matches Cart "
        "Abandoner, a name that went to a persona that fits it better"
    )
    assert_apart(names_of(named).values())


def test_a_word_is_used_only_when_its_figure_is_clearly_high_or_low():
    cart = dict(view_to_cart=1.0, cart_to_purchase=-1.5, abandoned_carts=1.2)
    t = traits({0: base(**cart), 1: base(**cart, app_share=0.8, weekend_share=0.9)})
    shared = meeting("Cart Abandoner", conversion_rate=(0.2, 0.4))
    rival = {
        **shared,
        "app_share": stat("app_share", 0.5, 0.5),
        "weekend_share": stat("weekend_share", 0.3, 0.3),
    }
    # the z says "more app", the figure says 1.2x: not "clearly" (1.25x) -- no "App"; of the
    # true words, "Weekend" sets it apart from the Cart Abandoner (its carts do not)
    mine = {
        **shared,
        "app_share": stat("app_share", 0.6, 0.5),
        "weekend_share": stat("weekend_share", 0.4, 0.3),
    }
    named = name_personas(t, {0: rival, 1: mine}, order_table=False)
    assert named[1].name == "Weekend Visitors"
    assert named[1].claims[0].lift == pytest.approx(4 / 3)
    # carts at all users' level (the rule's claim fails), no word true, not average either:
    # "Other Visitors", then the id
    plain = {
        "conversion_rate": stat("conversion_rate", 0.2, 0.4),
        "app_share": stat("app_share", 0.55, 0.5),
        "abandoned_carts": stat("abandoned_carts", 1, 1),
        "cart_to_purchase": stat("cart_to_purchase", 0.3, 0.33),
    }
    t3 = traits({0: base(**cart), 1: base(**cart), 2: base(**cart)})
    names = names_of(name_personas(t3, {0: rival, 1: plain, 2: plain}, order_table=False))
    assert names == {0: "Cart Abandoner", 1: "Other Visitors", 2: "Persona 2"}


def test_names_that_read_as_one_clash():
    assert clashes("Champions", "Champions · Frequent")
    assert clashes("Everyday Customer", "Everyday Customer · Buyer")
    assert clashes("New Visitor", "new customer")  # same first word, any case
    assert clashes("Lapsed", "Recently Lapsed")  # one inside the other
    assert clashes("App Buyers", "App-First")  # the head before a hyphen
    assert clashes("Big Spenders", "Big-Basket Customers")
    assert not clashes("Frequent Browser", "Weekend Visitors")
    assert not clashes("At Risk", "Active Customers")
    assert clashes("Buyers", "Lapsed Buyers Club")  # either way round


def test_a_rule_is_not_taken_when_its_first_word_is_taken():
    """New Visitor and New Customer share "New": the weaker fit gets another name."""
    t = traits(
        {
            0: base(days_since_first_seen=-2.5, orders=-1.0),
            1: base(days_since_first_seen=-1.0, orders=1.0, app_share=0.6),
        }
    )
    figures = {
        0: meeting("New Visitor"),
        1: meeting("New Customer", app_share=(0.9, 0.5), conversion_rate=(0.6, 0.3)),
    }
    named = name_personas(t, figures, order_table=False)
    assert names_of(named) == {0: "New Visitor", 1: "Late-Joining Buyers"}  # the noun: it buys
    assert named[1].description.endswith(
        "the group also matches New Customer, a name too close to New Visitor, which "
        "another persona has"
    )
    figures[0]["app_share"] = stat("app_share", 0.5, 0.5)  # app use sets them apart
    named = names_of(name_personas(t, figures, order_table=False))
    assert named == {0: "New Visitor", 1: "App Buyers"}


def test_a_second_choice_rule_must_fit_almost_as_well_or_the_name_is_descriptive():
    # 0 and 1 both fit One-time Buyer best; 1's other rule (Occasional Buyer) fits far worse, so
    # 1 is named by what sets it apart from 0: its weekend visits
    once = dict(active_days=-1.9, tenure_days=-1.8, cart_to_purchase=0.6, days_since_seen=1.1)
    t = traits(
        {
            0: base(**once),
            1: base(
                **once, sessions=-0.8, orders=-0.4, weekend_share=0.9, days_since_first_seen=0.5
            ),
        }
    )
    figures = {
        0: meeting("One-time Buyer", weekend_share=(0.2, 0.3)),
        1: meeting("One-time Buyer", "Occasional Buyer", weekend_share=(0.5, 0.3)),
    }
    figures[1]["conversion_rate"] = stat("conversion_rate", 0.6, 0.4)
    named = name_personas(t, figures, order_table=False)
    assert names_of(named) == {0: "One-time Buyer", 1: "Weekend Buyers"}
    assert named[1].family == "one_time"
    # a second rule within the margin is taken instead: gone-quiet buyers that fit Lapsed a
    # little better than At-Risk Customer become At-Risk Customers once Lapsed is taken
    t = traits(
        {
            0: base(days_since_seen=2.4, recent_share=-1.4),
            1: base(days_since_seen=1.2, recent_share=-1.0, orders=0.7),
        }
    )
    figures = {0: meeting("Lapsed"), 1: meeting("At-Risk Customer")}
    assert names_of(name_personas(t, figures, order_table=False)) == {
        0: "Lapsed",
        1: "At-Risk Customer",
    }


def test_order_tables_get_rfm_names_and_never_browsing_or_cart_names():
    rfm = [
        "orders",
        "revenue",
        "avg_order_value",
        "days_since_seen",
        "days_between_orders",
        "days_since_first_seen",
        "tenure_days",
    ]
    rng = np.random.default_rng(0)
    t = pd.DataFrame(rng.normal(0, 1.5, size=(8, len(rfm))), columns=rfm)
    keys = rfm + [
        "purchase_frequency",
        "revenue_per_user",
        "conversion_rate",
        "kpi:days_since_seen",
        "kpi:avg_order_value",
        "weekend_share",
        "app_share",
    ]
    figures = {
        pid: {k: stat(k, float(rng.uniform(0.3, 3.0)), 1.0) for k in keys} for pid in range(8)
    }
    named = name_personas(t, figures, order_table=True)
    rfm_rules = {r.name for r in BOOK.rules if r.data in ("orders", "any")}
    rfm_words = {tag.word for tag in BOOK.tags if tag.data in ("orders", "any")}
    for n in named.values():
        if n.rule is not None:
            assert n.name in rfm_rules | {FALLBACK.name}
        else:
            *words, noun = n.name.split()
            assert noun == "Customers" and set(words) <= rfm_words | {"Other"}, n.name
    assert_apart(names_of(named).values())
    assert not any(
        word in n
        for n in names_of(named).values()
        for word in ("Browser", "Cart", "Shopper", "Email", "App", "Weekend")
    )


# -- grammar: "the typical member <description>" ---------------------------------------------------

ADVERBS = {
    "seldom",
    "rarely",
    "often",
    "mostly",
    "already",
    "again",
    "also",
    "far",
    "still",
    "never",
    "not",
}
PLURAL_VERBS = {
    "have",
    "are",
    "were",
    "buy",
    "spend",
    "visit",
    "open",
    "click",
    "use",
    "browse",
    "search",
    "add",
    "keep",
    "come",
    "do",
    "return",
    "look",
    "view",
    "complete",
    "arrive",
    "leave",
    "explore",
    "pay",
    "stand",
    "behave",
    "fit",
    "meet",
}
PAST = {"bought", "came", "was", "went", "spent", "kept", "left", "paid"}


def singular_problems(description: str) -> list[str]:
    """The clauses of ``description`` that do not agree with "the typical member": its first
    verb must be third-person singular or past, and no clause may start with a plural verb."""
    problems = []
    clauses = re.split(r",\s*|;\s*|\s+(?:and|but|or)\s+", description)
    for i, clause in enumerate(clauses):
        words = [w for w in clause.split() if w not in ADVERBS]
        if not words:
            continue
        first = words[0]
        if first in PLURAL_VERBS:
            problems.append(clause)
        elif i == 0 and not (first.endswith(("s", "ed")) or first in PAST):
            problems.append(clause)
    return problems


def test_the_grammar_check_catches_plural_descriptions():
    assert singular_problems("bought once and have not returned") == ["have not returned"]
    assert singular_problems("bought recently, buy often and spend the most") == [
        "buy often",
        "spend the most",
    ]
    assert singular_problems("buy often") == ["buy often"]
    assert singular_problems("buys often, spends well and was here recently") == []


def test_every_description_agrees_with_a_singular_subject():
    for rule in (*BOOK.rules, FALLBACK):
        assert singular_problems(rule.description) == [], rule.name
    for tag in BOOK.tags:
        assert singular_problems(f"{tag.says} than the average user") == [], tag.word
    # generated descriptions: one word, two words, beside a rival, and none true
    cart = dict(view_to_cart=1.0, cart_to_purchase=-1.5, abandoned_carts=1.2)
    t = traits({0: base(**cart), 1: base(**cart, app_share=1.5), 2: base(orders=0.8)})
    figures = {
        0: meeting("Cart Abandoner"),
        1: meeting("Cart Abandoner", app_share=(0.8, 0.5)),
        2: meeting(purchase_frequency=(3.0, 1.0), revenue_per_user=(300.0, 100.0)),
    }
    taken = {"Frequent Buyers": 9, "High-Value Buyers": 8}
    from personas.naming import descriptive_name

    generated = [n.description for n in name_personas(t, figures, order_table=False).values()]
    generated.append(descriptive_name(2, figures[2], BOOK, order_table=True, taken=taken)[1])
    generated.append(descriptive_name(3, {}, BOOK, order_table=True, taken={})[1])
    new = traits(
        {
            0: base(days_since_first_seen=-2.5, orders=-1.0),
            1: base(days_since_first_seen=-1.0, orders=1.0),
        }
    )
    generated.append(
        name_personas(
            new, {0: meeting("New Visitor"), 1: meeting("New Customer")}, order_table=False
        )[1].description
    )
    assert len(generated) == 6
    for text in generated:
        assert singular_problems(text) == [], text


# -- renames and rule files ------------------------------------------------------------------------


def test_renames_follow_the_name_and_must_stay_unique():
    names = {3: "Frequent Browser", 5: "Lapsed"}
    renamed = apply_renames(names, {"Lapsed": "Gone quiet"})
    assert renamed == {3: "Frequent Browser", 5: "Gone quiet"}
    with pytest.raises(InputError, match="same name"):
        apply_renames(names, {"Lapsed": "Frequent Browser"})


def test_a_rules_file_replaces_the_packaged_rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "min_z: 0.5\nrules:\n  - name: Heavy\n    when: {orders: high}\n"
        "    description: buys a lot\n"
        "    claims:\n      purchase_frequency: {at_least: 3, lift_at_least: 2}\n"
    )
    book = load_rules(path)
    assert [r.name for r in book.rules] == ["Heavy"] and book.min_z == 0.5
    assert book.rules[0].claims == (
        Claim("purchase_frequency", (("at_least", 3.0), ("lift_at_least", 2.0))),
    )
    assert book.tags == BOOK.tags  # no tags in the file: the packaged words
    heavy = {0: meeting(purchase_frequency=(3.0, 1.5))}
    t = traits({0: {"orders": 1.0}})
    assert name_personas(t, heavy, order_table=False, book=book)[0].name == "Heavy"
    light = {0: meeting(purchase_frequency=(2.9, 1.0), conversion_rate=(0.9, 0.5))}
    assert name_personas(t, light, order_table=False, book=book)[0].name == "Frequent Buyers"


def test_a_broken_rules_file_is_a_clear_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - when: {orders: high}\n")
    with pytest.raises(InputError, match="not a valid rule table"):
        load_rules(path)
    path.write_text("switch_margin: wide\nrules:\n  - name: Heavy\n    when: {orders: high}\n")
    with pytest.raises(InputError, match="switch_margin are numbers"):
        load_rules(path)
    with pytest.raises(InputError, match="cannot be read"):
        load_rules(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "claims, message",
    [
        ("{orders: {more_than: 2}}", "claims 'orders' with unknown test 'more_than'; use at_least"),
        ("{order_count: {at_least: 2}}", "claims an unknown figure 'order_count'"),
        (
            "{avg_order_value: {at_least: 2}, days_since_seen: {}}",
            "gives no bounds for 'days_since_seen'",
        ),
        ("{orders: {at_least: many}}", "bound at_least of 'orders' should be a number"),
        ("{orders: {at_least: true}}", "bound at_least of 'orders' should be a number"),
    ],
)
def test_a_broken_claim_is_a_clear_error(tmp_path, claims, message):
    path = tmp_path / "rules.yaml"
    path.write_text(f"rules:\n  - name: Heavy\n    when: {{orders: high}}\n    claims: {claims}\n")
    with pytest.raises(InputError, match=re.escape(message)):
        load_rules(path)


def test_a_broken_tag_is_a_clear_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules: []\ntags:\n  app_shares: {high: App}\n")
    with pytest.raises(InputError, match="tag for an unknown figure 'app_shares'"):
        load_rules(path)
    path.write_text("rules: []\ntags:\n  app_share: {high: App}\n")  # a bare word is fine
    (tag,) = load_rules(path).tags
    assert (tag.figure, tag.direction, tag.word, tag.says) == ("app_share", "high", "App", "")


def test_trait_table_is_the_standardised_difference_of_means():
    features = pd.DataFrame({"discount_share": [0.0, 0.0, 1.0, 1.0]})
    z = trait_table(features, np.array([0, 0, 1, 1]))
    assert z.loc[1, "discount_share"] == pytest.approx(1.0)
    assert z.loc[0, "discount_share"] == pytest.approx(-1.0)
    counts = pd.DataFrame({"orders": [0.0, 0.0, np.e - 1, np.e - 1]})  # log1p -> 0, 0, 1, 1
    assert trait_table(counts, np.array([0, 0, 1, 1])).loc[1, "orders"] == pytest.approx(1.0)


def test_renames_file_is_read_and_a_bad_one_is_a_clear_error(tmp_path):
    from personas.naming import load_renames

    good = tmp_path / "renames.yaml"
    good.write_text("Frequent Browser: Researchers\n'App Visitors': Mobile carts\n")
    assert load_renames(good) == {"Frequent Browser": "Researchers", "App Visitors": "Mobile carts"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="should map persona names to new names"):
        load_renames(bad)
    with pytest.raises(InputError, match="cannot be read"):
        load_renames(tmp_path / "missing.yaml")


# -- planted personas, both casts ------------------------------------------------------------------


def planted_features(tmp_path, n_users: int, seed: int, mix: str):
    """Features of a planted log and each user's planted persona, aligned."""
    from personas import PersonaParams
    from personas.features import BY_NAME, compute_features
    from personas.load import load_events
    from personas.sample import write_sample

    events, truth = write_sample(tmp_path / f"{mix}.parquet", n_users=n_users, seed=seed, mix=mix)
    features, _ = compute_features(load_events(PersonaParams(events_path=str(events))))
    planted = pd.read_csv(truth, dtype=str).set_index("user_id")["persona"]
    return features[[c for c in features.columns if c in BY_NAME]], planted.reindex(features.index)


@pytest.mark.parametrize("mix", ["default", "holdout"])
def test_planted_groups_named_directly_get_a_name_of_their_family(tmp_path, mix):
    """The rules alone, without the model: each planted group (noise left out) is named as a
    persona, and the name must belong to its family, by a rule whose claims hold on the group's
    figures -- on the default cast and the held-out one."""
    from personas.sample import FAMILIES, MIXES

    features, planted = planted_features(tmp_path, 1500, 11, mix)
    keep = (planted != "noise").to_numpy()
    keys = [k for k in MIXES[mix] if k != "noise"]
    codes = planted[keep].map({k: i for i, k in enumerate(keys)}).to_numpy()
    table = figure_table(features[keep], codes)
    named = name_personas(
        trait_table(features[keep], codes),
        {i: table.of(i) for i in range(len(keys))},
        order_table=False,
    )
    names = {keys[i]: n.name for i, n in named.items()}
    assert_apart(names.values())
    wrong = {keys[i]: n.name for i, n in named.items() if n.family not in FAMILIES[keys[i]]}
    assert not wrong, names
    assert all(
        n.rule is not None and n.claims and all(c.holds for c in n.claims) for n in named.values()
    ), names


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory):
    """One in-process run on 3,000 users of the held-out cast (other planted personas)."""
    from personas import PersonaParams, pipeline
    from personas.sample import write_sample

    folder = tmp_path_factory.mktemp("holdout")
    events, truth = write_sample(folder / "shop.parquet", n_users=3000, seed=0, mix="holdout")
    result = pipeline.run(
        PersonaParams(events_path=str(events), output_dir=str(folder / "run"), random_state=0)
    )
    planted = pd.read_csv(truth, dtype=str)
    return result, planted.merge(result.assignments, on="user_id", validate="one_to_one")


@pytest.mark.slow
def test_holdout_personas_have_unique_names_whose_claims_hold(holdout_run):
    result, _ = holdout_run
    names = [p.name for p in result.profiles]
    assert len(names) >= 4
    assert_apart(names)
    rules = {r.name: r.family for r in BOOK.rules}
    for p in result.profiles:
        assert p.claims and all(c.holds for c in p.claims), p.name
        assert p.rule == "" or (p.rule == p.name and rules[p.rule] == p.family)


@pytest.mark.slow
@pytest.mark.parametrize(
    "planted",
    ["app_first", "one_time_buyer", "power_user", "at_risk", "deal_seeker", "window_shopper"],
)
def test_holdout_planted_persona_lands_mostly_in_a_persona_of_its_family(holdout_run, planted):
    from personas.sample import FAMILIES

    result, both = holdout_run
    family = {p.name: p.family for p in result.profiles}
    users = both[both["persona_x"] == planted]
    share = users["persona_y"].map(family).isin(FAMILIES[planted]).mean()
    assert len(users) >= 250
    assert share > 0.5, users["persona_y"].value_counts().to_dict()


@pytest.mark.slow
def test_an_order_table_run_gets_rfm_names_no_event_mix_and_no_session_figures(tmp_path):
    """A real run on transactions only (no event column): RFM names (or RFM words), never
    browsing or cart; no event mix and nothing per session on the cards."""
    from personas import PersonaParams, pipeline
    from personas.sample import make_events

    events, _ = make_events(2500, seed=5)
    orders = events.loc[events["event"] == "purchase", ["user_id", "timestamp", "amount"]]
    path = tmp_path / "orders.csv"
    orders.to_csv(path, index=False)
    result = pipeline.run(
        PersonaParams(events_path=str(path), output_dir=str(tmp_path / "run"), random_state=0)
    )
    assert result.info["input"]["order_table"] is True
    names = [p.name for p in result.profiles]
    assert len(names) >= 4
    assert_apart(names)
    rfm = {r.name for r in BOOK.rules if r.data in ("orders", "any")} | {FALLBACK.name}
    rfm_words = {tag.word for tag in BOOK.tags if tag.data in ("orders", "any")} | {"Other"}
    for name in names:
        assert name in rfm or (
            name.endswith(" Customers") and set(name.split()[:-1]) <= rfm_words
        ), name
    assert not any(
        word in n
        for n in names
        for word in ("Browser", "Cart", "Shopper", "Email", "E-mail", "App", "Visitor")
    )
    per_session = {
        "sessions",
        "events_per_session",
        "views_per_session",
        "session_minutes",
        "sessions_per_week",
        "sessions_per_active_week",
        "regularity",
        "engagement_rate",
    }
    for p in result.profiles:
        assert p.event_mix == ()
        shown = (
            {s.key for s in (*p.stats, *p.kpis)}
            | {t.feature for t in p.traits}
            | {c.figure for c in p.claims}
        )
        assert not shown & per_session, (p.name, shown & per_session)
    assert not per_session & set(result.info["model"]["features"])
    html = (result.run_dir / "index.html").read_text(encoding="utf-8")
    assert "Event mix" not in html
