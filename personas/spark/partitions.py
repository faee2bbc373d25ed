"""What every Spark pass shares: a partition's rows in a DuckDB of its own, and the Spark and
Arrow types of the rows a partition gives back (the features, purchase and forecast passes)."""

from __future__ import annotations

from ..params import PersonaParams


def connect_partition(params: PersonaParams):
    """The partition's DuckDB: one thread, as a Spark task has one core."""
    from ..load import connect

    con = connect(params.memory_limit, params.temp_dir)
    con.execute("SET threads = 1")
    return con


def arrow_table(batches):
    """The partition's record batches as one Arrow table; None when there are none."""
    import pyarrow as pa

    batches = list(batches)
    return pa.Table.from_batches(batches) if batches else None


def ddl(fields: list[tuple[str, str]]) -> str:
    """The Spark schema of ``fields`` (name, Spark type) as ``mapInArrow`` takes it."""
    from .session import quote_spark

    return ", ".join(f"{quote_spark(name)} {kind}" for name, kind in fields)


def arrow_schema(fields: list[tuple[str, str]]):
    """The Arrow schema of ``fields`` (name, Spark type), as :func:`ddl` declares them."""
    import pyarrow as pa

    kinds = {
        "long": pa.int64(),
        "string": pa.string(),
        "array<string>": pa.list_(pa.string()),
        "array<long>": pa.list_(pa.int64()),
        "double": pa.float64(),
        "date": pa.date32(),
    }
    return pa.schema([(name, kinds[kind]) for name, kind in fields])


def on_partition(params: PersonaParams, batches, compute):
    """``compute(con, table)`` on the partition's rows in a DuckDB of its own; None without
    rows."""
    table = arrow_table(batches)
    if table is None:
        return None
    con = connect_partition(params)
    try:
        return compute(con, table)
    finally:
        con.close()
