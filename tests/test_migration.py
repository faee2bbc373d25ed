"""Who moved where between runs (personas.migration): stable ids, migration.csv, the report's
section, the history page, and the sample's later periods with their planted moves.

The fast tests build run folders by hand from the bundled sample's truth: two (or three) years of
one small shop, each user "assigned" to their planted persona, so the migration table must equal
the planted moves exactly. The whole-pipeline test, which fits UMAP twice, is marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import html5lib
import numpy as np
import pandas as pd
import pytest

from personas.errors import ParameterError
from personas.migration import (
    GONE,
    NEW,
    Window,
    keep_identities,
    migrate,
    read_side,
    window_warnings,
)
from personas.sample import PERSONAS, TRANSITIONS, make_events

NS = {"h": "http://www.w3.org/1999/xhtml"}
USERS = 1200
SEED = 11
EVIL = "<script>alert('x')</script> & Co"
# planted key -> persona id and name in the hand-made runs; ids differ from PERSONAS' order
NAMES = {key: key.replace("_", " ").title() for key in PERSONAS}
NAMES["email_engaged"] = EVIL
IDS = {key: 10 + i for i, key in enumerate(reversed(PERSONAS))}


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split())


def write_run(
    folder: Path,
    truth: pd.DataFrame,
    events: pd.DataFrame,
    csv: bool = False,
    window: tuple[str, str] | None = None,
) -> Path:
    """A run folder as the pipeline writes one, with the planted personas as the assignment."""
    folder.mkdir(parents=True)
    assignments = pd.DataFrame(
        {
            "user_id": truth["user_id"].astype(str),
            "persona_id": truth["persona"].map(IDS).astype("int64"),
            "persona": truth["persona"].map(NAMES),
            "confidence": 1.0,
        }
    )
    if csv:
        assignments.to_csv(folder / "assignments.csv", index=False)
    else:
        assignments.to_parquet(folder / "assignments.parquet", index=False)
    sizes = assignments["persona_id"].value_counts()
    records = [
        {
            "id": IDS[k],
            "name": NAMES[k],
            "size": int(sizes.get(IDS[k], 0)),
            "share": float(sizes.get(IDS[k], 0) / len(assignments)),
        }
        for k in PERSONAS
        if sizes.get(IDS[k], 0)
    ]
    (folder / "personas.json").write_text(json.dumps(records), encoding="utf-8")
    start, end = window or (str(events["timestamp"].min()), str(events["timestamp"].max()))
    (folder / "run.json").write_text(
        json.dumps(
            {
                "input": {
                    "window": {"start": start, "end": end},
                    "window_applied": {"start": None, "end": None},
                },
                "counts": {"users": len(assignments)},
            }
        ),
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def shop():
    """Three years of one small shop: (events, truth) per period."""
    return {period: make_events(USERS, seed=SEED, period=period) for period in (1, 2, 3)}


@pytest.fixture(scope="module")
def runs(shop, tmp_path_factory):
    base = tmp_path_factory.mktemp("series")
    return {
        period: write_run(base / f"shop-{period}", truth, events)
        for period, (events, truth) in shop.items()
    }


def planted_moves(earlier: pd.DataFrame, later: pd.DataFrame) -> dict[tuple[str, str], int]:
    """The moves the sample planted, counted straight from the two truth files."""
    both = earlier.merge(later, on="user_id", how="outer", suffixes=("_then", "_now"))
    source = both["persona_then"].map(NAMES).fillna(NEW)
    target = both["persona_now"].map(NAMES).fillna(GONE)
    return {k: int(v) for k, v in pd.crosstab(source, target).stack().items() if v}


# -- the sample's later periods --------------------------------------------------------------------


def test_later_period_keeps_users_moves_them_and_adds_new_ones(shop):
    (e1, t1), (e2, t2), (e3, t3) = shop[1], shop[2], shop[3]
    assert e1["timestamp"].max() < pd.Timestamp("2025-01-01") <= e2["timestamp"].min()
    assert e2["timestamp"].max() < pd.Timestamp("2026-01-01") <= e3["timestamp"].min()
    assert set(e2["user_id"]) == set(t2["user_id"]) and t2["user_id"].is_unique
    stayed = t1.merge(t2, on="user_id", suffixes=("_1", "_2"))
    new = set(t2["user_id"]) - set(t1["user_id"])
    assert len(new) == round(0.2 * USERS)  # NEW_USERS_SHARE
    assert min(new) > max(t1["user_id"])  # ids after period 1's
    # every planted move is one TRANSITIONS allows, and the big ones happen
    for (a, b), n in stayed.groupby(["persona_1", "persona_2"]).size().items():
        assert TRANSITIONS[a].get(b, 0) > 0, (a, b, n)
    abandoners = stayed[stayed["persona_1"] == "cart_abandoner"]
    assert (abandoners["persona_2"] == "loyal_big_spender").mean() == pytest.approx(0.18, abs=0.08)
    # period 3 continues period 2: its users are period 2's survivors plus new ones
    assert set(t3["user_id"]) - set(t2["user_id"]) and not (
        set(t3["user_id"]) & (set(t1["user_id"]) - set(t2["user_id"]))
    )
    again, _ = make_events(USERS, seed=SEED, period=2)
    pd.testing.assert_frame_equal(again, e2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(period=0), "period=0 must be a whole number from 1 to 20"),
        (dict(period=2, mix="holdout"), "period=2 needs mix='default'"),
    ],
)
def test_bad_period(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        make_events(50, **kwargs)


def test_sample_command_writes_a_second_period(tmp_path, capsys):
    from personas.cli import main

    assert (
        main(
            [
                "sample",
                "--users",
                "300",
                "--period",
                "2",
                "--quiet",
                "--out",
                str(tmp_path / "p2.parquet"),
            ]
        )
        == 0
    )
    truth = pd.read_csv(tmp_path / "p2.truth.csv")
    assert len(truth) == len(pd.read_parquet(tmp_path / "p2.parquet")["user_id"].unique())
    assert (
        main(["sample", "--users", "300", "--period", "0", "--out", str(tmp_path / "x.parquet")])
        == 2
    )
    assert "--period 0 must be from 1 to 20" in capsys.readouterr().err


def test_sample_period_parameter_names_the_run():
    from personas import PersonaParams

    assert PersonaParams().name == "sample"
    assert PersonaParams(sample_period=2).name == "sample-period-2"
    with pytest.raises(ParameterError, match="sample_period=0 is out of range"):
        PersonaParams(sample_period=0).validate()


# -- the migration table ---------------------------------------------------------------------------


def test_migration_table_equals_the_planted_moves(shop, runs):
    m = migrate(read_side(runs[1]), read_side(runs[2]))
    table = m.table()
    assert list(table.columns) == ["from_persona", "to_persona", "users"]
    got = {(r.from_persona, r.to_persona): r.users for r in table.itertuples()}
    assert got == planted_moves(shop[1][1], shop[2][1])
    assert table["users"].sum() == len(set(shop[1][1]["user_id"]) | set(shop[2][1]["user_id"]))


def test_migration_agrees_with_both_assignment_files(runs):
    m = migrate(read_side(runs[1]), read_side(runs[2]))
    table = m.table()
    then = pd.read_parquet(runs[1] / "assignments.parquet")
    now = pd.read_parquet(runs[2] / "assignments.parquet")
    out_of = table[table["from_persona"] != NEW].groupby("from_persona")["users"].sum()
    into = table[table["to_persona"] != GONE].groupby("to_persona")["users"].sum()
    assert out_of.to_dict() == then["persona"].value_counts().to_dict()
    assert into.to_dict() == now["persona"].value_counts().to_dict()
    new = set(now["user_id"]) - set(then["user_id"])
    gone = set(then["user_id"]) - set(now["user_id"])
    assert (m.new, m.gone) == (len(new), len(gone))
    assert table.loc[table["from_persona"] == NEW, "users"].sum() == len(new)
    assert table.loc[table["to_persona"] == GONE, "users"].sum() == len(gone)
    assert m.both == len(set(now["user_id"]) & set(then["user_id"])) == m.stayed + m.moved
    # rows: the earlier run's persona order, (new) last; within one, this run's, (gone) last
    sources = list(dict.fromkeys(table["from_persona"]))
    assert sources[-1] == NEW and sources[:-1] == [
        NAMES[k] for k in PERSONAS if NAMES[k] in set(then["persona"])
    ]
    assert table[table["from_persona"] == NAMES["lapsed"]]["to_persona"].iloc[-1] == GONE


def test_retention_and_words_are_true_to_the_numbers(shop, runs):
    m = migrate(read_side(runs[1]), read_side(runs[2]))
    moves = planted_moves(shop[1][1], shop[2][1])
    lapsed = next(r for r in m.retention() if r.name == NAMES["lapsed"])
    size = sum(n for (a, _), n in moves.items() if a == NAMES["lapsed"])
    assert (lapsed.users, lapsed.stayed, lapsed.gone) == (
        size,
        moves.get((NAMES["lapsed"], NAMES["lapsed"]), 0),
        moves[(NAMES["lapsed"], GONE)],
    )
    assert lapsed.retention == lapsed.stayed / size
    from personas.migration import move_sentence

    top = m.largest_moves()[0]
    assert top.users == max(n for (a, b), n in moves.items() if GONE != b and a not in (b, NEW))
    whole = sum(n for (a, _), n in moves.items() if a == top.source)
    assert move_sentence(m, top) == (
        f"{top.users:,} of {whole:,} users in {top.source} ({100 * top.users / whole:.0f} %) are "
        f"now in {top.target}."
    )


def test_csv_assignments_and_a_duplicate_user(shop, tmp_path, runs):
    events, truth = shop[1]
    as_csv = write_run(tmp_path / "csv", truth, events, csv=True)
    m = migrate(read_side(as_csv), read_side(runs[1]))
    assert m.moved == 0 and m.new == 0 and m.gone == 0 and m.stayed == len(truth)
    from personas.errors import InputError

    doubled = write_run(tmp_path / "dup", pd.concat([truth, truth.head(3)]), events)
    with pytest.raises(
        InputError,
        match="dup/assignments.parquet' holds 3 user ids more than "
        "once; an assignment file has one row per user",
    ):
        migrate(read_side(doubled), read_side(runs[1]))
    broken = write_run(tmp_path / "broken", truth, events)
    (broken / "assignments.parquet").write_bytes(b"not parquet")
    with pytest.raises(
        InputError,
        match="broken/assignments.parquet' cannot be read as assignments .*use the run's own file",
    ):
        migrate(read_side(broken), read_side(runs[1]))


def test_window_warnings():
    year1 = Window("2024-01-01 00:10:00", "2024-12-31 23:00:00")
    year2 = Window("2025-01-01 08:00:00", "2025-12-31 22:00:00")
    assert window_warnings(year1, year2) == ()
    overlap = window_warnings(year1, Window("2024-12-01", "2025-11-30"))
    assert overlap == (
        "The two runs' data windows overlap by 31 days (1 Dec 2024 to "
        "31 Dec 2024): a user active then is judged on the same events in both "
        "runs, so stays and retention read higher than between two separate "
        "periods.",
    )
    quarter = window_warnings(year1, Window("2025-01-01", "2025-03-31"))
    assert len(quarter) == 1 and "(366 days then, 90 days now)" in quarter[0]
    assert (
        window_warnings(Window("2025-01-01", "2025-03-31"), Window("2025-04-01", "2025-06-30"))
        == ()
    )  # 90 and 91 days
    assert "backwards in time" in window_warnings(year2, year1)[0]
    assert "is unknown" in window_warnings(Window(None, None), year1)[0]


def test_migration_for_run_json(runs):
    m = migrate(read_side(runs[1]), read_side(runs[2]))
    data = json.loads(json.dumps(m.to_dict()))
    assert data["file"] == "migration.csv"
    rows = pd.DataFrame(data["rows"])[["from_persona", "to_persona", "users"]]
    pd.testing.assert_frame_equal(rows, m.table())
    assert data["users"]["new"] == m.new and data["users"]["gone"] == m.gone
    assert data["earlier_window"]["days"] == 365 and data["warnings"] == []


# -- stable identities -----------------------------------------------------------------------------


def _profile(fixtures, pid: int, name: str, lifts: dict[str, float], default: str | None = None):
    from personas.results import PersonaProfile, Stat

    stats = tuple(
        Stat(key=k, label=k, value=v, overall=1.0, lift=v, unit="orders", statistic="mean")
        for k, v in lifts.items()
    )
    return PersonaProfile(
        id=pid,
        name=name,
        family="x",
        size=100,
        share=0.25,
        revenue_share=None,
        traits=(),
        stats=stats,
        kpis=(),
        description=f"{name} (25% of users): the typical member ...",
        plays=(),
        default_name=default or name,
    )


def test_matched_personas_keep_earlier_ids_and_names_and_new_ones_get_fresh_ids():
    from personas.report.compare import PreviousRun

    previous = PreviousRun(
        "earlier",
        (
            {"id": 0, "name": "Window Shopper", "stats": {k: {"lift": 1.0} for k in "abc"}},
            {
                "id": 3,
                "name": "Our Best Customers",  # a rename the earlier run carried
                "stats": {"a": {"lift": 4.0}, "b": {"lift": 4.0}, "c": {"lift": 4.0}},
            },
            {"id": 5, "name": "Lapsed", "stats": {k: {"lift": 0.25} for k in "abc"}},
        ),
    )
    profiles = (
        _profile(None, 0, "Loyal Big Spender", {"a": 4.0, "b": 4.0, "c": 3.5}),  # -> id 3
        _profile(None, 1, "Window Shopper", {"a": 1.0, "b": 1.0, "c": 1.0}),  # -> id 0
        _profile(None, 2, "Night Owl", {"a": 60.0, "b": 60.0, "c": 60.0}),  # new
        _profile(
            None,
            3,
            "Renamed Now",
            {"a": 0.25, "b": 0.25, "c": 0.25},  # -> id 5, this
            default="Lapsed Buyers",
        ),  # run's rename
    )
    kept, ids, matches = keep_identities(profiles, previous, highest=7)
    assert [(p.id, p.name) for p in kept] == [
        (3, "Our Best Customers"),
        (0, "Window Shopper"),
        (8, "Night Owl"),
        (5, "Renamed Now"),
    ]
    assert kept[0].description.startswith("Our Best Customers (25% of users)")
    assert ids.model_labels == {0: 3, 1: 0, 2: 8, 3: 5}
    assert ids.highest_id == 8 and ids.fresh == (8,)
    assert ids.to_dict()["kept_names"] == [
        {"id": 3, "name": "Our Best Customers", "name_this_run_gave": "Loyal Big Spender"}
    ]
    assert matches == {0: (1, "profile"), 1: (0, "name"), 3: (2, "profile")}
    # without an earlier run the model's numbers are the ids
    same, first, _ = keep_identities(profiles)
    assert [p.id for p in same] == [0, 1, 2, 3] and first.highest_id == 3


def test_fresh_ids_are_never_reused_in_a_series(tmp_path):
    from personas.migration import series_highest_id

    (tmp_path / "run.json").write_text(json.dumps({"identities": {"highest_id": 12}}))
    assert series_highest_id(tmp_path, [{"id": 2}, {"id": 4}]) == 12
    (tmp_path / "run.json").write_text("{}")
    assert series_highest_id(tmp_path, [{"id": 2}, {"id": 4}]) == 4


def test_relabel():
    from personas.migration import relabel

    labels = pd.Series(np.array([0, 1, 2, -1, 1], dtype="int64"))
    assert relabel(labels, {0: 7, 1: 3, 2: 9}).tolist() == [7, 3, 9, -1, 3]


# -- the report ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def migration_html(runs, report_fixtures):
    from personas.report.render import render_html

    summary = report_fixtures.make_summary()
    m = migrate(read_side(runs[1]), read_side(runs[2]))
    return m, render_html(summary, migration=m)


def test_migration_section_in_the_report(migration_html):
    m, html = migration_html
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    tree = parser.parse(html)
    assert parser.errors == []
    section = tree.find(".//h:section[@class='migration']", NS)
    assert _text(section.find("h:h2", NS)) == "Who moved where"
    text = _text(section)
    assert "1 Jan 2024 to 31 Dec 2024 (366 days)" in text or "(365 days)" in text
    assert f"{m.both:,} users are in both runs: {m.stayed:,}" in text
    for f in m.largest_moves():
        assert f"{f.users:,} of {m.source_size(f):,} users in {f.source} (" in text
    assert f"{m.new:,} users of this run" in text and f"{m.gone:,} users of the earlier run" in text
    # the inline flow chart: SVG, no script, labelled
    svg = section.find(".//{http://www.w3.org/2000/svg}svg")
    assert svg is not None and svg.get("role") == "img"
    assert svg.get("aria-label").startswith("Flow chart of users")
    # retention table: one row per earlier persona, labelled cells for phones
    rows = section.findall(".//h:table[@class='migration-table retention-table']/h:tbody/h:tr", NS)
    retention = m.retention()
    assert [_text(r.find("h:th", NS)) for r in rows] == [r.name for r in retention]
    assert all(td.get("data-label") for r in rows for td in r.findall("h:td", NS))
    # the full table: exactly migration.csv
    rows = section.findall(".//h:table[@class='migration-table moves-table']/h:tbody/h:tr", NS)
    shown = [
        (
            _text(r.find("h:th", NS)),
            _text(r.findall("h:td", NS)[0]),
            int(_text(r.findall("h:td", NS)[1]).replace(",", "")),
        )
        for r in rows
    ]
    assert shown == [tuple(r) for r in m.table().itertuples(index=False)]


def test_files_section_lists_migration_csv_only_with_a_migration(migration_html, html):
    assert "<dt><code>migration.csv</code></dt>" in migration_html[1]
    assert "migration.csv" not in html


def test_migration_section_escapes_names(migration_html):
    _, html = migration_html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in html
    assert "{{" not in html and "{%" not in html


def test_no_migration_section_without_compare_to(html):
    assert 'class="migration"' not in html


@pytest.fixture(scope="module")
def html(report_fixtures):
    from personas.report.render import render_html

    return render_html(report_fixtures.make_summary())


# -- the history page ------------------------------------------------------------------------------


def test_history_page(runs, tmp_path, capsys):
    from personas.cli import main

    out = tmp_path / "history.html"
    # given out of order: the page orders the runs by their data windows
    assert (
        main(["history", str(runs[3]), str(runs[1]), str(runs[2]), "--out", str(out), "--quiet"])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=True)
    tree = parser.parse(page)
    assert parser.errors == []
    assert "<script" not in page and "&lt;script&gt;" in page
    head = [
        _text(th)
        for th in tree.findall(
            ".//h:table[@class='migration-table shares-table']/h:thead//h:th", NS
        )
    ]
    assert head == ["Persona", "shop-1", "shop-2", "shop-3"]
    rows = {
        _text(r.find("h:th", NS)): [_text(td) for td in r.findall("h:td", NS)]
        for r in tree.findall(".//h:table[@class='migration-table shares-table']/h:tbody/h:tr", NS)
    }
    for period in (1, 2, 3):
        share = json.loads((runs[period] / "personas.json").read_text())
        lapsed = next(p for p in share if p["name"] == NAMES["lapsed"])
        assert rows[NAMES["lapsed"]][period - 1] == f"{100 * lapsed['share']:.1f} %"
    steps = tree.findall(".//h:section[@class='migration history-step']", NS)
    assert [_text(s.find("h:h2", NS)) for s in steps] == ["shop-1 → shop-2", "shop-2 → shop-3"]
    m = migrate(read_side(runs[2]), read_side(runs[3]))
    assert f"{m.both:,} users are in both runs" in _text(steps[1])
    # the hand-made runs were not chained with compare_to: the page says so
    assert page.count("was not compared with") == 2


def test_history_knows_runs_chained_with_compare_to(runs, tmp_path):
    from personas.history import build_history

    chained = tmp_path / "chained"
    import shutil

    shutil.copytree(runs[2], chained)
    info = json.loads((chained / "run.json").read_text())
    info["comparison"] = {"previous_run": f"elsewhere/{runs[1].name}"}  # relative, another cwd
    (chained / "run.json").write_text(json.dumps(info))
    history = build_history([runs[1], chained])
    assert [s.chained for s in history.steps] == [True]
    assert [r.label for r in history.runs] == ["shop-1", "chained"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["one"], "history needs at least 2 run folders"),
        (["{a}", "{a}"], "is given twice"),
        (["{a}", "{missing}"], "no such folder"),
        (["{a}", "{file}"], "a file, not a run folder"),
    ],
)
def test_history_errors(runs, tmp_path, capsys, args, message):
    from personas.cli import main

    (tmp_path / "page.html").write_text("<p>an earlier history page</p>")
    args = [
        a.format(a=runs[1], missing=tmp_path / "nope", file=tmp_path / "page.html") for a in args
    ]
    assert main(["history", *args, "--out", str(tmp_path / "h.html")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# -- two real runs ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_periods_of_the_sample_in_whole_runs(tmp_path):
    """Period 2 compared with period 1: kept ids and names, migration.csv agreeing with both
    assignment files, the report's section, personas assign with the kept ids."""
    from personas import PersonaParams, pipeline

    small = dict(sample_users=600, sample_size=600, n_fits=1)
    first = pipeline.run(PersonaParams(**small, output_dir=str(tmp_path / "p1")), progress=False)
    params = PersonaParams(
        **small, sample_period=2, output_dir=str(tmp_path / "p2"), compare_to=str(first.run_dir)
    )
    pipeline.features_step(params, progress=False)
    pipeline.model_step(params, progress=False)
    staged_names = pipeline.persona_names(params)  # what 02_personas' charts show
    second = pipeline.report_step(params, progress=False)
    info = json.loads((second.run_dir / "run.json").read_text())
    labels = {int(k): v for k, v in info["identities"]["model_labels"].items()}
    assert {labels[k]: name for k, name in staged_names.items()} == {
        p.id: p.name for p in second.profiles
    }
    then = pd.read_parquet(first.run_dir / "assignments.parquet")
    now = pd.read_parquet(second.run_dir / "assignments.parquet")
    # kept ids: a persona matched to an earlier one has its id and name
    earlier = {
        p["id"]: p["name"] for p in json.loads((first.run_dir / "personas.json").read_text())
    }
    matched = [p for p in info["comparison"]["personas"] if p["previous_id"] is not None]
    assert matched
    for p in matched:
        assert p["id"] == p["previous_id"] and p["name"] == earlier[p["id"]]
    fresh = [p["id"] for p in info["comparison"]["personas"] if p["previous_id"] is None]
    assert all(i > max(earlier) for i in fresh)
    assert info["identities"]["highest_id"] == max([*earlier, *fresh])
    names = {p.id: p.name for p in second.profiles}
    assert (now["persona"] == now["persona_id"].map(names)).all()
    # migration.csv: the join of the two assignment files, exactly
    table = pd.read_csv(second.run_dir / "migration.csv", keep_default_na=False)
    both = then.merge(now, on="user_id", how="outer", suffixes=("_then", "_now"))
    expected = (
        both.assign(f=both["persona_then"].fillna(NEW), t=both["persona_now"].fillna(GONE))
        .groupby(["f", "t"])
        .size()
    )
    assert {(r.from_persona, r.to_persona): r.users for r in table.itertuples()} == {
        k: int(v) for k, v in expected.items()
    }
    assert pd.DataFrame(info["comparison"]["migration"]["rows"])[
        ["from_persona", "to_persona", "users"]
    ].equals(table)
    assert info["comparison"]["migration"]["warnings"] == []
    html = (second.run_dir / "index.html").read_text(encoding="utf-8")
    assert '<section class="migration"' in html
    # personas assign with the saved model gives the run's (kept) ids and names: scoring the
    # same year's events again reproduces the run's own assignments
    from personas.cli import main
    from personas.sample import write_sample

    events, _ = write_sample(tmp_path / "year2.parquet", n_users=600, period=2)
    assert (
        main(
            [
                "assign",
                "--model",
                str(second.run_dir / "model"),
                "--events",
                str(events),
                "--out",
                str(tmp_path / "scored.csv"),
                "--quiet",
            ]
        )
        == 0
    )
    scored = pd.read_csv(tmp_path / "scored.csv", dtype={"user_id": str})
    both = scored.merge(now, on="user_id", suffixes=("", "_run"))
    assert len(both) == len(now)
    assert (both["persona_id"] == both["persona_id_run"]).all()
    assert (both["persona"] == both["persona_run"]).all()


def test_compare_to_without_assignments_fails_before_any_work(tmp_path):
    from personas import PersonaParams, pipeline

    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "personas.json").write_text('[{"name": "A", "share": 1.0}]')
    params = dict(
        sample_users=200, output_dir=str(tmp_path / "run"), compare_to=str(tmp_path / "old")
    )
    with pytest.raises(
        ParameterError,
        match="compare_to=.*the folder has no assignments.parquet "
        "or assignments.csv, which the migration of users "
        "needs; set compare_to to the folder of an earlier",
    ):
        pipeline.run(PersonaParams.from_mapping(params))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
