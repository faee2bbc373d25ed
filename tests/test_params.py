"""Tests of personas.params.PersonaParams: conversion, validation, names and the run folder."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from personas.errors import ParameterError
from personas.params import PersonaParams


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
    params = PersonaParams.from_mapping({"max_personas": "6", "min_personas": " 3 ",
                                         "publish": "false", "session_gap_minutes": "1_440",
                                         "title": 12})
    assert params.max_personas == 6 and isinstance(params.max_personas, int)
    assert params.min_personas == 3
    assert params.publish is False
    assert params.session_gap_minutes == 1440
    assert params.title == "12"


@pytest.mark.parametrize("text, expected", [("true", True), ("TRUE", True), ("yes", True),
                                            ("1", True), ("on", True), ("false", False),
                                            ("No", False), ("0", False), ("off", False)])
def test_bool_words(text, expected):
    assert PersonaParams.from_mapping({"publish": text}).publish is expected


def test_integral_float_becomes_int():
    assert PersonaParams.from_mapping({"max_personas": 6.0}).max_personas == 6


def test_none_for_a_text_field_becomes_empty():
    assert PersonaParams.from_mapping({"session_col": None}).session_col == ""


@pytest.mark.parametrize("name, value, kind", [("max_personas", "abc", "int"),
                                               ("max_personas", 6.5, "int"),
                                               ("max_personas", True, "int"),
                                               ("publish", "maybe", "bool")])
def test_wrong_type_names_the_parameter(name, value, kind):
    with pytest.raises(ParameterError, match=rf"parameter {name}=.* is not a valid {kind}") as info:
        PersonaParams.from_mapping({name: value})
    assert info.value.name == name


# -- ranges -----------------------------------------------------------------------------------
def test_min_personas_below_range():
    with pytest.raises(ParameterError, match=r"min_personas=1 is out of range; use a value in "
                                             r"2\.\.30") as info:
        PersonaParams.from_mapping({"min_personas": "1"})
    assert info.value.name == "min_personas"


def test_out_of_range_without_upper_bound():
    with pytest.raises(ParameterError, match=r"sample_size=10 is out of range; use a value in "
                                             r"200\.\.inf"):
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
    params = PersonaParams(start="2024-05-01", end="2024-05-31",
                           reference_date="2024-06-01").validate()
    assert params.time_window() == (datetime(2024, 5, 1), datetime(2024, 5, 31, 23, 59, 59, 999999))
    assert params.reference_time() == datetime(2024, 6, 1)     # a date alone: its midnight
    params = PersonaParams(start=" 2024-05-01T08:30 ", end="2024-05-31 18:00:00+02:00",
                           reference_date="2024-06-01T00:00:00Z").validate()
    assert params.time_window() == (datetime(2024, 5, 1, 8, 30), datetime(2024, 5, 31, 16))
    assert params.reference_time() == datetime(2024, 6, 1)


def test_start_equal_to_end_day_is_one_whole_day():
    first, last = PersonaParams(start="2024-05-01", end="2024-05-01").validate().time_window()
    assert last - first == timedelta(days=1, microseconds=-1)


@pytest.mark.parametrize("name, value", [("start", "2024-13-01"), ("end", "31/05/2024"),
                                         ("reference_date", "yesterday"), ("start", "2024-5-1")])
def test_unparsable_date_names_the_parameter(name, value):
    with pytest.raises(ParameterError, match=rf"^parameter {name}='{value}' is not an ISO date "
                                             r"or time; write it like 2024-05-31 or "
                                             r"2024-05-31T18:00:00, or leave it empty$") as info:
        PersonaParams.from_mapping({name: value})
    assert info.value.name == name


def test_start_after_end():
    with pytest.raises(ParameterError, match=r"^parameter start='2024-06-01' is after "
                                             r"end='2024-05-31'; swap them or leave one empty$"
                       ) as info:
        PersonaParams(start="2024-06-01", end="2024-05-31").validate()
    assert info.value.name == "start"


def test_reference_before_start():
    with pytest.raises(ParameterError, match=r"^parameter reference_date='2024-04-30' is before "
                                             r"start='2024-05-01'; recency is counted") as info:
        PersonaParams(start="2024-05-01", reference_date="2024-04-30").validate()
    assert info.value.name == "reference_date"


# -- unknown names ----------------------------------------------------------------------------
def test_strict_rejects_unknown_name_with_suggestion():
    with pytest.raises(ParameterError, match=r"unknown parameter 'max_persona'; "
                                             r"did you mean 'max_personas'\?") as info:
        PersonaParams.from_mapping({"max_persona": 6}, strict=True)
    assert info.value.name == "max_persona"


def test_strict_unknown_without_close_name_lists_valid_names():
    with pytest.raises(ParameterError, match=r"unknown parameter 'zzz'; valid names: "
                                             r"events_path, user_col") as info:
        PersonaParams.from_mapping({"zzz": 1}, strict=True)
    assert "did you mean" not in str(info.value)


def test_non_strict_ignores_unrelated_keys_like_notebook_globals():
    namespace = {"__name__": "__main__", "In": ["x = 1"], "Out": {}, "pd": object(),
                 "get_ipython": print, "max_personas": "6", "events_path": "data/shop.csv"}
    params = PersonaParams.from_mapping(namespace)
    assert params.max_personas == 6
    assert params.events_path == "data/shop.csv"
    assert params.min_personas == 4


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
@pytest.mark.parametrize("events_path, name", [
    ("", "sample"),
    ("data/shop.csv.gz", "shop"),
    ("data/shop.csv", "shop"),
    ("shop.parquet", "shop"),
    ("exports/clicks.pq", "clicks"),
    ("data/events/", "events"),
    ("data/parts/*.parquet", "parts"),
    ("data/shop_*.parquet", "shop"),
    ("*.parquet", "run"),
])
def test_name_from_events_path(events_path, name):
    assert PersonaParams(events_path=events_path).name == name


def test_run_name_wins():
    assert PersonaParams(events_path="data/shop.csv", run_name="q2").name == "q2"


def test_run_dir_uses_output_dir(tmp_path):
    params = PersonaParams(output_dir=str(tmp_path / "out"), events_path="shop.csv")
    assert params.run_dir() == tmp_path / "out"


def test_run_dir_defaults_to_reports_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert PersonaParams(events_path="data/shop.csv.gz").run_dir() == tmp_path / "reports" / "shop"
    assert PersonaParams().run_dir() == tmp_path / "reports" / "sample"


def test_run_dir_from_notebooks_folder_goes_to_parent(tmp_path, monkeypatch):
    notebooks = tmp_path / "project" / "notebooks"
    notebooks.mkdir(parents=True)
    monkeypatch.chdir(notebooks)
    run_dir = PersonaParams(events_path="shop.parquet").run_dir()
    assert run_dir == tmp_path / "project" / "reports" / "shop"
    assert Path.cwd() == notebooks
    assert not (tmp_path / "project" / "reports").exists()   # computing the path writes nothing
