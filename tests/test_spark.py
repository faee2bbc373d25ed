"""The Spark engine gives the DuckDB engine's features and personas (personas.spark).

Every feature of every user equal to 1e-9, on the bundled sample and on dirty logs; the same
persona assignments; the same errors; and a run on a standalone Spark cluster (a master and two
workers started on 127.0.0.1). One local[2] SparkSession serves the whole test session. The
tests skip, saying why, when pyspark or Java is missing (``make test`` installs both).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dirty import dirty_log, write_dirty_log

from personas import pipeline
from personas.errors import ParameterError, SchemaError
from personas.features import compute_features, read_features
from personas.load import load_events
from personas.params import PersonaParams
from personas.progress import Progress

pytest.importorskip(
    "pyspark", reason="pyspark is not installed (pip install -e '.[spark]'; make test does)"
)
if shutil.which("java") is None:
    pytest.skip(
        "Java is missing: Spark needs it (apt-get install default-jre-headless; make test does "
        "as root)",
        allow_module_level=True,
    )

from personas.spark.features import spark_features  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def spark():
    """One local[2] session for every test; its Python workers import this checkout."""
    from pyspark.sql import SparkSession

    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("personas-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1")  # a CI machine's hostname may not resolve
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    os.environ["PYTHONPATH"] = path


def on_spark(params: PersonaParams):
    """(Spark log, Spark features) for ``params``: the dataset the executors write, read back in
    the DuckDB engine's order (features.read_features)."""
    from tempfile import TemporaryDirectory

    with TemporaryDirectory() as folder:
        target = Path(folder) / "features.parquet"
        spark_log, columns, _ = spark_features(
            params.replace(engine="spark"), Progress(quiet=True), target
        )
        theirs = read_features(target)
    assert list(theirs.columns) == columns
    return spark_log, theirs


def both_engines(params: PersonaParams):
    """(DuckDB log, DuckDB features, Spark log, Spark features) for ``params``."""
    log = load_events(params)
    ours, _ = compute_features(log)
    spark_log, theirs = on_spark(params)
    return log, ours, spark_log, theirs


