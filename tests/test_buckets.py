"""The per-user pass in buckets of users gives the features of one pass over all users.

A log too large for one sort in ``memory_limit`` is summed a bucket of users at a time
(:func:`personas.activity.summarise_in_buckets`). Here the bucket size is made small
(``EVENTS_PER_GB``), so that the bundled sample and dirty logs split into several buckets, and
every feature of every user, the counts and the data-quality figures must equal those of the
one-bucket pass exactly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dirty import write_dirty_log

from personas import activity
from personas.features import compute_features
from personas.load import load_events, stage
from personas.params import PersonaParams


def features_both_ways(params: PersonaParams, monkeypatch, events_per_gb: int = 1_000):
    """(log, features) of one pass, then of the pass in buckets, and the bucket count used."""
    one = load_events(params)
    one_features, _ = compute_features(one)
    used = []
    original = activity.summarise_in_buckets

    def spy(con, select, buckets):
        used.append(buckets)
        return original(con, select, buckets)

    monkeypatch.setattr(stage, "EVENTS_PER_GB", events_per_gb)
    monkeypatch.setattr(activity, "summarise_in_buckets", spy)
    many = load_events(params)
    many_features, _ = compute_features(many)
    return (one, one_features), (many, many_features), used


def assert_identical(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Same users in the same order, same columns, every value equal (missing where missing)."""
    assert list(theirs.columns) == list(ours.columns)
    assert list(theirs.index) == list(ours.index)
    a, b = ours.to_numpy(dtype="float64"), theirs.to_numpy(dtype="float64")
    assert (np.isnan(a) == np.isnan(b)).all()
    assert (a[~np.isnan(a)] == b[~np.isnan(b)]).all()


def assert_same_log(one, many) -> None:
    assert many.counts == one.counts
    assert many.quality == one.quality
    assert many.event_counts == one.event_counts
    assert many.role_map == one.role_map


def test_the_bundled_sample_in_buckets_gives_the_same_features(monkeypatch):
    params = PersonaParams(sample_users=600, sample_seed=3)
    (one, ours), (many, theirs), used = features_both_ways(params, monkeypatch)
    # 600 users of about 160 events in buckets of 3,000 events (1,000 per GB of 3GB)
    assert used and used[0] >= 20
    assert len(ours) == 600 and ours.shape[1] > 30
    assert_identical(ours, theirs)
    assert_same_log(one, many)


@pytest.mark.parametrize(
    "variant", ["plain", "window", "epoch seconds", "sessions given", "csv"],
    ids=lambda v: v.replace(" ", "-"),
)  # fmt: skip
def test_a_dirty_log_in_buckets_gives_the_same_features(monkeypatch, tmp_path, variant):
    path, extra = write_dirty_log(tmp_path, variant)
    params = PersonaParams(events_path=path, temp_dir=str(tmp_path / "spill"), **extra)
    (one, ours), (many, theirs), used = features_both_ways(params, monkeypatch)
    assert used and used[0] >= 3
    assert one.quality["duplicate"] > 0 and one.quality["null_user"] > 0
    assert_identical(ours, theirs)
    assert_same_log(one, many)
    # the buckets' files are gone once read; the events view still reads the whole log
    assert not list((tmp_path / "spill").rglob("*.parquet"))
    assert many.con.execute("SELECT count(*) FROM events").fetchone()[0] == one.counts["events"]


def test_one_bucket_while_the_sort_fits_memory_limit():
    # the bundled shop at 1M users (165M events) sorts in 3 GB: one bucket, as before
    assert stage.user_buckets(164_694_953, "3GB") == 1
    # at 10M users (1.65B events) ten buckets of about 165M events
    assert stage.user_buckets(1_647_290_530, "3GB") == 10
    assert stage.user_buckets(1_647_290_530, "6 GB") == 5
    assert stage.user_buckets(1_647_290_530, "3GiB") == 9
    assert stage.user_buckets(0, "1MB") == 1
