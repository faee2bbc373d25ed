"""The SparkSession the Spark engine runs in, and the event log as a Spark DataFrame.

An active session (a Databricks notebook, ``spark-submit``, a test's) is used as it is; else one
is started on ``spark_master``. A cluster's executors get this package as a zip added to the
session (``addPyFile``), so the code they run is the driver's; its dependencies (DuckDB, pandas,
pyarrow) must be installed on them. The session's time zone is set to UTC: the load reads times
without a zone as UTC, and Spark parses and converts them in its session zone.
"""

from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ..errors import InputError, ParameterError
from ..params import PersonaParams

PYSPARK_MISSING = (
    "parameter engine=spark needs pyspark, which is not installed; install it with "
    "pip install -e '.[spark]' (or pip install 'personas[spark]'), or use engine=duckdb"
)
LOCAL_DRIVER_MEMORY = "4g"  # the JVM's heap in local mode (tasks and driver together)
TEXT_COLUMNS = ("platform", "category", "product")  # optional columns the load reads as text
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt", ".tsv")


def _first_line(exc: BaseException) -> str:
    """The first line of Spark's error (its Java stack follows)."""
    return (str(exc).strip().splitlines() or [""])[0][:200]


def require_pyspark() -> None:
    """Raise the one-sentence ParameterError when pyspark is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ParameterError(PYSPARK_MISSING, name="engine") from None


def spark_session(params: PersonaParams):
    """The active SparkSession, or a new one on ``params.spark_master``; its zone set to UTC."""
    require_pyspark()
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        master = params.spark_master.strip()
        builder = (
            SparkSession.builder.master(master)
            .appName("personas")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")  # the run prints its own progress
        )
        if master.startswith("local"):  # the workers run this Python, with its packages
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # in local mode the driver's JVM holds the tasks too: its 1 GB default is too small
            # for the shuffle and the feature table of a million users
            builder = builder.config("spark.driver.memory", LOCAL_DRIVER_MEMORY)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # pyspark raises its own kinds; Java missing is the usual one
            raise ParameterError(
                f"parameter spark_master={master!r}: Spark did not start "
                f"({_first_line(exc)}); it needs "
                "Java 17 or later (Debian: apt-get install default-jre-headless) and a "
                "reachable master",
                name="spark_master",
            ) from None
        spark.sparkContext.setLogLevel("ERROR")  # the run reports its own progress
        if not master.startswith("local"):
            ship_package(spark)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


def ship_package(spark) -> None:
    """Add this package, zipped, to the session: the executors import the driver's code."""
    package = Path(__file__).resolve().parents[1]
    folder = Path(tempfile.mkdtemp(prefix="personas-spark-"))
    target = folder / "personas.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, Path("personas") / path.relative_to(package))
    spark.sparkContext.addPyFile(str(target))


def read_events(spark, params: PersonaParams) -> tuple[Any, str, Any]:
    """The log as a Spark DataFrame, a description of it, and the bundled sample's planted
    personas (None otherwise).

    ``events_table`` is read from the catalog; ``events_path`` as CSV (header row, types
    inferred) when its name ends like one, else as Parquet (a file, a folder or a glob), so
    paths of object stores (s3a://, abfss://, dbfs:/) need no local look.
    """
    from pyspark.errors import AnalysisException

    if params.events_table.strip():
        name = params.events_table.strip()
        try:
            return spark.table(name), name, None
        except AnalysisException as exc:
            raise InputError(
                f"events table {name!r} cannot be read from the Spark catalog "
                f"({_first_line(exc)}); "
                "check events_table",
                path=name,
            ) from None
    if not params.events_path:
        from ..sample import make_events

        frame, planted = make_events(
            params.sample_users, params.sample_seed, period=params.sample_period
        )
        year = f", year {params.sample_period}" if params.sample_period > 1 else ""
        described = (
            f"bundled synthetic sample ({params.sample_users} users, seed "
            f"{params.sample_seed}{year})"
        )
        return spark.createDataFrame(frame), described, planted
    path = params.events_path
    local = "://" not in path and not path.startswith("dbfs:")
    if local and not any(c in path for c in "*?[") and not Path(path).exists():
        raise InputError(f"events file {path!r} does not exist; check events_path", path=path)
    try:
        if path.lower().endswith(CSV_SUFFIXES):
            frame = _read_csv(spark, path, params)
        else:
            frame = _read_parquet(spark, path, params.time_col)
    except AnalysisException as exc:
        raise InputError(
            f"events file {path!r} cannot be read by Spark ({_first_line(exc)}); give a CSV "
            "with a "
            "header row, or Parquet",
            path=path,
        ) from None
    return frame, path, None


def _read_csv(spark, path: str, params: PersonaParams):
    """CSV read by Spark: a header row, quotes inside a quoted value doubled (RFC 4180), the
    types inferred, as DuckDB reads it; but the columns the load reads as text (ids, names) read
    as the text they are, so that an id like 00042 keeps its zeros as DuckDB's sniffer keeps them
    (Spark's inference would make it the number 42)."""
    from pyspark.sql.types import StringType, StructField, StructType

    options = {"header": True, "escape": '"'}
    inferred = spark.read.csv(path, inferSchema=True, **options).schema
    text = {params.user_col, params.event_col, params.session_col, *TEXT_COLUMNS}
    schema = StructType(
        [StructField(f.name, StringType(), True) if f.name in text else f for f in inferred.fields]
    )
    return spark.read.csv(path, schema=schema, **options)


def _read_parquet(spark, path: str, time_col: str):
    """Parquet read by Spark; times in nanoseconds (pandas writes them so) read as well.

    Spark has no nanosecond timestamps: it refuses such a file unless told to read them as
    integers, which it is then (the session's ``spark.sql.legacy.parquet.nanosAsLong``), and the
    time column is turned back into a time, to the microsecond, as DuckDB reads it.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    nanos = _local_nanos(path, time_col)
    if nanos is None:  # not a local file or folder: Spark's read says
        try:
            frame = spark.read.parquet(path)
            frame.limit(1).collect()
            return frame
        except Exception as exc:  # pyspark raises its own kinds, at the read or the first rows
            if "TIMESTAMP(NANOS" not in str(exc):
                raise
    elif not nanos:
        return spark.read.parquet(path)
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    frame = spark.read.parquet(path)
    if time_col in frame.columns and isinstance(frame.schema[time_col].dataType, LongType):
        micros = F.expr(f"timestamp_micros(div({quote_spark(time_col)}, 1000))")
        frame = frame.withColumn(time_col, micros)
    return frame


def _local_nanos(path: str, time_col: str) -> bool | None:
    """Whether the local Parquet file or folder ``path`` holds times in nanoseconds (read off
    its footers, without Spark); None when it is no local file or folder or cannot be read."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if "://" in path or path.startswith("dbfs:") or not Path(path).exists():
        return None
    try:
        schema = ds.dataset(path, format="parquet").schema
    except (OSError, pa.ArrowException):
        return None
    return any(pa.types.is_timestamp(f.type) and f.type.unit == "ns" for f in schema)


def quote_spark(name: str) -> str:
    """A column name quoted for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"
