"""run(params) -> PersonaResult: the pipeline, as three steps the notebooks share.

=================  =========================  ==============================================
step               notebook                   writes into the staging folder
=================  =========================  ==============================================
features_step      01_features                features.parquet, features.json, state.json;
                                              on Spark also fit_users.parquet
model_step         02_personas                model/, assignments (ids and confidence)
report_step        03_report                  personas.json/csv, assignments.parquet/csv,
                                              index.html, run.json, with compare_to
                                              migration.csv; then publishes the run
=================  =========================  ==============================================

A run is built in a hidden staging folder beside its target (``.<name>.partial``) and swapped into
place by :func:`~personas.runfolder.publish` only when complete, so a failed or killed run never
leaves a half-written report and never destroys the previous good one; a whole run holds the
folder's lock, so two runs never write into one folder (:mod:`personas.runfolder`).
``features.json`` (what the features step used and found) stays in the published run, so 02 can
be re-run with other model settings after 03 has published, on the same features
(:func:`_model_stage`). Each step checks that it was given the parameter values the earlier
steps of the run used (:func:`check_agreement`). After the model step,
:func:`persona_names`, :func:`model_info` and :func:`map_points` read the staged model for
02_personas' charts (in the model's numbering; with ``compare_to`` the report step gives
matched personas the earlier run's ids, :mod:`personas.migration`).

Why it is long: each step checks its inputs, runs its stage and writes its own files and record
into the one staging folder, and the three share the helpers for that folder and ``run.json``;
kept together, this module is the one place that says what a run writes and in which order.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import runfolder
from .errors import OutputError, ParameterError, PersonaError
from .params import PersonaParams
from .progress import Progress, as_progress

if TYPE_CHECKING:
    from .profile import FeatureColumns

STATE = "state.json"
FEATURES_RECORD = "features.json"  # the features step's state, kept in the published run
# On Spark, the features of the users the model fits on (personas.sampling), gathered once by the
# features step (personas.spark.assign.fit_table) for 01's look and 02's fit, and kept in the
# published run so that 02 can be re-run without another Spark job
FIT_USERS_FILE = "fit_users.parquet"
# The parameters each step reads. A later step of a run must be given the values the earlier
# steps used (each notebook has its own parameters cell): otherwise the report would state
# parameters its features or model did not use. The report step's own parameters (naming, title,
# compare_to) are read by it alone; output_dir and run_name name the run, so they agree already.
FEATURE_PARAMETERS = (
    "events_path",
    "user_col",
    "time_col",
    "event_col",
    "amount_col",
    "session_col",
    "session_gap_minutes",
    "roles_path",
    "start",
    "end",
    "reference_date",
    "sample_users",
    "sample_seed",
    "sample_period",
    "features_path",
    "forecast",
    "holdout_days",
    "engine",
    "events_table",
)
MODEL_PARAMETERS = (
    "min_personas",
    "max_personas",
    "n_components",
    "n_neighbors",
    "min_cluster_size",
    "sample_size",
    "n_fits",
    "max_fits",
    "random_state",
)
# the forecast's input, staged by the features step (personas.forecast)
FORECAST_FILES = ("purchases.parquet", "purchases_calibration.parquet", "purchases_holdout.parquet")
VERSIONED = (
    "personas",
    "pandas",
    "numpy",
    "duckdb",
    "pyarrow",
    "scikit-learn",
    "umap-learn",
    "hdbscan",
    "numba",
    "jinja2",
    "papermill",
    "pymc-marketing",
    "pymc",
    "pytensor",
    "statsmodels",
)


@dataclass(frozen=True)
class PersonaResult:
    """What a run produced: its folder, personas and one row per user."""

    params: PersonaParams
    run_dir: Path
    profiles: tuple
    # user_id, persona_id, persona, confidence; None on Spark above CSV_MAX_USERS users (the
    # rows stay on the executors: read assignments.parquet or the dataset assignments/)
    assignments: pd.DataFrame | None
    info: dict  # the content of run.json
    traits: pd.DataFrame | None = None  # persona name x model feature label: the persona's
    # standardised difference from all users (z), as the
    # report's heatmap draws it

    def _repr_html_(self) -> str:
        """The persona cards of the report, with a link to it: what a notebook shows."""
        from .report.render import render_cards

        csv = (self.run_dir / "assignments.csv").exists()
        return render_cards(
            self.profiles,
            report=self.run_dir / "index.html",
            assignments_file="assignments.csv" if csv else "assignments.parquet",
        )


# -- folders ---------------------------------------------------------------------------------------


def stage_dir(params: PersonaParams) -> Path:
    return runfolder.stage_path(params.run_dir())


def _read_state(stage: Path) -> dict:
    """The run's state so far; the user's own features it names join the catalogue again (a
    notebook's kernel has not loaded them)."""
    from .custom import CustomFeature, register

    try:
        state = json.loads((stage / STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputError(
            f"no features step found in {str(stage)!r}; run 01_features (or "
            "features_step) first with the same output_dir"
        ) from None
    register(tuple(CustomFeature.from_dict(d) for d in state.get("custom_features", [])))
    return state


def _require_model(stage: Path, state: dict) -> None:
    """The personas step must have run on this staging folder before profiles can be made."""
    if "model_params" not in state:
        raise OutputError(
            f"no personas step found in {str(stage)!r}; run 02_personas (or "
            "model_step) first with the same output_dir"
        )


def check_agreement(params: PersonaParams, state: dict) -> None:
    """Raise ParameterError when ``params`` differ from the values the run's earlier steps used.

    The message names the parameter, both values and the notebook that used the other one.
    """
    earlier = (
        ("features", "01_features", state.get("params", {}), FEATURE_PARAMETERS),
        ("personas", "02_personas", state.get("model_params", {}), MODEL_PARAMETERS),
    )
    for step, notebook, used, names in earlier:
        for name in names:
            if name in used and used[name] != getattr(params, name):
                given = getattr(params, name)
                raise ParameterError(
                    f"parameter {name}={given!r} differs from {name}={used[name]!r}, which the "
                    f"{step} step ({notebook}) of this run used; give every notebook of the run "
                    f"the same value, or re-run {notebook} with {name}={given!r}",
                    name=name,
                )


def _write_state(stage: Path, state: dict) -> None:
    tmp = stage / (STATE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, stage / STATE)


def _fresh_stage(params: PersonaParams) -> Path:
    return runfolder.fresh_stage(params.run_dir())


# -- provenance ------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def fingerprint(params: PersonaParams) -> str:
    """A quick fingerprint of the input: size, name and the first and last MiB of each file."""
    if params.events_table.strip():  # a catalog table: its name (the catalog keeps versions)
        return f"table:{params.events_table.strip()}"
    if params.engine == "spark" and "://" in params.events_path:
        return f"path:{params.events_path}"  # an object store's files are not read here
    if not params.events_path:
        period = f":period={params.sample_period}" if params.sample_period > 1 else ""
        return f"sample:users={params.sample_users}:seed={params.sample_seed}{period}"
    path = Path(params.events_path)
    files = (
        sorted(path.rglob("*.parquet"))
        if path.is_dir()
        else (
            sorted(Path().glob(params.events_path))
            if any(c in params.events_path for c in "*?[")
            else [path]
        )
    )
    digest = hashlib.sha256()
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}:{size}".encode())
        with open(file, "rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                digest.update(fh.read())
    return f"sha256:{digest.hexdigest()[:32]} ({len(files)} file{'s' * (len(files) != 1)})"


class _Clock:
    """Collects step timings (seconds) into ``timings``."""

    def __init__(self, timings: dict):
        self.timings = timings

    def __call__(self, step: str):
        clock = self

        class _Span:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                clock.timings[step] = round(time.perf_counter() - self.start, 3)

        return _Span()


def _disk_guard(step):
    """A full disk during ``step`` becomes one sentence naming the folder that filled and what
    the run needs there (:func:`personas.runfolder.disk_full_error`), and DuckDB running out of
    ``memory_limit`` one naming that parameter, instead of a traceback."""

    @functools.wraps(step)
    def guarded(params: PersonaParams, *args, **kwargs):
        try:
            return step(params, *args, **kwargs)
        except Exception as exc:
            if isinstance(exc, PersonaError):
                raise
            temp = Path(params.temp_dir or tempfile.gettempdir())
            if runfolder.is_disk_full(exc):
                raise runfolder.disk_full_error(
                    exc, params.run_dir(), _users(params), temp
                ) from None
            duckdb = sys.modules.get("duckdb")
            if duckdb is not None and isinstance(exc, duckdb.OutOfMemoryException):
                if "offload" in str(exc):  # it could not write to temp_dir: that disk is full
                    raise runfolder.temp_full_error(temp) from None
                raise ParameterError(
                    f"parameter memory_limit={params.memory_limit!r} is too small for this log "
                    f"(DuckDB: {str(exc).splitlines()[0].split(': ', 1)[-1]}); raise it, or "
                    "give temp_dir a folder with more room to spill to",
                    name="memory_limit",
                ) from None
            raise

    return guarded


def _users(params: PersonaParams) -> int | None:
    """The run's user count, once the features step has recorded it."""
    try:
        state = json.loads((stage_dir(params) / STATE).read_text(encoding="utf-8"))
        return int(state["counts"]["users"])
    except (OSError, ValueError, KeyError):
        return None


# -- step 1: load + features ---------------------------------------------------------------------


@_disk_guard
def features_step(params: PersonaParams, progress: Progress | bool | None = None) -> pd.DataFrame:
    """Load and validate the events, compute features; start a fresh staging folder.

    Returns the feature table (one row per user); on Spark, whose executors write the table
    (a Parquet dataset, ``features.parquet/``), the table of the users the model fits on
    (:func:`personas.spark.assign.fit_table`: all of them up to 200,000), never the whole of it;
    it is staged as ``fit_users.parquet`` for the model step.
    Raises InputError/SchemaError on bad input (before anything is written) and OutputError
    when the output folder is not writable.
    ``progress`` reports the rows read, the users summed and the features computed as each
    ends (:func:`personas.progress.as_progress`: by default on standard output, False for none).
    """
    from .custom import add_custom_features, load_custom_features
    from .features import BY_NAME, compute_features, write_table
    from .load import load_events, track_progress
    from .model import require_users

    say = as_progress(progress)
    params.validate()
    custom = load_custom_features(params.features_path)  # a bad file fails before any work
    check_naming_files(params)  # as does a bad rules or renames file
    started = time.time()
    timings: dict[str, float] = {}
    clock = _Clock(timings)
    purchases, purchase_record = {}, None
    if params.engine == "spark":  # the same features, written by the executors (personas.spark)
        from .spark.assign import fit_table
        from .spark.features import spark_features

        stage = _fresh_stage(params)
        try:
            log, columns, skipped = spark_features(
                params, say, stage / "features.parquet", purchases=stage
            )
            require_users(log.counts["users"], log.source)
            # the forecast's purchase tables, written to stage by the executors
            purchase_record = log.engine.pop("purchases", None)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)  # nothing written for bad input
            raise
        timings.update(log.seconds)  # load, per_user and features, as below
        features = fit_table(params, stage / "features.parquet")
        features.to_parquet(stage / FIT_USERS_FILE)  # the model step fits on these
    else:
        log = load_events(params, progress=say)
        timings.update(log.seconds)  # the load's two passes: read and clean, then per user
        require_users(log.counts["users"], log.source)
        with (
            clock("features"),
            say.stage(
                "features", "computing features per user", track_progress(log.con, say)
            ) as computing,
        ):
            features, skipped = compute_features(log)
            features = add_custom_features(log, features, custom, params.features_path)
            computing.done(f"{features.shape[1]} columns for {len(features):,} users")
        if params.forecast:
            from .forecast import purchase_history

            with clock("purchases"):
                purchases, purchase_record = purchase_history(log, params)
        log.con.close()  # DuckDB's memory goes back before the table is written to Parquet
        stage = _fresh_stage(params)
        write_table(features, stage / "features.parquet")
        columns = list(features.columns)
    for name, frame in purchases.items():
        frame.to_parquet(stage / name)
    if log.planted is not None:
        log.planted.to_parquet(stage / "planted.parquet", index=False)
    record = {
        "started": started,
        "params": params.to_dict(),
        "source": log.source,
        "fingerprint": fingerprint(params),
        "order_table": not log.has_event_column,
        "time_format": log.time_format,
        "read_as": log.read_as,  # a CSV's encoding, separator, ... if unusual
        "counts": {
            "events": log.counts["events"],
            "users": log.counts["users"],
            "rows_read": log.counts["rows_read"],
        },
        "window": {"start": log.counts["start"], "end": log.counts["end"]},  # events kept
        "window_applied": log.window,  # the start/end filter, None = open
        "reference_date": {"value": str(log.reference), "from": log.reference_from},
        "data_quality": log.quality,
        "event_roles": {
            name: {"role": log.role_map[name], "rows": int(n)}
            for name, n in log.event_counts.items()
        },
        "unknown_events": log.unknown_events,
        "features": {"used": [c for c in columns if c in BY_NAME], "skipped": skipped},
        "custom_features": [c.to_dict() for c in custom],
        "timings_s": timings,
        "purchases": purchase_record,  # the forecast's input (personas.forecast)
        "engine": {**_engine_record(params), **log.engine},
    }
    (stage / FEATURES_RECORD).write_text(
        json.dumps(record, indent=2, default=str), encoding="utf-8"
    )
    _write_state(stage, record)
    return features


def _engine_record(params: PersonaParams) -> dict[str, Any]:
    """What computed the features, for run.json; on Spark, what it does not compute yet."""
    if params.engine != "spark":
        return {"name": "duckdb"}
    return {
        "name": "spark",
        "master": params.spark_master,
        "not_on_spark": "your own features (features_path) are computed by the DuckDB engine "
        "only so far",
    }


# -- step 2: model ---------------------------------------------------------------------------------


def _model_stage(params: PersonaParams) -> Path:
    """The staging folder the model step works in: the one 01 started or, once 03 has published
    the run, a fresh one holding the published run's features, so that a researcher can re-run
    02 and 03 with other model settings without computing the features again.

    The published features are reused only for the same input (its fingerprint) and the same
    feature parameters; otherwise the error says to run 01 again.
    """
    stage = stage_dir(params)
    published = params.run_dir()
    if (stage / STATE).exists() or not (published / FEATURES_RECORD).exists():
        return stage  # _read_state explains a missing features step
    record = json.loads((published / FEATURES_RECORD).read_text(encoding="utf-8"))
    check_agreement(params, {"params": record["params"]})
    if record["fingerprint"] != fingerprint(params):
        raise OutputError(
            f"the input of {str(published)!r} has changed since its features were "
            "computed; run 01_features (or features_step) again"
        )
    stage = _fresh_stage(params)
    names = ("features.parquet", FIT_USERS_FILE, "planted.parquet", FEATURES_RECORD)
    for name in (*names, *FORECAST_FILES):
        if (published / name).is_dir():  # the Spark engine's features: a dataset
            shutil.copytree(published / name, stage / name)
        elif (published / name).exists():
            shutil.copy2(published / name, stage / name)
    _write_state(stage, {**record, "started": time.time()})
    return stage


def persona_model(params: PersonaParams, model: Any = None):
    """The unfitted model the personas step fits.

    Without ``model``, a PersonaModel with the parameters' model settings. With one (an unfitted
    or fitted :class:`~personas.model.PersonaModel`: other settings, a reducer or clusterer of
    your own), an unfitted copy of it, given the feature table's preprocessing
    (:class:`~personas.model.FeatureMatrix`) when it has no preprocessor and the run's
    ``random_state`` when it has none, so that the run stays repeatable. A bare scikit-learn
    clusterer or reducer goes in as ``PersonaModel(clusterer=...)`` or ``reducer=...``.
    """
    from sklearn.base import clone

    from .model import FeatureMatrix, PersonaModel

    if model is None:
        return PersonaModel(
            n_components=params.n_components,
            n_neighbors=params.n_neighbors,
            min_personas=params.min_personas,
            max_personas=params.max_personas,
            min_cluster_size=params.min_cluster_size,
            sample_size=params.sample_size,
            n_fits=params.n_fits,
            max_fits=params.max_fits,
            preprocessor=FeatureMatrix(),
            random_state=params.random_state,
        )
    if not isinstance(model, PersonaModel):
        raise ParameterError(
            f"model={model!r} is not a PersonaModel; give your clusterer or "
            "reducer to one: model=PersonaModel(clusterer=..., reducer=...)",
            name="model",
        )
    model = clone(model)
    if model.preprocessor is None:
        model.set_params(preprocessor=FeatureMatrix())
    if model.random_state is None:
        model.set_params(random_state=params.random_state)
    return model


def model_parameters(model) -> dict[str, Any]:
    """The model's values of the run parameters it has (:data:`MODEL_PARAMETERS`)."""
    return {name: model.get_params()[name] for name in MODEL_PARAMETERS}


def _model_record(model) -> dict[str, Any]:
    """Every setting of ``model``, for run.json: numbers and text as they are, objects (a
    reducer, a clusterer, the preprocessor) as written in Python."""
    from .model import describe

    plain = (type(None), bool, int, float, str)
    return {
        name: value if isinstance(value, plain) else describe(value)
        for name, value in model.get_params(deep=False).items()
    }


@_disk_guard
def model_step(
    params: PersonaParams, progress: Progress | bool | None = None, model: Any = None
) -> pd.DataFrame:
    """Fit the PersonaModel on the staged features and assign every user.

    Returns the assignments so far: user_id, persona_id, confidence; on Spark, where the
    executors write every user's into the dataset ``assignments/``, the fit users' rows only
    (:func:`personas.spark.assign.fit_assignments`: all users up to 200,000), as
    :func:`features_step` returns the fit users' features. ``progress`` reports the
    fits, the assignment and the 2-D map as each ends (as in :func:`features_step`). ``model``
    replaces the PersonaModel the parameters describe (:func:`persona_model`); its settings are
    the ones the run records, and the report step must be given the same values.
    """
    from . import sampling
    from .features import read_features
    from .model import map_2d

    say = as_progress(progress)
    stage = _model_stage(params)
    state = _read_state(stage)
    # the features' parameters only: re-running 02 with other model settings replaces the model
    check_agreement(params, {"params": state["params"]})
    model = persona_model(params, model)
    spark = params.engine == "spark"
    users = state["counts"]["users"]
    if not spark:  # on Spark the table stays on the executors (personas.spark.assign)
        # one copy of the table (pd.read_parquet holds three at its peak: 10 GB at 10M users)
        X = read_features(stage / "features.parquet")  # FeatureMatrix picks its columns
    with _Clock(state["timings_s"])("model"):
        # the users whose ids hash lowest, the same on both engines (personas.sampling)
        if spark:
            from .spark.assign import assign_all, fit_assignments

            fitted = _staged_fit_users(params, stage)
        else:
            few = len(X) <= sampling.FIT_USERS  # then all of them, without a copy
            fitted = X if few else X[sampling.fit_users(X.index, sampling.FIT_USERS)]
        fits = f"{model.n_fits} fit{'s' * (model.n_fits > 1)}"
        sample = min(model.sample_size, len(fitted))
        with say.stage("personas", f"fitting {fits} on {sample:,} users each") as fitting:
            model.fit(fitted)
            extra = model.info_["fits_fitted"] - model.n_fits
            more = f", {extra} more as those reproduced no count" if extra else ""
            fitting.done(
                f"{fits} on {len(model.sample_index_):,} users each{more}: "
                f"{model.info_['personas']} personas"
            )
        with say.stage("personas", f"assigning {users:,} users") as assigning:
            if spark:  # on the executors, into the Parquet dataset assignments/
                assign_all(params, stage / "features.parquet", model, stage / "assignments")
                assignments = fit_assignments(params, stage / "assignments", stage / FIT_USERS_FILE)
            else:
                labels, confidence = model.predict_with_confidence(X)
                assignments = pd.DataFrame(
                    {
                        "user_id": X.index.astype(str),
                        "persona_id": labels,
                        "confidence": confidence.round(4),
                    }
                )
            assigning.done(f"{users:,} users assigned")
        with say.stage("personas", "drawing the 2-D map") as drawing:
            rows, coords = map_2d(model.reference_, model.embedding_, params.random_state)
            drawing.done(f"2-D map of {len(rows):,} users")
    model.save(stage / "model", versions=versions())
    pd.DataFrame(
        {"x": coords[:, 0], "y": coords[:, 1], "persona_id": model.labels_[rows]}
    ).to_parquet(stage / "model" / "map.parquet", index=False)
    if not spark:  # on Spark the dataset assignments/ is the step's output
        assignments.to_parquet(stage / "assignments.parquet", index=False)
    state["model"] = {
        **model.info_,
        "fit_users": len(fitted),  # the users whose ids hash lowest (personas.sampling)
        "features": list(model.feature_names_in_),
        "params": _model_record(model),
    }
    state["model_params"] = model_parameters(model)
    _write_state(stage, state)
    return assignments


def _staged_fit_users(params: PersonaParams, stage: Path) -> pd.DataFrame:
    """On Spark, the fit users' features the features step staged (:data:`FIT_USERS_FILE`);
    gathered again (:func:`personas.spark.assign.fit_table`) only for a run published before
    the features step staged them."""
    path = stage / FIT_USERS_FILE
    if path.exists():
        return pd.read_parquet(path)
    from .spark.assign import fit_table

    fitted = fit_table(params, stage / "features.parquet")
    fitted.to_parquet(path)  # for the fit users' assignments (model_step)
    return fitted


def model_info(params: PersonaParams) -> dict:
    """What the staged model found and chose (``PersonaModel.info_``): among others
    ``count_scores``, the score of every persona count it tried, and ``count_rule``, why it
    kept the one it did."""
    stage = stage_dir(params)
    state = _read_state(stage)
    _require_model(stage, state)
    return state["model"]


def map_points(params: PersonaParams) -> pd.DataFrame:
    """The staged model's 2-D map of its fitted sample: x, y, persona_id."""
    stage = stage_dir(params)
    _require_model(stage, _read_state(stage))
    return pd.read_parquet(stage / "model" / "map.parquet")


def persona_names(params: PersonaParams) -> dict[int, str]:
    """Persona id -> the name the report step will give it, from the staged model.

    The model step's charts can show names rather than numbers: the names come from the same
    profiles, rules and renames as in :func:`report_step`, and with ``compare_to`` the same
    names kept from the earlier run (:func:`personas.migration.keep_identities`), so they are the
    report's names as long as the notebooks share their parameters. The keys stay the model's
    numbers, as in :func:`map_points`.
    """
    stage = stage_dir(params)
    state = _read_state(stage)
    _require_model(stage, state)
    check_agreement(params, state)
    from .profile import FeatureColumns

    features = FeatureColumns(stage / "features.parquet")
    spark = params.engine == "spark"  # Spark's profiles come from assignments/ on the executors
    assignments = None if spark else pd.read_parquet(stage / "assignments.parquet")
    profiles, _, _ = _profile(params, state, features, assignments)
    if params.compare_to:
        from .migration import keep_identities, series_highest_id
        from .report.compare import read_previous_run

        previous = read_previous_run(params.compare_to)
        kept, _, _ = keep_identities(
            profiles, previous, series_highest_id(previous.folder, previous.personas)
        )
        return {p.id: k.name for p, k in zip(profiles, kept)}
    return {p.id: p.name for p in profiles}


def check_naming_files(params: PersonaParams) -> None:
    """Read the rules and renames files the report step will use, so that a bad one stops the
    run before its load rather than after its model fit."""
    from .naming import load_renames, load_rules

    if params.rules_path:
        load_rules(params.rules_path)
    if params.renames_path:
        load_renames(params.renames_path)


def _profile(
    params: PersonaParams, state: dict, features: FeatureColumns, assignments: pd.DataFrame | None
) -> tuple[tuple, pd.DataFrame, list[str]]:
    """Profile and name the staged personas: (profiles, trait table, unused renames).

    The trait table (persona id x catalogue feature, z) feeds the names, the cards and the
    heatmap; the unused renames are names in ``renames_path`` that no persona had. The features
    are read from their file a column at a time (:class:`~personas.profile.FeatureColumns`):
    the whole table and its copies would hold 13 GB at 10M users. On Spark the per-persona
    aggregates come from the executors (:func:`personas.spark.profile.spark_figures`), over
    the staged feature dataset and ``assignments/``; ``assignments`` is not read (None).
    """
    from .features import BY_NAME, event_mix_counts
    from .naming import load_renames, load_rules
    from .profile import persona_figures, profiles_from, trait_table

    renames = load_renames(params.renames_path) if params.renames_path else {}
    if params.engine == "spark":
        from .spark.profile import spark_figures

        aggregates = spark_figures(params, features.path.parent)
    else:
        labels = assignments["persona_id"].to_numpy()
        catalogue = features.only([c for c in features.columns if c in BY_NAME])
        aggregates = persona_figures(
            catalogue,
            labels,
            assignments["confidence"].to_numpy(),
            event_mix_counts(features),
            trait_table(catalogue, labels),
        )
    profiles = profiles_from(
        aggregates,
        order_table=state["order_table"],
        rules=load_rules(params.rules_path or None),
        renames=renames,
        persona_stability=state["model"].get("persona_stability"),
        currency=params.currency,
    )
    return profiles, aggregates.traits, sorted(set(renames) - {p.default_name for p in profiles})


# -- step 3: profile, name, report, publish -------------------------------------------------------


@_disk_guard
def report_step(params: PersonaParams, progress: Progress | bool | None = None) -> PersonaResult:
    """Profile and name the personas, write the report and exports, then publish the run.

    ``progress`` reports the profiles and the report as each is done (as in
    :func:`features_step`). On Spark the executors give every user the final id and name, write
    the assignments, and count the agreement with planted personas and the migration
    (:mod:`personas.spark.report`); the result's ``assignments`` are then read back from
    ``assignments.parquet`` only up to :data:`~personas.results.CSV_MAX_USERS` users (None
    above)."""
    from .features import BY_NAME
    from .migration import (
        assignments_file,
        count_flows,
        keep_identities,
        migrate,
        read_side,
        relabel,
        series_highest_id,
        window_of,
    )
    from .profile import FeatureColumns
    from .report import render_report
    from .report.compare import compare_runs, read_previous_run
    from .results import RunSummary

    say = as_progress(progress)
    stage = stage_dir(params)
    state = _read_state(stage)
    _require_model(stage, state)
    check_agreement(params, state)
    # read the earlier run first: a bad compare_to fails before this step writes anything
    previous = read_previous_run(params.compare_to) if params.compare_to else None
    if previous is not None:
        assignments_file(params.compare_to)  # the migration needs its assignments
    clock = _Clock(state["timings_s"])
    features = FeatureColumns(stage / "features.parquet")
    spark = params.engine == "spark"  # then every user's row stays on the executors
    assignments = None if spark else pd.read_parquet(stage / "assignments.parquet")
    users = state["counts"]["users"]
    catalogue = features.only([c for c in features.columns if c in BY_NAME])
    with clock("profile"), say.stage("report", "profiling and naming the personas") as naming:
        profiles, traits, unused_renames = _profile(params, state, features, assignments)
        # matched personas keep the earlier run's ids and names (personas.migration)
        profiles, identities, matches = keep_identities(
            profiles, previous, previous and series_highest_id(previous.folder, previous.personas)
        )
        traits = traits.rename(index=identities.model_labels)
        naming.done(f"{len(profiles)} personas profiled and named")
        names = {p.id: p.name for p in profiles}
        if spark:  # the index does not depend on the personas' numbers: the model's will do
            from .spark.report import planted_agreement

            agreement = planted_agreement(params, stage)
        else:
            assignments["persona_id"] = relabel(assignments["persona_id"], identities.model_labels)
            assignments["persona"] = assignments["persona_id"].map(names)
            assignments = assignments[["user_id", "persona_id", "persona", "confidence"]]
            agreement = _agreement(stage, assignments)
    forecast = None
    if state.get("purchases"):
        from .forecast import run_forecast

        with clock("forecast"), say.stage("report", "forecasting purchases and revenue") as ahead:
            if spark:  # every buyer predicted on the executors (personas.spark.forecast)
                from .spark.forecast import spark_forecast

                forecast = spark_forecast(params, stage, state, identities.model_labels, users)
            else:
                forecast = run_forecast(
                    stage,
                    params,
                    state,
                    pd.Index(assignments["user_id"]),
                    assignments["persona_id"].to_numpy(),
                )
            ahead.done(
                f"forecast over {params.horizon_days} days"
                if forecast.available
                else f"no forecast: {forecast.info['reason']}"
            )
    profiles = _with_forecast(profiles, forecast, params.currency)
    assignments = _forecast_columns(assignments, forecast, bool(state.get("purchases")))
    with clock("report"), say.stage("report", "writing the report and the exports") as writing:
        _write_exports(stage, profiles, assignments, state["model"].get("stability"))
        count = count_flows
        if spark:  # the assignments/ dataset and the files, final ids and names, by the executors
            from .spark import report as on_spark

            assignments = on_spark.write_assignments(
                params, stage, identities.model_labels, names, users, bool(state.get("purchases"))
            )
            count = functools.partial(on_spark.count_flows, params)
        records = json.loads((stage / "personas.json").read_text("utf-8"))
        comparison = compare_runs(records, previous, matches) if previous else None
        migration = None
        if previous is not None:
            with clock("migration"):
                migration = migrate(
                    read_side(params.compare_to),
                    read_side(stage, records, window_of(state), stage / "assignments.parquet"),
                    count,
                )
                migration.write_csv(stage)
        used = state["model"]["features"]
        heat = traits.loc[[p.id for p in profiles], used]
        heat.index = [p.name for p in profiles]
        heat.columns = [BY_NAME[c].label for c in heat.columns]
        points = pd.read_parquet(stage / "model" / "map.parquet")
        points["persona_id"] = relabel(points["persona_id"], identities.model_labels)
        summary = RunSummary(
            title=params.title,
            source=state["source"],
            window_start=state["window"]["start"],
            window_end=state["window"]["end"],
            users=state["counts"]["users"],
            events=state["counts"]["events"],
            run_date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            personas=profiles,
            features_used=tuple((c, BY_NAME[c].description) for c in used),
            features_described=tuple(
                (c, BY_NAME[c].description) for c in catalogue.columns if c not in used
            ),
            features_skipped=tuple(state["features"]["skipped"].items()),
            parameters=tuple((k, str(v)) for k, v in params.to_dict().items()),
            model_info=state["model"],
            quality=_quality_rows(state["data_quality"]),
            role_map=tuple(
                (name, v["role"], v["rows"]) for name, v in state["event_roles"].items()
            ),
            versions=tuple(versions().items()),
            agreement=agreement,
            currency=params.currency,
            forecast=forecast.info if forecast else None,
            assignments_file=users_export(users),
        )
        render_report(
            summary,
            stage / "index.html",
            map_points=points,
            heatmap=heat,
            comparison=comparison,
            migration=migration,
            export_header=list(pd.read_csv(stage / "personas.csv", nrows=0).columns),
        )
        writing.done("index.html, personas.json/csv and assignments written")
    state["timings_s"]["total"] = round(time.time() - state["started"], 3)
    info = _run_info(params, state, profiles, agreement, unused_renames)
    info["forecast"] = forecast.info if forecast else None
    info["identities"] = identities.to_dict()
    info["comparison"] = comparison.to_dict() if comparison else None
    if migration is not None:
        info["comparison"]["migration"] = migration.to_dict()
    (stage / "run.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    (stage / STATE).unlink()
    run_dir = runfolder.publish(stage, params.run_dir()) if params.publish else stage
    return PersonaResult(
        params=params,
        run_dir=run_dir,
        profiles=profiles,
        assignments=assignments,
        info=info,
        traits=heat,
    )


def _with_forecast(profiles: tuple, forecast, currency: str) -> tuple:
    """Each profile with its forecast (:class:`~personas.results.PersonaForecast`), the plays the
    forecast calls for, and every play's A/B test sized: the users per arm to detect a 10 %
    rise in the share of its users who buy within the horizon (forecast), or who buy at all
    (the conversion KPI, without a forecast)."""
    from dataclasses import replace

    from .plays import sized, with_forecast_plays
    from .results import PersonaForecast

    out = []
    for p in profiles:
        figures = forecast.personas.get(p.id) if forecast is not None else None
        made = None
        if figures is not None:
            made = PersonaForecast(
                **{
                    **figures,
                    "due_dates": tuple(figures["due_dates"]) if figures["due_dates"] else None,
                }
            )
        plays = with_forecast_plays(p.plays, made, p.share, currency)
        if made is not None and made.buying_share is not None:
            baseline = made.buying_share
            what = f"buy within {made.horizon_days} days, as forecast,"
        else:
            conversion = next((k for k in p.kpis if k.key == "conversion_rate"), None)
            baseline = conversion.value if conversion is not None else None
            what = "have bought, in the data's window,"
        plays = tuple(sized(play, p.size, baseline, what) for play in plays)
        out.append(replace(p, forecast=made, plays=plays))
    return tuple(out)


def _forecast_columns(assignments: pd.DataFrame, forecast, asked: bool) -> pd.DataFrame:
    """assignments with p_active, expected_purchases, expected_revenue and next_purchase_due
    (:func:`personas.forecast.assignment_columns`) when the run forecast (``forecast=true``);
    None on Spark, whose executors add them (:func:`personas.spark.report.write_assignments`)."""
    if not asked or assignments is None:
        return assignments
    from .forecast import assignment_columns

    users = pd.Index(assignments["user_id"])
    columns = assignment_columns(forecast, users)
    return pd.concat([assignments.reset_index(drop=True), columns.reset_index(drop=True)], axis=1)


def _agreement(stage: Path, assignments: pd.DataFrame) -> float | None:
    """Adjusted Rand index against the planted personas (bundled sample only, noise excluded)."""
    from sklearn.metrics import adjusted_rand_score

    path = stage / "planted.parquet"
    if not path.exists():
        return None
    planted = pd.read_parquet(path).rename(columns={"persona": "planted"})
    both = planted.merge(assignments[["user_id", "persona_id"]], on="user_id")
    both = both[both["planted"] != "noise"]
    return round(float(adjusted_rand_score(both["planted"], both["persona_id"])), 4)


def _quality_rows(quality: dict) -> tuple:
    from .load import CLEANING_RULES

    return tuple((rule, int(rows), CLEANING_RULES.get(rule, "")) for rule, rows in quality.items())


def _write_exports(
    stage: Path, profiles: tuple, assignments: pd.DataFrame | None, stability: float | None = None
) -> None:
    """personas.json/csv and the assignments (None: not here, as on Spark, whose executors
    write them: :func:`personas.spark.report.write_assignments`); ``stability`` is the model's
    agreement between refits, written with its verdict into every persona record
    (personas.json is a list)."""
    from .results import stability_record

    segmentation = stability_record(stability)
    records = [{**_persona_record(p), "segmentation": segmentation} for p in profiles]
    (stage / "personas.json").write_text(json.dumps(records, indent=2), encoding="utf-8")
    flat = []
    for p, record in zip(profiles, records):
        row = {
            k: record[k]
            for k in (
                "id",
                "name",
                "size",
                "share",
                "revenue_share",
                "confidence",
                "reproducibility",
                "clear_share",
                "description",
                "currency",
            )
        }
        row["traits"] = "; ".join(t.text for t in p.traits[:3])
        for key, stat in record["stats"].items():  # the JSON's figures, one group per key
            row[key] = stat["value"]
            row[f"{key}_overall"] = stat["overall"]
            row[f"{key}_lift"] = stat["lift"]
            if stat["basis"]:
                row.update({f"{key}_{field}": stat[field] for field in CENTRES})
        for key, value in (record["forecast"] or {}).items():  # the forecast, flat
            row[f"forecast_{key}"] = "..".join(value) if key == "due_dates" and value else value
        flat.append(row)
    pd.DataFrame(flat).to_csv(stage / "personas.csv", index=False)
    if assignments is None:
        return
    assignments.to_parquet(stage / "assignments.parquet", index=False)
    if users_export(len(assignments)) == "assignments.csv":
        assignments.to_csv(stage / "assignments.csv", index=False)


def users_export(users: int) -> str:
    """The file of users a run writes for import: assignments.csv up to
    :data:`~personas.results.CSV_MAX_USERS` users, else assignments.parquet alone (which every
    run writes)."""
    from .results import CSV_MAX_USERS

    return "assignments.csv" if users <= CSV_MAX_USERS else "assignments.parquet"


CENTRES = ("basis", "median", "mean", "overall_median", "overall_mean")


def _stat_record(s) -> dict[str, Any]:
    """One figure for JSON: headline (value, overall, lift on ``basis``) plus both centres, and
    which way is good news ("higher", "lower", or null for neither), as the report colours it."""
    return {
        "label": s.label,
        "value": s.value,
        "overall": s.overall,
        "lift": s.lift,
        "unit": s.unit,
        "statistic": s.statistic,
        **{field: getattr(s, field) for field in CENTRES},
        "better": s.better or None,
    }


def _persona_record(p) -> dict[str, Any]:
    # "stats" maps key -> figure for key stats and KPIs alike; where a KPI shares a feature's
    # key (avg_order_value, days_since_seen) the KPI's definition is the one kept there, so
    # "key_stats" lists the card's behaviour stats in full, in card order.
    stats = {s.key: _stat_record(s) for s in (*p.stats, *p.kpis)}
    return {
        "id": p.id,
        "name": p.name,
        "default_name": p.default_name,
        "family": p.family,
        "size": p.size,
        "share": p.share,
        "revenue_share": p.revenue_share,
        "confidence": p.confidence,
        "reproducibility": p.reproducibility,
        "clear_share": p.clear_share,
        "stats": stats,
        "key_stats": [{"key": s.key, **_stat_record(s)} for s in p.stats],
        "traits": [{"feature": t.feature, "z": t.z, "text": t.text} for t in p.traits],
        "description": p.description,
        "claims": [
            {
                "figure": c.figure,
                "word": c.word,
                "label": c.label,
                "unit": c.unit,
                "statistic": c.statistic,
                "value": c.value,
                "overall": c.overall,
                "lift": c.lift,
                "bounds": dict(c.bounds),
                "holds": c.holds,
            }
            for c in p.claims
        ],  # what the name claims, with the figures
        "plays": [
            {
                "title": x.title,
                "action": x.action,
                "kpi": x.kpi,
                "test": x.test,
                "why": x.why,
                "users_per_arm": x.users_per_arm,
                "effect": x.effect,
                "enough_users": x.enough,
            }
            for x in p.plays
        ],
        "currency": p.currency or None,  # of the money figures (ISO 4217), when given
        "event_mix": dict(p.event_mix),
        "forecast": _forecast_record(p.forecast),
    }


def _forecast_record(f) -> dict[str, Any] | None:
    """A persona's forecast for personas.json (None without one)."""
    if f is None:
        return None
    record = dataclasses.asdict(f)
    record["due_dates"] = list(f.due_dates) if f.due_dates else None
    return record


def _run_info(
    params: PersonaParams, state: dict, profiles: tuple, agreement, unused_renames: list[str]
) -> dict:
    from .load import CLEANING_RULES
    from .results import stability_record

    return {
        "parameters": params.to_dict(),
        "versions": versions(),
        "input": {
            "source": state["source"],
            "fingerprint": state["fingerprint"],
            "time_format": state["time_format"],
            "read_as": state.get("read_as", ""),
            "order_table": state["order_table"],
            "window": state["window"],
            "window_applied": state["window_applied"],
            "reference_date": state["reference_date"],
        },
        "counts": {**state["counts"], "personas": len(profiles)},
        # what computed the features and, on Spark, what it does not compute (_engine_record)
        "engine": state.get("engine", {"name": "duckdb"}),
        "timings_s": state["timings_s"],
        "data_quality": {"rules": dict(CLEANING_RULES), "rows": state["data_quality"]},
        "event_roles": state["event_roles"],
        "unknown_events": state["unknown_events"],
        "features": state["features"],
        "model": state["model"],
        "segmentation": stability_record(state["model"].get("stability")),
        "agreement_with_planted_ari": agreement,
        "renames_unused": unused_renames,  # names in renames_path that no persona had
    }


# -- the whole run ---------------------------------------------------------------------------------

STEPS = (("features", features_step), ("personas", model_step), ("report", report_step))


def run(
    params: PersonaParams | None = None,
    progress: Progress | bool | None = None,
    model: Any = None,
    **changes: Any,
) -> PersonaResult:
    """Run all three steps in this process and publish the run folder.

    ``progress`` gets a line as each step starts and ends (with its time), and the steps'
    own lines between (:func:`features_step`): by default on standard output, False for none.
    Keyword arguments change single parameters: ``run(sample_users=2000)``. ``model``, a
    :class:`~personas.model.PersonaModel` of your own (other settings, your reducer or
    clusterer), replaces the one the parameters describe: its settings become the run's model
    parameters, so that run.json and the report state what was fitted (:func:`persona_model`).

    Examples
    --------
    >>> result = run(PersonaParams(sample_users=2000, output_dir="/tmp/personas-doc"))
    ... # doctest: +SKIP
    >>> [p.name for p in result.profiles]  # doctest: +SKIP
    ['Frequent Browser', 'Bargain Hunter', ...]
    """
    params = (params or PersonaParams()).replace(**changes)
    if model is not None:
        params = params.replace(**model_parameters(persona_model(params, model)))
    say = as_progress(progress)
    with runfolder.RunLock(params.run_dir()):
        return _run_steps(params, say, model)


def _run_steps(params: PersonaParams, say: Progress, model: Any) -> PersonaResult:
    try:
        for i, (name, step) in enumerate(STEPS, 1):
            start = time.perf_counter()
            say.line(f"[{i}/{len(STEPS)}] {name} ...")
            # each step reads what the one before wrote: its table (3 GB of features at 10M
            # users) is not held while the next step runs
            result = None
            result = step(params, say, model=model) if step is model_step else step(params, say)
            say.line(f"[{i}/{len(STEPS)}] {name} done in {time.perf_counter() - start:.1f} s")
        return result
    except BaseException:
        shutil.rmtree(stage_dir(params), ignore_errors=True)
        raise
