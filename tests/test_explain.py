"""``personas run --explain``: the SQL a run executes, printed in order; nothing written, no model.

No test here fits a model: explain runs the load and features steps only.
"""

from __future__ import annotations

import json
import re

import duckdb
import pandas as pd
import pytest

from personas.cli import EXIT_OK, main

N_USERS = 40
HEADER = re.compile(r"^-- (\d+)\. ([a-z ]+) \(([\w.]+)\)(: .*)?$")


def _events(blank_user: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(N_USERS) for _ in range(3)],
            "timestamp": [
                f"2024-05-{1 + i % 28:02d} 1{k}:00:00" for i in range(N_USERS) for k in range(3)
            ],
            "event": ["page_view", "add_to_cart", "purchase"] * N_USERS,
            "amount": [None, None, 12.5] * N_USERS,
        }
    )
    if blank_user:
        frame.loc[0, "user_id"] = None
    return frame


def _explain(capsys, tmp_path, *args: str) -> str:
    """Run ``personas run --explain``; check it exits 0 and writes nothing; return stdout."""
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["run", "--explain", "--out", str(tmp_path / "run"), *args])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run, no staging, no lock
    return captured.out


def _csv(tmp_path, name: str = "events.csv", **kwargs) -> str:
    path = tmp_path / name
    _events(**kwargs).to_csv(path, index=False)
    return str(path)


def _statements(out: str) -> list[dict]:
    """The printed statements: number, step, caller, note, SQL, parameters, failed."""
    found: list[dict] = []
    for line in out.splitlines():
        head = HEADER.match(line)
        if head:
            found.append(
                {
                    "n": int(head[1]),
                    "step": head[2],
                    "caller": head[3],
                    "note": head[4],
                    "sql": [],
                    "parameters": None,
                    "failed": False,
                }
            )
        elif found and line.startswith("-- parameters: "):
            found[-1]["parameters"] = json.loads(line.removeprefix("-- parameters: "))
        elif found and line.startswith("-- failed: "):
            found[-1]["failed"] = True
        elif found:
            found[-1]["sql"].append(line)
    for s in found:
        s["sql"] = "\n".join(s["sql"]).strip()
    return found


def _kept_view(out: str) -> str:
    (sql,) = [s["sql"] for s in _statements(out) if "TEMP VIEW kept AS" in s["sql"]]
    return sql


def test_explain_prints_the_runs_sql_in_order(capsys, tmp_path):
    out = _explain(capsys, tmp_path, "--events", _csv(tmp_path))
    statements = _statements(out)
    assert [s["n"] for s in statements] == list(range(1, len(statements) + 1))
    assert out.startswith(
        f"-- the SQL a run sends to DuckDB for {tmp_path / 'events.csv'}: "
        f"{len(statements)} statements"
    )
    by_step = {s["step"] for s in statements}
    assert by_step == {"load", "features"}
    sql = "\n".join(s["sql"] for s in statements)
    for made in (
        "TEMP VIEW raw",
        "TEMP VIEW typed",
        "TEMP VIEW kept",
        "TEMP TABLE users",
        "TEMP TABLE event_names",
        "TEMP VIEW event_rows",
        "TEMP TABLE user_activity",
    ):
        assert f"CREATE OR REPLACE {made} AS" in sql
    # statements sent from the helper modules are there too, each naming its sender
    callers = {s["caller"].partition(".")[0] for s in statements}
    assert {"source", "sniff", "cleaning", "encoding", "activity", "features"} <= callers
    last = statements[-1]
    assert last["step"] == "features" and "FROM user_activity" in last["sql"]
    assert set(last["parameters"]) == {"reference"}
    assert all(s["sql"].endswith(";") for s in statements)


def test_a_cleaning_rule_filters_only_when_a_row_broke_it(capsys, tmp_path):
    clean = _kept_view(_explain(capsys, tmp_path, "--events", _csv(tmp_path)))
    dirty = _kept_view(
        _explain(capsys, tmp_path, "--events", _csv(tmp_path, "dirty.csv", blank_user=True))
    )
    assert "user_id IS NULL" not in clean and clean.endswith("WHERE TRUE;")
    assert "WHERE NOT (user_id IS NULL" in dirty


def test_the_printed_sql_runs_again_on_a_fresh_connection(capsys, tmp_path):
    """Every statement, in order, with its printed parameters, rebuilds the per-user tables:
    the features query gives one row per user."""
    statements = _statements(_explain(capsys, tmp_path, "--events", _csv(tmp_path)))
    assert not any(s["note"] or s["failed"] for s in statements)  # all SQL, none refused
    con = duckdb.connect()
    for s in statements:
        result = (
            con.execute(s["sql"], s["parameters"]) if s["parameters"] else con.execute(s["sql"])
        )
    assert len(result.fetchall()) == N_USERS
    assert con.execute("SELECT count(*) FROM user_activity").fetchone()[0] == N_USERS


def test_custom_features_sql_is_printed(capsys, tmp_path):
    features = tmp_path / "features.yaml"
    features.write_text(
        "cart_events:\n  description: Cart events\n"
        "  sql: count(*) FILTER (WHERE event = 'add_to_cart')\n",
        "utf-8",
    )
    statements = _statements(
        _explain(capsys, tmp_path, "--events", _csv(tmp_path), "-p", f"features_path={features}")
    )
    assert statements[-1]["step"] == "custom features"
    assert "FILTER (WHERE event = 'add_to_cart')" in statements[-1]["sql"]


def test_the_bundled_sample_is_explained_with_its_frame_as_a_note(capsys, tmp_path):
    statements = _statements(_explain(capsys, tmp_path, "-p", "sample_users=200", "--no-notebooks"))
    (note,) = [s for s in statements if s["note"]]
    assert note["note"].startswith(": register raw_frame: a DataFrame")
    assert "FROM raw_frame" in statements[statements.index(note) + 1]["sql"]


def test_help_describes_explain(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--explain print the SQL the run would send to DuckDB" in help_text
    assert "writes nothing" in help_text
