"""Tests of personas.params.PersonaParams: conversion, validation, names and the run folder."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from personas.errors import ParameterError
from personas.params import PersonaParams, injected_names


# -- defaults ---------------------------------------------------------------------------------
def test_defaults_validate_and_keep_their_values():
    params = PersonaParams().validate()
    assert params.events_path == ""
    assert params.user_col == "user_id"
    assert params.time_col == "timestamp"
    assert params.session_gap_minutes == 30
    assert (params.min_personas, params.max_personas) == (4, 8)
    assert params.publish is True


def test_names_lists_every_field_in_order():
    names = PersonaParams.names()
    assert names == [f.name for f in dataclasses.fields(PersonaParams)]
    assert names[0] == "events_path"
    assert {"min_personas", "max_personas", "output_dir", "run_name"} <= set(names)


def test_every_field_has_a_help_text_without_semicolon_or_equals():
    # the help text becomes the notebook's parameter comment: papermill's parser rejects ';'
    # and '=' there
    for f in dataclasses.fields(PersonaParams):
        text = f.metadata["help"]
        assert text.strip(), f.name
        assert ";" not in text, f"help of {f.name} contains ';': {text!r}"
        assert "=" not in text, f"help of {f.name} contains '=': {text!r}"


# -- conversion by field type -----------------------------------------------------------------
def test_from_mapping_converts_strings_by_field_type():
    params = PersonaParams.from_mapping(
        {
            "max_personas": "6",
            "min_personas": " 3 ",
            "publish": "false",
            "session_gap_minutes": "1_440",
            "title": 12,
        }
    )
    assert params.max_personas == 6 and isinstance(params.max_personas, int)
    assert params.min_personas == 3
    assert params.publish is False
    assert params.session_gap_minutes == 1440
    assert params.title == "12"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("No", False),
        ("0", False),
        ("off", False),
    ],
)
def test_bool_words(text, expected):
    assert PersonaParams.from_mapping({"publish": text}).publish is expected


def test_integral_float_becomes_int():
    assert PersonaParams.from_mapping({"max_personas": 6.0}).max_personas == 6


def test_none_for_a_text_field_becomes_empty():
    assert PersonaParams.from_mapping({"session_col": None}).session_col == ""


@pytest.mark.parametrize(
    "name, value, kind",
    [
        ("max_personas", "abc", "int"),
        ("max_personas", 6.5, "int"),
        ("max_personas", True, "int"),
        ("publish", "maybe", "bool"),
    ],
)
def test_wrong_type_names_the_parameter(name, value, kind):
    with pytest.raises(ParameterError, match=rf"parameter {name}=.* is not a valid {kind}") as info:
        PersonaParams.from_mapping({name: value})
    assert info.value.name == name


# -- ranges -----------------------------------------------------------------------------------
def test_min_personas_below_range():
    with pytest.raises(
        ParameterError,
        match=r"min_personas=1 is out of range; use a value in "
        r"2\.\.30",
    ) as info:
        PersonaParams.from_mapping({"min_personas": "1"})
    assert info.value.name == "min_personas"


def test_out_of_range_without_upper_bound():
    with pytest.raises(
        ParameterError,
        match=r"sample_size=10 is out of range; use a value in "
        r"200\.\.inf",
    ):
        PersonaParams(sample_size=10).validate()


def test_max_personas_below_min_personas():
    with pytest.raises(ParameterError, match=r"max_personas=5 is below min_personas=6") as info:
        PersonaParams.from_mapping({"min_personas": 6, "max_personas": 5})
    assert info.value.name == "max_personas"


def test_min_equal_max_is_allowed():
    params = PersonaParams.from_mapping({"min_personas": 5, "max_personas": 5})
    assert params.min_personas == params.max_personas == 5


def test_empty_user_column_is_rejected():
    with pytest.raises(ParameterError, match=r"parameter user_col is empty"):
        PersonaParams(user_col="  ").validate()


# -- date window and reference date ------------------------------------------------------------
def test_no_dates_means_no_window_and_the_last_event():
    params = PersonaParams().validate()
    assert params.time_window() == (None, None)
    assert params.reference_time() is None


def test_dates_and_times_become_naive_utc_instants():
    params = PersonaParams(
        start="2024-05-01", end="2024-05-31", reference_date="2024-06-01"
    ).validate()
    assert params.time_window() == (datetime(2024, 5, 1), datetime(2024, 5, 31, 23, 59, 59, 999999))
    assert params.reference_time() == datetime(2024, 6, 1)  # a date alone: its midnight
    params = PersonaParams(
        start=" 2024-05-01T08:30 ",
        end="2024-05-31 18:00:00+02:00",
        reference_date="2024-06-01T00:00:00Z",
    ).validate()
    assert params.time_window() == (datetime(2024, 5, 1, 8, 30), datetime(2024, 5, 31, 16))
    assert params.reference_time() == datetime(2024, 6, 1)


def test_start_equal_to_end_day_is_one_whole_day():
    first, last = PersonaParams(start="2024-05-01", end="2024-05-01").validate().time_window()
    assert last - first == timedelta(days=1, microseconds=-1)


@pytest.mark.parametrize(
    "name, value",
    [
        ("start", "2024-13-01"),
        ("end", "31/05/2024"),
        ("reference_date", "yesterday"),
        ("start", "2024-5-1"),
    ],
)
def test_unparsable_date_names_the_parameter(name, value):
    with pytest.raises(
        ParameterError,
        match=rf"^parameter {name}='{value}' is not an ISO date "
        r"or time; write it like 2024-05-31 or "
        r"2024-05-31T18:00:00, or leave it empty$",
    ) as info:
        PersonaParams.from_mapping({name: value})
    assert info.value.name == name


def test_start_after_end():
    with pytest.raises(
        ParameterError,
        match=r"^parameter start='2024-06-01' is after "
        r"end='2024-05-31'; swap them or leave one empty$",
    ) as info:
        PersonaParams(start="2024-06-01", end="2024-05-31").validate()
    assert info.value.name == "start"


def test_reference_before_start():
    with pytest.raises(
        ParameterError,
        match=r"^parameter reference_date='2024-04-30' is before "
        r"start='2024-05-01'; recency is counted",
    ) as info:
        PersonaParams(start="2024-05-01", reference_date="2024-04-30").validate()
    assert info.value.name == "reference_date"


# -- unknown names ----------------------------------------------------------------------------
def test_strict_rejects_unknown_name_with_suggestion():
    with pytest.raises(
        ParameterError,
        match=r"unknown parameter 'max_persona'; "
        r"did you mean 'max_personas'\?",
    ) as info:
        PersonaParams.from_mapping({"max_persona": 6}, strict=True)
    assert info.value.name == "max_persona"


def test_strict_unknown_without_close_name_lists_valid_names():
    with pytest.raises(
        ParameterError,
        match=r"unknown parameter 'zzz'; valid names: "
        r"events_path, user_col",
    ) as info:
        PersonaParams.from_mapping({"zzz": 1}, strict=True)
    assert "did you mean" not in str(info.value)


def test_non_strict_ignores_unrelated_keys_like_notebook_globals():
    namespace = {
        "__name__": "__main__",
        "In": ["x = 1"],
        "Out": {},
        "pd": object(),
        "get_ipython": print,
        "max_personas": "6",
        "events_path": "data/shop.csv",
    }
    params = PersonaParams.from_mapping(namespace)
    assert params.max_personas == 6
    assert params.events_path == "data/shop.csv"
    assert params.min_personas == 4


def _notebook_globals(*cells: str, **values) -> dict:
    """A kernel's namespace after the given cells: IPython keeps their sources in ``In``."""
    return {"__name__": "__main__", "In": ["", *cells], "Out": {}, "get_ipython": print, **values}


