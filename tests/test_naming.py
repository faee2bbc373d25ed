"""Names from rules: scores, uniqueness, vocabularies, renames, rule files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from personas.errors import InputError
from personas.naming import (Rule, apply_renames, load_rules, name_personas, score_rule)
from personas.profile import trait_table

BOOK = load_rules()


def test_rule_score_is_stouffer_combined_and_fails_on_any_weak_condition():
    rule = Rule("X", "x", "any", (("a", "high"), ("b", "low")), "", ())
    assert score_rule(rule, {"a": 1.0, "b": -2.0}, 0.3) == pytest.approx(3 / math.sqrt(2))
    assert score_rule(rule, {"a": 9.0, "b": -1.0}, 0.3) == pytest.approx(4 / math.sqrt(2))  # cap 3
    assert score_rule(rule, {"a": 1.0, "b": -0.1}, 0.3) is None
    assert score_rule(rule, {"a": 1.0}, 0.3) is None


def traits(rows: dict[int, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index")


EVENT_COLUMNS = ["orders", "avg_order_value", "days_since_seen", "discount_share", "view_to_cart",
                 "cart_to_purchase", "abandoned_carts", "search_share", "sessions", "app_share",
                 "email_opens", "email_click_rate", "days_since_first_seen", "recent_share",
                 "active_days", "events_per_session", "views_per_session", "revenue",
                 "tenure_days", "days_between_orders"]


def base(**z):
    row = dict.fromkeys(EVENT_COLUMNS, 0.0)
    row.update(z)
    return row


def test_each_behaviour_gets_its_name():
    t = traits({
        0: base(orders=1.5, avg_order_value=1.2, days_since_seen=-0.8),
        1: base(view_to_cart=1.0, cart_to_purchase=-1.5, abandoned_carts=1.2),
        2: base(search_share=1.0, view_to_cart=-1.0, orders=-0.8),
        3: base(days_since_seen=2.2, recent_share=-1.4),
        4: base(discount_share=1.7, avg_order_value=-0.8),
    })
    names = {pid: n.name for pid, n in name_personas(t, order_table=False).items()}
    assert names == {0: "Loyal Big Spender", 1: "Cart Abandoner", 2: "Frequent Browser",
                     3: "Lapsed", 4: "Bargain Hunter"}


def test_two_personas_fitting_one_rule_get_unique_names_from_their_next_trait():
    t = traits({0: base(view_to_cart=1.0, cart_to_purchase=-1.5, abandoned_carts=1.2),
                1: base(view_to_cart=0.9, cart_to_purchase=-1.4, abandoned_carts=1.0,
                        weekend_share=1.5)})
    names = {pid: n.name for pid, n in name_personas(t, order_table=False).items()}
    assert names[0] == "Cart Abandoner"
    assert names[1] == "Cart Abandoner · Weekend"


def test_order_tables_get_rfm_names_and_never_browsing_or_cart_names():
    rfm = ["orders", "revenue", "avg_order_value", "days_since_seen", "days_between_orders",
           "days_since_first_seen", "tenure_days"]
    rng = np.random.default_rng(0)
    t = pd.DataFrame(rng.normal(0, 1.5, size=(8, len(rfm))), columns=rfm)
    names = {n.name for n in name_personas(t, order_table=True).values()}
    rfm_names = {r.name for r in BOOK.rules if r.data in ("orders", "any")} | {"Everyday Customer"}
    assert all(n.split(" · ")[0].rstrip(" 0123456789") in rfm_names for n in names), names
    assert not any(word in n for n in names for word in ("Browser", "Cart", "Shopper", "Email"))


def test_a_persona_with_no_distinct_trait_is_called_everyday():
    names = name_personas(traits({0: base()}), order_table=False)
    assert names[0].name == "Everyday Customer"


def test_renames_follow_the_name_and_must_stay_unique():
    names = {3: "Frequent Browser", 5: "Lapsed"}
    assert apply_renames(names, {"Lapsed": "Gone quiet"}) == {3: "Frequent Browser", 5: "Gone quiet"}
    with pytest.raises(InputError, match="same name"):
        apply_renames(names, {"Lapsed": "Frequent Browser"})


def test_a_rules_file_replaces_the_packaged_rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("min_z: 0.5\nrules:\n  - name: Heavy\n    when: {orders: high}\n")
    book = load_rules(path)
    assert [r.name for r in book.rules] == ["Heavy"] and book.min_z == 0.5
    assert name_personas(traits({0: {"orders": 1.0}}), order_table=False, book=book)[0].name == "Heavy"


def test_a_broken_rules_file_is_a_clear_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - when: {orders: high}\n")
    with pytest.raises(InputError, match="not a valid rule table"):
        load_rules(path)


def test_trait_table_is_the_standardised_difference_of_means():
    features = pd.DataFrame({"discount_share": [0.0, 0.0, 1.0, 1.0]})
    z = trait_table(features, np.array([0, 0, 1, 1]))
    assert z.loc[1, "discount_share"] == pytest.approx(1.0)
    assert z.loc[0, "discount_share"] == pytest.approx(-1.0)
    counts = pd.DataFrame({"orders": [0.0, 0.0, np.e - 1, np.e - 1]})   # log1p -> 0, 0, 1, 1
    assert trait_table(counts, np.array([0, 0, 1, 1])).loc[1, "orders"] == pytest.approx(1.0)


def test_renames_file_is_read_and_a_bad_one_is_a_clear_error(tmp_path):
    from personas.naming import load_renames

    good = tmp_path / "renames.yaml"
    good.write_text("Frequent Browser: Researchers\n'Cart Abandoner · App': Mobile carts\n")
    assert load_renames(good) == {"Frequent Browser": "Researchers",
                                  "Cart Abandoner · App": "Mobile carts"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="should map persona names to new names"):
        load_renames(bad)
    with pytest.raises(InputError, match="cannot be read"):
        load_renames(tmp_path / "missing.yaml")
