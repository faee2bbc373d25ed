"""Tests of the command line's error contract: exit code 2, one line on stderr, nothing written.

Every bad-input run uses ``run --no-notebooks``: the errors happen before the model is fitted, so
no test here fits UMAP, apart from the one ``slow`` run of the dirty-but-usable log that
docs/robustness.md documents.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from personas import __version__
from personas.cli import EXIT_USAGE, main
from personas.model import MIN_USERS
from personas.params import PersonaParams

EARLIER = "<html>the earlier good run</html>"


def _events(n_users: int, **columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n_users) for _ in range(2)],
            "timestamp": [
                f"2024-05-{1 + i % 28:02d} 1{k}:00:00" for i in range(n_users) for k in range(2)
            ],
            "event": ["page_view", "purchase"] * n_users,
            "amount": [None, 10.0] * n_users,
        }
    )
    return frame.assign(**columns)


def _write(tmp_path, content: str | pd.DataFrame, name: str = "events.csv") -> str:
    path = tmp_path / name
    if isinstance(content, pd.DataFrame):
        content.to_csv(path, index=False)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def _run_fails(capsys, tmp_path, *args: str, earlier: bool = False) -> str:
    """Run ``personas run`` with bad input; check the contract; return the error line."""
    out = tmp_path / "run"
    if earlier:
        out.mkdir()
        (out / "index.html").write_text(EARLIER, encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["run", "--no-notebooks", "-q", "--out", str(out), *args])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("personas: error: ")
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run, no .run.partial
    assert not (tmp_path / ".run.partial").exists()
    if earlier:
        assert sorted(p.name for p in out.iterdir()) == ["index.html"]
        assert (out / "index.html").read_text(encoding="utf-8") == EARLIER
    else:
        assert not out.exists()
    return lines[0]


# -- version and help ----------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"personas {__version__}" == "personas 0.1.0"


def test_run_help_lists_every_parameter(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "parameters:" in text
    for name in PersonaParams.names():
        assert f"  {name} (default " in text, name
    assert "max_personas (default 8): most personas to report" in text


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


# -- bad input: exit 2, one line, nothing written ------------------------------------------------
@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_missing_events_file(capsys, tmp_path, earlier):
    line = _run_fails(capsys, tmp_path, "--events", str(tmp_path / "nope.csv"), earlier=earlier)
    assert "events file" in line and "nope.csv' does not exist" in line


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_empty_file(capsys, tmp_path, earlier):
    path = _write(tmp_path, "")
    line = _run_fails(capsys, tmp_path, "--events", path, earlier=earlier)
    assert line == f"personas: error: events file {path!r} is empty; export the log again"


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_header_only(capsys, tmp_path, earlier):
    path = _write(tmp_path, "user_id,timestamp,event\n")
    line = _run_fails(capsys, tmp_path, "--events", path, earlier=earlier)
    assert f"events file {path!r} has a header but no rows" in line


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_missing_user_column(capsys, tmp_path, earlier):
    path = _write(tmp_path, _events(3).rename(columns={"user_id": "uid"}))
    line = _run_fails(capsys, tmp_path, "--events", path, earlier=earlier)
    assert "has no 'user_id' column (found: uid, timestamp, event, amount)" in line
    assert line.endswith("set user_col=uid")


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_bad_timestamps(capsys, tmp_path, earlier):
    frame = _events(60)
    frame.loc[[3, 7], "timestamp"] = ["last tuesday", "31/31/2024"]
    path = _write(tmp_path, frame)
    line = _run_fails(capsys, tmp_path, "--events", path, earlier=earlier)
    assert "2 values in time column 'timestamp' are not timestamps (e.g. '" in line
    assert "'last tuesday'" in line or "'31/31/2024'" in line


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_non_numeric_amounts(capsys, tmp_path, earlier):
    frame = _events(60).astype({"amount": object})
    frame.loc[1, "amount"] = "€10,00"
    path = _write(tmp_path, frame)
    line = _run_fails(capsys, tmp_path, "--events", path, earlier=earlier)
    assert "1 values in amount column 'amount' are not numbers (e.g. '€10,00')" in line


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_unknown_parameter(capsys, tmp_path, earlier):
    line = _run_fails(capsys, tmp_path, "-p", "max_persona=6", earlier=earlier)
    assert line.startswith(
        "personas: error: unknown parameter 'max_persona'; did you mean 'max_personas'?"
    )


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_wrong_type_parameter(capsys, tmp_path, earlier):
    line = _run_fails(capsys, tmp_path, "-p", "max_personas=abc", earlier=earlier)
    assert line.startswith("personas: error: parameter max_personas='abc' is not a valid int")


def test_out_of_range_parameter(capsys, tmp_path):
    line = _run_fails(capsys, tmp_path, "-p", "min_personas=1")
    assert "parameter min_personas=1 is out of range; use a value in 2..30" in line


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_parameter_without_equals(capsys, tmp_path, earlier):
    line = _run_fails(capsys, tmp_path, "-p", "max_personas", earlier=earlier)
    assert line == (
        "personas: error: -p 'max_personas' is not name=value; write e.g. -p max_personas=6"
    )


@pytest.mark.parametrize("earlier", [False, True], ids=["fresh", "earlier-run"])
def test_fewer_users_than_the_minimum(capsys, tmp_path, earlier):
    path = _write(tmp_path, _events(5))
    line = _run_fails(capsys, tmp_path, "--events", path, earlier=earlier)
    assert f"events file {path!r} has 5 users after cleaning" in line
    assert f"needs at least {MIN_USERS}" in line


def test_output_under_a_read_only_location(capsys, tmp_path):
    path = _write(tmp_path, _events(MIN_USERS + 10))
    out = "/proc/personas-test/run"
    code = main(["run", "--no-notebooks", "-q", "--events", path, "--out", out])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"personas: error: output folder {out!r} cannot be written")
    assert "set output_dir to a writable folder" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"]


def test_bad_config_file(capsys, tmp_path):
    config = _write(tmp_path, "max_personas: [1, 2\n", "config.yaml")
    line = _run_fails(capsys, tmp_path, "--config", config)
    assert f"config file {config!r} is not valid YAML" in line


def test_progress_lines_come_before_the_single_error_line(capsys, tmp_path):
    path = _write(tmp_path, _events(5))
    code = main(["run", "--no-notebooks", "--events", path, "--out", str(tmp_path / "run")])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2
    assert lines[0].startswith(f"personas {__version__}: {path} -> ")
    assert [line for line in lines if line.startswith("personas: error:")] == [lines[-1]]
    assert "has 5 users after cleaning" in lines[-1]
    assert not (tmp_path / "run").exists() and not (tmp_path / ".run.partial").exists()


def test_debug_keeps_the_exception(tmp_path):
    from personas.errors import InputError

    with pytest.raises(InputError, match=r"does not exist"):
        main(
            [
                "run",
                "--no-notebooks",
                "-q",
                "--debug",
                "--events",
                str(tmp_path / "nope.csv"),
                "--out",
                str(tmp_path / "run"),
            ]
        )


# -- sample ----------------------------------------------------------------------------------------
def test_sample_writes_events_and_truth(capsys, tmp_path):
    out = tmp_path / "s.parquet"
    code = main(["sample", "--users", "300", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.strip() == str(out)
    assert "wrote 300 users" in captured.err
    assert out.is_file() and (tmp_path / "s.truth.csv").is_file()
    events = pd.read_parquet(out)
    truth = pd.read_csv(tmp_path / "s.truth.csv")
    assert events["user_id"].nunique() == 300
    assert len(truth) == 300 and list(truth.columns) == ["user_id", "persona"]
    assert set(events["user_id"].astype(str)) == set(truth["user_id"].astype(str))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet", "s.truth.csv"]


def test_sample_needs_a_user(capsys, tmp_path):
    code = main(["sample", "--users", "0", "--out", str(tmp_path / "s.parquet")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == ["personas: error: --users 0 must be at least 1"]
    assert list(tmp_path.iterdir()) == []


# -- docs/robustness.md stays true -----------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


def _robustness_tool():
    """tools/robustness.py, whose CASES the document was generated from."""
    spec = importlib.util.spec_from_file_location("robustness", ROOT / "tools" / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


TOOL = _robustness_tool()
STALE = "docs/robustness.md is stale: re-run .venv/bin/python tools/robustness.py"


def _documented(case) -> str:
    """The document's section on ``case``."""
    text = TOOL.DOC.read_text(encoding="utf-8").split(f"\n{TOOL.FAULTS_HEAD}")[0]
    heads = [
        part for part in text.split("\n### ") if part.split("\n", 1)[0].endswith(f". {case.title}")
    ]
    if case.usable:
        return text.split("## Dirty but usable rows", 1)[-1]
    assert len(heads) == 1, f"{case.title!r} is not in docs/robustness.md; {STALE}"
    return heads[0]