def test_a_parameter_papermill_injected_must_be_a_field():
    namespace = _notebook_globals(
        "max_personas: int = 8  # most personas",
        "# Parameters\nmax_persona = 6\nevents_path = 'shop.csv'\n",
        max_personas=8,
        max_persona=6,
        events_path="shop.csv",
    )
    with pytest.raises(
        ParameterError,
        match=r"^unknown parameter 'max_persona'; did you mean "
        r"'max_personas'\? valid names: events_path",
    ) as info:
        PersonaParams.from_mapping(namespace)
    assert info.value.name == "max_persona"


def test_known_injected_parameters_and_the_notebooks_own_variables_pass():
    namespace = _notebook_globals(
        "# Parameters\nmax_personas = 6\n",
        "x = 1",
        "# Parameters\nmax_personas = 5\nevents_path = 'shop.csv'\n",
        max_personas=5,
        events_path="shop.csv",
        x=1,
        features=object(),
    )
    assert injected_names(namespace) == ["max_personas", "events_path"]  # the last cell counts
    params = PersonaParams.from_mapping(namespace)
    assert (params.max_personas, params.events_path) == (5, "shop.csv")
    assert injected_names(_notebook_globals("max_personas = 6")) == []  # nothing injected
    assert injected_names({"In": "not IPython's"}) == []


def test_replace_is_strict_and_validates():
    params = PersonaParams().replace(max_personas="7")
    assert params.max_personas == 7
    with pytest.raises(ParameterError, match=r"did you mean 'max_personas'"):
        PersonaParams().replace(max_personaz=7)
    with pytest.raises(ParameterError, match=r"max_personas=3 is below min_personas=4"):
        PersonaParams().replace(max_personas=3)