def assert_same_features(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Every feature of every user equal to 1e-9 (missing where missing)."""
    assert list(theirs.columns) == list(ours.columns)
    assert list(theirs.index) == list(ours.index)
    a, b = ours.to_numpy(dtype="float64"), theirs.to_numpy(dtype="float64")
    assert (np.isnan(a) == np.isnan(b)).all()
    both = ~np.isnan(a)
    worst = np.abs(a[both] - b[both]).max() if both.any() else 0.0
    assert worst <= 1e-9, worst


def assert_same_record(log, spark_log) -> None:
    assert spark_log.counts == log.counts
    assert spark_log.quality == log.quality
    assert spark_log.event_counts == log.event_counts
    assert spark_log.role_map == log.role_map
    assert spark_log.reference == log.reference


def test_features_equal_on_the_bundled_sample(spark):
    log, ours, spark_log, theirs = both_engines(PersonaParams(sample_users=600, sample_seed=3))
    assert len(ours) == 600 and ours.shape[1] > 30
    assert_same_features(ours, theirs)
    assert_same_record(log, spark_log)


def test_features_equal_on_a_parquet_file_of_the_sample(spark, tmp_path):
    from personas.sample import write_sample

    events, _ = write_sample(str(tmp_path / "events.parquet"), n_users=400, seed=5)
    log, ours, spark_log, theirs = both_engines(PersonaParams(events_path=str(events)))
    assert_same_features(ours, theirs)
    assert_same_record(log, spark_log)


@pytest.mark.parametrize(
    "variant",
    ["window", "epoch seconds", "sessions given", "csv"],
    ids=lambda v: v.replace(" ", "-"),
)
def test_features_equal_on_a_dirty_log(spark, tmp_path, variant):
    path, extra = write_dirty_log(tmp_path, variant)
    log, ours, spark_log, theirs = both_engines(PersonaParams(events_path=path, **extra))
    assert len(ours) > 250
    assert log.quality["duplicate"] > 0 and log.quality["null_user"] > 0
    assert "event:Mystery Event" in ours.columns or "event:wishlist_add" in ours.columns
    assert_same_features(ours, theirs)
    assert_same_record(log, spark_log)


def test_bad_input_gives_the_same_sentence_on_both_engines(spark, tmp_path):
    frame = dirty_log(seed=1, users=60, rows=2000)
    missing = tmp_path / "no-user.parquet"
    frame.rename(columns={"user_id": "uid"}).to_parquet(missing, index=False)
    params = PersonaParams(events_path=str(missing))
    with pytest.raises(SchemaError, match="has no 'user_id' column") as duck:
        load_events(params)
    with pytest.raises(SchemaError, match="has no 'user_id' column") as sparks:
        on_spark(params)
    assert str(sparks.value) == str(duck.value)

    bad = tmp_path / "bad-times.parquet"
    frame.assign(timestamp=frame["timestamp"].where(frame.index % 7 != 0, "not a time")).to_parquet(
        bad, index=False
    )
    with pytest.raises(SchemaError, match="are not timestamps"):
        on_spark(PersonaParams(events_path=str(bad)))


def test_features_path_is_refused_on_spark(spark, tmp_path):
    with pytest.raises(ParameterError, match="features_path"):
        on_spark(PersonaParams(features_path=str(tmp_path / "f.yaml")))


def test_missing_pyspark_is_one_sentence_and_exit_2(tmp_path):
    """The CLI in a Python where pyspark cannot be imported."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from personas.cli import main\n"
        f"sys.exit(main(['run', '--no-notebooks', '--out', {str(tmp_path / 'run')!r}, "
        "'-p', 'engine=spark', '-p', 'sample_users=300']))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "needs pyspark" in last and "pip install -e '.[spark]'" in last
    assert not (tmp_path / "run").exists()


def test_fit_users_are_the_lowest_hashes_on_both_engines(spark, tmp_path):
    from personas import sampling
    from personas.spark.assign import fit_table

    ids = pd.Index([f"u{i}" for i in range(1000)] + ["ünï", "007", " x "], name="user_id")
    features = pd.DataFrame({"orders": np.arange(len(ids), dtype="float64")}, index=ids)
    features.to_parquet(tmp_path / "features.parquet")
    mask = sampling.fit_users(ids, 100)
    assert mask.sum() == 100
    chosen = ids[mask]
    assert (sampling.user_hash(chosen).max() < np.sort(sampling.user_hash(ids))[100:]).all()
    old = sampling.FIT_USERS
    sampling.FIT_USERS = 100
    try:
        picked = fit_table(PersonaParams(engine="spark"), tmp_path / "features.parquet")
    finally:
        sampling.FIT_USERS = old
    assert list(picked.index) == sorted(chosen)
    assert (picked["orders"] == features.loc[picked.index, "orders"]).all()


# -- the forecast's purchase tables and fit buyers (personas.spark.purchases) ------------------


def assert_same_purchases(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Every column of every buyer equal (numbers to 1e-9, missing where missing)."""
    assert list(theirs.columns) == list(ours.columns)
    assert list(theirs.index) == list(ours.index)
    for column in ours.columns:
        if column == "last_purchase":
            assert (ours[column].to_numpy() == theirs[column].to_numpy()).all()
            continue
        a, b = ours[column].to_numpy("float64"), theirs[column].to_numpy("float64")
        assert (np.isnan(a) == np.isnan(b)).all(), column
        both = ~np.isnan(a)
        assert np.abs(a[both] - b[both]).max(initial=0.0) <= 1e-9, column


@pytest.mark.parametrize("holdout", [0, 30])
@pytest.mark.parametrize("data", ["sample", "window", "plain"])
def test_purchase_tables_equal_on_both_engines(spark, tmp_path, data, holdout):
    from personas import forecast

    if data == "sample":
        params = PersonaParams(sample_users=600, sample_seed=3, holdout_days=holdout)
    else:
        path, extra = write_dirty_log(tmp_path, data)
        params = PersonaParams(events_path=path, holdout_days=holdout, **extra)
    frames, record = forecast.purchase_history(load_events(params), params)
    spark_log, _, _ = spark_features(
        params.replace(engine="spark"),
        Progress(quiet=True),
        tmp_path / "features.parquet",
        purchases=tmp_path,
    )
    assert spark_log.engine["purchases"] == record
    assert sorted(frames) == sorted(
        name for name in pipeline.FORECAST_FILES if (tmp_path / name).is_dir()
    )
    assert len(frames) == (3 if holdout else 1) and record["buyers"] > 50
    for name, frame in frames.items():
        frame.to_parquet(tmp_path / f"duckdb-{name}")  # as the DuckDB engine stages it
        ours = forecast.read_purchases(tmp_path / f"duckdb-{name}")
        theirs = forecast.read_purchases(tmp_path / name)
        assert len(ours) > 20
        assert_same_purchases(ours, theirs)


def test_the_fit_buyers_are_the_duckdb_engines_draw(spark, tmp_path):
    from personas import forecast
    from personas.spark.purchases import drawn_buyers

    params = PersonaParams(sample_users=600, sample_seed=3)
    frames, _ = forecast.purchase_history(load_events(params), params)
    summary = frames[forecast.PURCHASES]
    # the positions are pandas' own draw
    drawn = summary.sample(n=100, random_state=7).sort_index()
    pd.testing.assert_frame_equal(forecast._sample(summary, 100, 7), drawn)
    spark_features(
        params.replace(engine="spark"),
        Progress(quiet=True),
        tmp_path / "features.parquet",
        purchases=tmp_path,
    )
    for size in (100, 10_000):
        theirs, buyers, repeat, priced = drawn_buyers(
            params, tmp_path / forecast.PURCHASES, size, 7
        )
        pd.testing.assert_frame_equal(
            theirs, forecast.normal_purchases(forecast._sample(summary, size, 7))
        )
        assert buyers == len(summary)
        assert repeat == bool((summary["frequency"] > 0).any())
        assert priced == summary["monetary_value"].notna().sum()


def test_adjusted_rand_from_counts_is_sklearns():
    from sklearn.metrics import adjusted_rand_score

    from personas.spark.report import adjusted_rand

    rng = np.random.default_rng(4)
    for size, classes, clusters in ((500, 4, 6), (50, 2, 2), (300, 5, 1), (7, 1, 3)):
        truth = rng.integers(0, classes, size)
        found = np.where(rng.random(size) < 0.7, truth, rng.integers(0, clusters, size))
        table = pd.crosstab(truth, found).to_numpy()
        assert adjusted_rand(table) == adjusted_rand_score(truth, found)
    assert adjusted_rand(np.array([[3, 0], [0, 5]])) == 1.0


def _model_assignments(stage: Path, users: int, seed: int = 0) -> pd.DataFrame:
    """A model step's assignments/ dataset (model numbers 0-3) of ``users`` users, in parts."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i:05d}" for i in rng.permutation(users)],
            "persona_id": rng.integers(0, 4, users).astype("int64"),
            "confidence": rng.random(users).round(4),
        }
    )
    (stage / "assignments").mkdir(parents=True)
    for i, start in enumerate(range(0, users, users // 3 + 1)):
        part = frame.iloc[start : start + users // 3 + 1]
        part.to_parquet(stage / "assignments" / f"part-{i}.parquet", index=False)
    return frame


def test_the_final_ids_and_names_are_given_on_the_executors(spark, tmp_path, monkeypatch):
    """write_assignments: the dataset and assignments.parquet with the final ids and names, as
    the DuckDB engine's pandas relabel and map give them; the CSV only up to CSV_MAX_USERS."""
    from personas import results
    from personas.migration import relabel
    from personas.spark.report import write_assignments

    params = PersonaParams(engine="spark")
    labels, names = {0: 5, 1: 0, 2: 9, 3: 2}, {5: "Five", 0: "Zero", 9: "Nine", 2: "Two"}
    model = _model_assignments(tmp_path / "small", 900)
    expected = model.sort_values("user_id", ignore_index=True)
    expected["persona_id"] = relabel(expected["persona_id"], labels)
    expected["persona"] = expected["persona_id"].map(names)
    expected = expected[["user_id", "persona_id", "persona", "confidence"]]
    frame = write_assignments(params, tmp_path / "small", labels, names, 900)
    pd.testing.assert_frame_equal(frame, expected)
    one = pd.read_parquet(tmp_path / "small" / "assignments.parquet")
    pd.testing.assert_frame_equal(one, expected)
    parts = pd.read_parquet(tmp_path / "small" / "assignments")
    pd.testing.assert_frame_equal(parts.sort_values("user_id", ignore_index=True), expected)
    ours = tmp_path / "pandas.csv"
    expected.to_csv(ours, index=False)
    assert (tmp_path / "small" / "assignments.csv").read_bytes() == ours.read_bytes()
    assert sorted(p.name for p in (tmp_path / "small").iterdir()) == [
        "assignments",
        "assignments.csv",
        "assignments.parquet",
    ]
    # above CSV_MAX_USERS: no CSV, and no table of every user on the driver
    monkeypatch.setattr(results, "CSV_MAX_USERS", 500)
    _model_assignments(tmp_path / "large", 900)
    assert write_assignments(params, tmp_path / "large", labels, names, 900) is None
    assert not (tmp_path / "large" / "assignments.csv").exists()
    one = pd.read_parquet(tmp_path / "large" / "assignments.parquet")
    pd.testing.assert_frame_equal(one, expected)


def test_planted_agreement_and_migration_counts_are_the_duckdb_engines(spark, tmp_path):
    from personas import migration
    from personas.errors import InputError
    from personas.spark import report

    params = PersonaParams(engine="spark")
    model = _model_assignments(tmp_path, 600)
    planted = model[["user_id"]].assign(
        persona=np.where(model["persona_id"] == 3, "noise", model["persona_id"].astype(str))
    )
    planted.loc[planted.index % 5 == 0, "persona"] = "mixed"
    planted.to_parquet(tmp_path / "planted.parquet", index=False)
    ours = pipeline._agreement(tmp_path, model)
    assert 0 < ours < 1
    assert report.planted_agreement(params, tmp_path) == ours
    assert report.planted_agreement(params, tmp_path / "assignments") is None  # no planted

    # two runs' files, users in one run only, the earlier one as CSV
    now = model.iloc[50:].assign(persona=lambda f: "P" + f["persona_id"].astype(str))
    then = _model_assignments(tmp_path / "then", 620, seed=1).iloc[:580]
    then = then.assign(persona=lambda f: "Q" + f["persona_id"].astype(str))
    now.to_parquet(tmp_path / "now.parquet", index=False)
    then.to_csv(tmp_path / "then.csv", index=False)
    for earlier in (tmp_path / "then.csv", tmp_path / "now.parquet"):
        key = ["from_id", "to_id"]
        duck = migration.count_flows(earlier, tmp_path / "now.parquet")
        theirs = report.count_flows(params, earlier, tmp_path / "now.parquet")
        duck, theirs = (
            f.astype({"from_id": "Int64", "to_id": "Int64", "users": "int64"}).sort_values(
                key, ignore_index=True
            )
            for f in (duck, theirs)
        )
        pd.testing.assert_frame_equal(theirs, duck, check_dtype=False)
    assert duck["users"].sum() == len(now)
    twice = pd.concat([now, now.iloc[:3]])
    twice.to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(InputError, match="holds 3 user ids more than once") as sparks:
        report.count_flows(params, tmp_path / "then.csv", tmp_path / "twice.parquet")
    with pytest.raises(InputError) as duck_error:
        migration.count_flows(tmp_path / "then.csv", tmp_path / "twice.parquet")
    assert str(sparks.value) == str(duck_error.value)
    (tmp_path / "bad.csv").write_text("uid,group\nu1,a\n")
    with pytest.raises(InputError, match="cannot be read as assignments"):
        report.count_flows(params, tmp_path / "bad.csv", tmp_path / "now.parquet")


# -- whole runs: the model fits UMAP (slow) ----------------------------------------------------


def _run(tmp_path, name: str, **values) -> Path:
    values = {"sample_users": 700, "forecast": False, **values}
    params = PersonaParams(n_fits=1, output_dir=str(tmp_path / name), **values)
    return pipeline.run(params, progress=False).run_dir


@pytest.mark.slow
def test_both_engines_give_the_same_personas(spark, tmp_path, monkeypatch):
    from personas import sampling

    monkeypatch.setattr(sampling, "FIT_USERS", 500)  # the fit users: a hash-chosen part
    duck = _run(tmp_path, "duckdb")
    spark_run = _run(tmp_path, "spark", engine="spark")
    a = pd.read_parquet(duck / "assignments.parquet")
    b = pd.read_parquet(spark_run / "assignments.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert a["persona_id"].nunique() >= 3
    parts = pd.read_parquet(spark_run / "assignments").sort_values("user_id", ignore_index=True)
    pd.testing.assert_frame_equal(parts, a.sort_values("user_id", ignore_index=True))
    # the executors wrote the features: a dataset of parts, the same table as DuckDB's file
    assert len(list((spark_run / "features.parquet").glob("part-*.parquet"))) >= 2
    pd.testing.assert_frame_equal(
        read_features(spark_run / "features.parquet"), read_features(duck / "features.parquet")
    )
    # the profiles come from Spark's aggregates: the same personas, names, texts and figures
    # (sums in another order: to 1e-12)
    assert_same_figures(
        json.loads((duck / "personas.json").read_text()),
        json.loads((spark_run / "personas.json").read_text()),
    )
    ours, theirs = (pd.read_csv(run / "personas.csv") for run in (duck, spark_run))
    numbers = ours.select_dtypes("number").columns
    pd.testing.assert_frame_equal(ours.drop(columns=numbers), theirs.drop(columns=numbers))
    pd.testing.assert_frame_equal(ours[numbers], theirs[numbers], check_exact=False, rtol=1e-12)
    report = [json.loads((run / "run.json").read_text()) for run in (duck, spark_run)]
    assert report[0]["counts"] == report[1]["counts"]
    # run.json says which engine computed the run, and on Spark what it left to DuckDB
    assert [r["engine"]["name"] for r in report] == ["duckdb", "spark"]
    assert "features_path" in report[1]["engine"]["not_on_spark"]
    # the executors' files: the same CSV, and the same agreement with the planted personas
    assert (spark_run / "assignments.csv").read_bytes() == (duck / "assignments.csv").read_bytes()
    assert report[1]["agreement_with_planted_ari"] == report[0]["agreement_with_planted_ari"]
    assert report[0]["agreement_with_planted_ari"] > 0.5
    # a later run of each engine compared with its earlier one: the same migration
    later = [
        _run(tmp_path, f"{run.name}-later", compare_to=str(run), random_state=1, **extra)
        for run, extra in ((duck, {}), (spark_run, {"engine": "spark"}))
    ]
    a, b = (pd.read_parquet(run / "assignments.parquet") for run in later)
    pd.testing.assert_frame_equal(a, b)
    moves = [(run / "migration.csv").read_bytes() for run in later]
    assert moves[0] == moves[1] and len(moves[0].splitlines()) > 2
    infos = [json.loads((run / "run.json").read_text()) for run in later]
    duck_moves, spark_moves = (
        {k: v for k, v in info["comparison"]["migration"].items() if k != "earlier_run"}
        for info in infos
    )
    assert duck_moves == spark_moves and duck_moves["users"]["in_both"] == 700
    assert infos[0]["identities"]["model_labels"] == infos[1]["identities"]["model_labels"]
    # the dataset holds the final ids and names: the personas.json's
    parts = pd.read_parquet(later[1] / "assignments").sort_values("user_id", ignore_index=True)
    pd.testing.assert_frame_equal(parts, b)
    personas = json.loads((later[1] / "personas.json").read_text())
    assert dict(parts.groupby("persona_id")["persona"].first()) == {
        p["id"]: p["name"] for p in personas
    }
    assert dict(parts["persona_id"].value_counts()) == {p["id"]: p["size"] for p in personas}


@pytest.mark.slow
@pytest.mark.parametrize("holdout", [0, 30])
def test_both_engines_give_the_same_forecast(spark, tmp_path, holdout):
    from personas import forecast

    values = dict(forecast=True, holdout_days=holdout, sample_users=600)
    duck = _run(tmp_path, "duckdb", **values)
    spark_run = _run(tmp_path, "spark", engine="spark", **values)
    # the forecast's figures per persona (sums in another order: to 1e-12), its record exactly
    ours, theirs = (json.loads((run / "personas.json").read_text()) for run in (duck, spark_run))
    assert [p["forecast"] is not None for p in ours] == [True] * len(ours)
    assert_same_figures(ours, theirs)
    infos = [json.loads((run / "run.json").read_text()) for run in (duck, spark_run)]
    assert infos[0]["forecast"] == infos[1]["forecast"]
    assert infos[0]["forecast"]["fitted_on_buyers"] > 50
    assert (infos[0]["forecast"]["holdout"] is not None) == bool(holdout)
    engine = json.loads((spark_run / "features.json").read_text())["engine"]
    assert "forecast" not in engine["not_on_spark"] and engine["name"] == "spark"
    # the assignment files: the same columns and bytes
    a, b = (pd.read_parquet(run / "assignments.parquet") for run in (duck, spark_run))
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns)[4:] == list(forecast.COLUMNS) and a["p_active"].notna().sum() > 50
    assert (spark_run / "assignments.csv").read_bytes() == (duck / "assignments.csv").read_bytes()
    parts = pd.read_parquet(spark_run / "assignments").sort_values("user_id", ignore_index=True)
    pd.testing.assert_frame_equal(parts, a.sort_values("user_id", ignore_index=True))
    assert not (spark_run / "forecast.users").exists()
    # personas.csv's forecast columns (to 1e-12, as its other figures)
    flat = [pd.read_csv(run / "personas.csv") for run in (duck, spark_run)]
    columns = [c for c in flat[0].columns if c.startswith("forecast_")]
    assert columns == [c for c in flat[1].columns if c.startswith("forecast_")] and columns
    pd.testing.assert_frame_equal(flat[0][columns], flat[1][columns], check_exact=False, rtol=1e-12)


def assert_same_figures(ours, theirs, where: str = "") -> None:
    """The same JSON, numbers equal to 1e-12 (relative), everything else exactly."""
    if isinstance(ours, float) or isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-300, nan_ok=True), where
    elif isinstance(ours, dict):
        assert list(ours) == list(theirs), where
        for key in ours:
            assert_same_figures(ours[key], theirs[key], f"{where}/{key}")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_figures(a, b, f"{where}/{i}")
    else:
        assert ours == theirs, where


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone_cluster(tmp_path):
    """A Spark standalone master and two workers on 127.0.0.1 (the scripts pyspark ships);
    stopped, whatever happens, when the test ends."""
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    port = _free_port()
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(tmp_path / "work"),
        "SPARK_LOG_DIR": str(tmp_path / "logs"),
    }
    env.pop("PYTHONPATH", None)  # the executors get the package from the driver (addPyFile)
    started = []
    logs = []

    def start(*args: str) -> None:
        log = open(tmp_path / f"daemon-{len(started)}.log", "w")  # noqa: SIM115
        logs.append(log)
        started.append(subprocess.Popen([str(spark_class), *args], env=env, stdout=log, stderr=log))

    try:
        master = f"spark://127.0.0.1:{port}"
        start(
            "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(_free_port()),
        )  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the Spark master did not start in 60 s")
        for _ in range(2):
            start(
                "org.apache.spark.deploy.worker.Worker", master,
                "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
                "--webui-port", str(_free_port()),
            )  # fmt: skip
        time.sleep(5)  # the workers register with the master
        yield master
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


@pytest.mark.slow
def test_a_run_on_a_standalone_cluster_of_two_workers(standalone_cluster, tmp_path):
    """The CLI in a fresh process (one Spark context per process: the tests' is local)."""
    out = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",  # the driver, where the workers reach it
    }
    command = [
        sys.executable, "-m", "personas", "run", "--no-notebooks", "-q", "--out", str(out),
        "-p", "engine=spark", "-p", f"spark_master={standalone_cluster}",
        "-p", "sample_users=500", "-p", "n_fits=1", "-p", "forecast=false",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stderr[-3000:]
    ours, _ = compute_features(load_events(PersonaParams(sample_users=500)))
    assert_same_features(ours, read_features(out / "features.parquet"))
    assert standalone_cluster in (out / "features.json").read_text()
    parts = pd.read_parquet(out / "assignments")
    assert len(parts) == 500


def test_features_equal_from_a_catalog_table(spark, tmp_path):
    path = tmp_path / "dirty.parquet"
    dirty_log(seed=11).to_parquet(path, index=False)
    spark.read.parquet(str(path)).createOrReplaceTempView("dirty_events")
    ours, _ = compute_features(load_events(PersonaParams(events_path=str(path))))
    spark_log, theirs = on_spark(PersonaParams(events_table="dirty_events"))
    assert spark_log.source == "dirty_events"
    assert_same_features(ours, theirs)


def test_a_missing_catalog_table_is_one_sentence(spark):
    from personas.errors import InputError

    with pytest.raises(InputError, match=r"events table 'no_such_table' cannot be read"):
        on_spark(PersonaParams(events_table="no_such_table"))


def test_features_equal_on_cdnow_a_real_order_table(spark, cdnow_csv):
    """Data the engine was not written against: CDNOW's 23,570 customers (an order table, no
    event column), read as CSV by DuckDB's sniffer and by Spark's reader."""
    params = PersonaParams(events_path=str(cdnow_csv), user_col="customer_id", time_col="date")
    log, ours, spark_log, theirs = both_engines(params)
    assert len(ours) == 23_570 and not log.has_event_column
    assert_same_features(ours, theirs)
    assert_same_record(log, spark_log)


def test_each_kpi_is_the_same_aggregate_on_spark_as_on_pandas(spark):
    """Every KPI's one definition (personas.kpis) computed by pandas and by Spark, with users
    without a value, a persona of none, and one whose orders sum to 0."""
    from personas.kpis import KPIS

    frame = pd.DataFrame(
        {
            "persona_id": [0, 0, 0, 0, 1, 1, 2, 2, 2],
            "orders": [1.0, 0.0, np.nan, 3.0, 0.0, 0.0, 2.0, 5.0, 1.0],
            "revenue": [10.0, np.nan, 5.5, 30.25, 0.0, np.nan, 7.0, 1e9, 0.1],
            "avg_order_value": [10.0, np.nan, np.nan, 10.1, np.nan, np.nan, 3.5, 2e8, 0.1],
            "days_since_seen": [3.0, 61.0, 60.0, np.nan, 90.0, 120.0, np.nan, np.nan, np.nan],
            "sessions_per_week": [0.5, 1.25, np.nan, 2.0, 0.0, 0.1, 7.0, 3.0, 1.0],
        }
    )
    table = spark.createDataFrame(frame).replace(float("nan"), None)
    rows = (
        table.groupBy("persona_id").agg(*[k.compute.spark().alias(k.key) for k in KPIS]).collect()
    )
    for row in rows:
        group = frame[frame["persona_id"] == row["persona_id"]]
        for k in KPIS:
            ours, theirs = k.compute(group), row[k.key]
            theirs = float("nan") if theirs is None else theirs
            assert theirs == pytest.approx(ours, rel=1e-15, nan_ok=True), (k.key, row)


@pytest.mark.slow
def test_the_steps_one_by_one_and_02_03_again_on_a_published_spark_run(
    spark, tmp_path, monkeypatch
):
    """The notebooks' way on Spark: 01 returns the fit users' table and stages it as
    fit_users.parquet (one Spark job gathers them: 02 reads the file, and so does 02 re-run on
    the published run), 02's names are 03's, and 02 and 03 re-run on the published run reuse
    its feature dataset."""
    from personas import results, sampling
    from personas.spark import assign

    monkeypatch.setattr(sampling, "FIT_USERS", 300)  # of 400: the hash chooses
    gathered = []

    def counted(*args, **kwargs):
        gathered.append(args)
        return fit_table(*args, **kwargs)

    fit_table = assign.fit_table
    monkeypatch.setattr(assign, "fit_table", counted)
    params = PersonaParams(
        sample_users=400, n_fits=1, forecast=False, engine="spark", output_dir=str(tmp_path / "r")
    )
    table = pipeline.features_step(params, progress=False)
    assert len(table) == 300 and table.index.is_monotonic_increasing
    stage = pipeline.stage_dir(params)
    pd.testing.assert_frame_equal(pd.read_parquet(stage / "fit_users.parquet"), table)
    # the DuckDB engine's fit users: the same users, the same features
    ours, _ = compute_features(load_events(PersonaParams(sample_users=400)))
    assert_same_features(ours[sampling.fit_users(ours.index, 300)], table)
    fit = pipeline.model_step(params, progress=False)
    assert len(gathered) == 1  # the features step's, not the model step's
    # the model step returns the fit users' assignments; every user's stay in assignments/
    assert list(fit["user_id"]) == list(table.index)
    assert not (stage / "assignments.parquet").exists()
    everyone = pd.read_parquet(stage / "assignments").set_index("user_id")
    assert len(everyone) == 400
    pd.testing.assert_series_equal(
        fit.set_index("user_id")["persona_id"], everyone.loc[table.index, "persona_id"]
    )
    names = pipeline.persona_names(params)
    first = pipeline.report_step(params, progress=False)
    assert names == {p.id: p.name for p in first.profiles}
    assert sum(p.size for p in first.profiles) == 400
    assert first.info["model"]["fit_users"] == 300
    features = read_features(first.run_dir / "features.parquet")
    other = params.replace(max_personas=5, min_personas=3)
    pipeline.model_step(other, progress=False)  # the published dataset, copied to the stage
    assert len(gathered) == 1  # fit_users.parquet, copied with it
    pd.testing.assert_frame_equal(pd.read_parquet(stage / "fit_users.parquet"), table)
    # above CSV_MAX_USERS no table of every user comes to the driver, nor a CSV is written
    monkeypatch.setattr(results, "CSV_MAX_USERS", 350)
    second = pipeline.report_step(other, progress=False)
    assert second.assignments is None and not (second.run_dir / "assignments.csv").exists()
    assert len(pd.read_parquet(second.run_dir / "assignments.parquet")) == 400
    assert 3 <= len(second.profiles) <= 5 and second.run_dir == first.run_dir
    assert second.info["model"]["fit_users"] == 300
    pd.testing.assert_frame_equal(read_features(second.run_dir / "features.parquet"), features)