def _try(case, tmp_path, monkeypatch, capsys):
    """Run a documented case in-process, in a folder of its own, as the tool runs it."""
    folder = tmp_path / "case"
    folder.mkdir()
    monkeypatch.chdir(folder)

    def run(case, folder):
        code = main([*TOOL.COMMAND, *case.args])
        return code, capsys.readouterr().err

    return TOOL.try_case(case, folder, run)


@pytest.mark.parametrize("case", [c for c in TOOL.CASES if not c.usable], ids=lambda c: c.title)
def test_each_documented_bad_input_still_gives_its_documented_exit_code_and_line(
    case, tmp_path, monkeypatch, capsys
):
    if case.unprivileged and os.geteuid() == 0:
        pytest.skip("root reads any file; tools/robustness.py runs this case as an ordinary user")
    section = _documented(case)
    outcome = _try(case, tmp_path, monkeypatch, capsys)
    assert outcome.exit_code == case.exit_code == EXIT_USAGE
    assert f"Exit code **{case.exit_code}**; written: nothing." in section, STALE
    assert outcome.written == []
    error = outcome.stderr.splitlines()[-1]
    assert error.startswith("personas: error: ")
    assert f"\n{error}\n" in section, STALE


def test_the_document_covers_every_case_and_nothing_else():
    text = TOOL.DOC.read_text(encoding="utf-8").split(f"\n{TOOL.FAULTS_HEAD}")[0]
    titles = [line.split(". ", 1)[1] for line in text.splitlines() if line.startswith("### ")]
    assert titles == [c.title for c in TOOL.CASES if not c.usable], STALE
    assert "## Dirty but usable rows" in text
    exports = text.split("## Files as people export them", 1)[1]
    for case in (c for c in TOOL.CASES if c.export):
        assert f"| {case.title} | {case.given} | 0 | 300 | {len(TOOL._export()):,} |" in exports, (
            STALE
        )


@pytest.mark.slow
def test_the_documented_dirty_log_runs_and_counts_each_rule(tmp_path, monkeypatch, capsys):
    (case,) = [c for c in TOOL.CASES if c.dirty]
    outcome = _try(case, tmp_path, monkeypatch, capsys)
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.written == ["run"]
    info = outcome.run_json
    assert (
        info["data_quality"]["rows"]
        == case.quality
        == {
            "null_user": 3,
            "null_time": 4,
            "outside_window": 6,
            "future": 2,
            "negative_amount": 2,
            "negative_quantity": 2,
            "missing_amount": 5,
            "duplicate": 5,
        }
    )
    assert info["input"]["window_applied"] == {"start": "2024-01-01 00:00:00", "end": None}
    assert info["input"]["reference_date"] == {
        "value": info["input"]["window"]["end"],
        "from": "last event used",
    }
    assert info["input"]["time_format"] == "ISO text"
    for rule, rows in case.quality.items():
        assert f"| `{rule}` | {rows} |" in _documented(case), STALE