def test_to_dict_round_trips():
    params = PersonaParams(events_path="x.csv", max_personas=6)
    assert PersonaParams.from_mapping(params.to_dict(), strict=True) == params


# -- run name and folder ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "events_path, name",
    [
        ("", "sample"),
        ("data/shop.csv.gz", "shop"),
        ("data/shop.csv", "shop"),
        ("shop.parquet", "shop"),
        ("exports/clicks.pq", "clicks"),
        ("data/events/", "events"),
        ("data/parts/*.parquet", "parts"),
        ("data/shop_*.parquet", "shop"),
        ("*.parquet", "run"),
    ],
)
def test_name_from_events_path(events_path, name):
    assert PersonaParams(events_path=events_path).name == name


def test_run_name_wins():
    assert PersonaParams(events_path="data/shop.csv", run_name="q2").name == "q2"


@pytest.fixture
def no_notebook(monkeypatch):
    """Run-folder tests see no JupyterLab notebook, whatever runs the tests."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def _project(folder: Path, name: str = "personas") -> Path:
    """A project folder as a clone has it: pyproject.toml, the package's notebooks and the
    ``notebooks`` link to them."""
    (folder / "personas" / "notebooks").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    (folder / "notebooks").symlink_to(Path("personas") / "notebooks")
    return folder


def test_run_dir_uses_output_dir(tmp_path):
    params = PersonaParams(output_dir=str(tmp_path / "out"), events_path="shop.csv")
    assert params.run_dir() == tmp_path / "out"


def test_run_dir_defaults_to_reports_in_cwd(tmp_path, monkeypatch, no_notebook):
    monkeypatch.chdir(tmp_path)
    assert PersonaParams(events_path="data/shop.csv.gz").run_dir() == tmp_path / "reports" / "shop"
    assert PersonaParams().run_dir() == tmp_path / "reports" / "sample"
    assert PersonaParams(output_dir="runs/q2").run_dir() == tmp_path / "runs" / "q2"


def test_run_dir_from_the_notebooks_link_is_in_the_project_not_the_package(
    tmp_path, monkeypatch, no_notebook
):
    # a kernel started in notebooks/ (JupyterLab, papermill) sees the link resolved:
    # personas/notebooks, whose parent is the package
    project = _project(tmp_path / "project")
    monkeypatch.chdir(project / "notebooks")
    monkeypatch.setenv("PWD", str(project / "notebooks"))
    assert Path.cwd() == project / "personas" / "notebooks"
    assert PersonaParams(events_path="shop.parquet").run_dir() == project / "reports" / "shop"
    assert PersonaParams(output_dir="runs/q2").run_dir() == project / "runs" / "q2"
    monkeypatch.setenv("PWD", "/somewhere/stale")  # a PWD that is not the cwd
    assert PersonaParams().run_dir() == project / "reports" / "sample"
    assert not (project / "reports").exists()  # computing the path writes nothing


def test_run_dir_follows_the_notebook_jupyterlab_runs(tmp_path, monkeypatch):
    # JupyterLab names the notebook (JPY_SESSION_NAME) as it shows it: under the link
    project = _project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("JPY_SESSION_NAME", str(project / "notebooks" / "02_personas.ipynb"))
    assert PersonaParams().run_dir() == project / "reports" / "sample"


def test_a_pyproject_of_another_project_is_not_the_root(tmp_path, monkeypatch, no_notebook):
    other = _project(tmp_path / "theirs", name="shop-analytics")
    monkeypatch.chdir(other / "notebooks")
    monkeypatch.setenv("PWD", str(other / "notebooks"))
    assert PersonaParams().run_dir() == other / "personas" / "notebooks" / "reports" / "sample"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"engine": "sparky"}, r"parameter engine='sparky' is not an engine; use duckdb or spark"),
        ({"engine": "spark", "spark_master": "foo"}, r"spark_master='foo' is not a Spark master"),
        ({"engine": "spark", "events_table": "a b"}, r"events_table='a b' is not a table name"),
        ({"events_table": "db.events"}, r"set engine=spark to read it"),
        (
            {"engine": "spark", "events_table": "db.events", "events_path": "x.parquet"},
            r"both name the input; keep one of them",
        ),
    ],
)
def test_engine_parameters_are_checked(values, message):
    with pytest.raises(ParameterError, match=message):
        PersonaParams.from_mapping(values, strict=True)


@pytest.mark.parametrize(
    "master",
    ["local", "local[*]", "local[2]", "spark://10.0.0.1:7077", "yarn", "k8s://https://k:443"],
)
def test_spark_masters_spark_takes_are_accepted(master):
    params = PersonaParams.from_mapping({"engine": "spark", "spark_master": master}, strict=True)
    assert params.spark_master == master
    table = PersonaParams(engine="spark", events_table="main.shop.`events 2024`").validate()
    assert table.events_table == "main.shop.`events 2024`"
