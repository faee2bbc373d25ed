"""How a CSV export was written, for DuckDB's ``read_csv``: encoding, decimal mark, line endings.

DuckDB's own sniffer finds the delimiter, the quoting, the header and the column types, and
reads a byte-order mark, Windows line endings and quoted fields with line breaks in them as they
are. Three things people's exports do it does not guess, and :func:`sniff` and
:func:`fallback` settle them, each with one of DuckDB's ``read_csv`` options
(:class:`CsvDialect`):

* text that is not UTF-8: Windows and older spreadsheets write Latin-1 / cp1252. The first
  :data:`HEAD_BYTES` are checked; a file whose first bad byte comes later fails its read and is
  read again (:func:`fallback`). Valid UTF-8 is never read as Latin-1. DuckDB reads Latin-1
  itself but refuses the bytes 0x80-0x9F, where cp1252 has the euro sign, curly quotes and
  dashes: a file holding them is copied as UTF-8 to a temporary folder (removed when Python
  exits) and that copy is read.
* a decimal comma (``12,50``) next to ``;`` as separator, as European spreadsheets export.
* mixed line endings (a header ending in ``\\r\\n`` over rows ending in ``\\n``, or the
  reverse), which DuckDB's strict parser refuses: read with ``strict_mode=false``, but only after
  the strict read failed and the file does mix them.
"""

from __future__ import annotations

import atexit
import codecs
import gzip
import io
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from ..sql import quote_literal

HEAD_BYTES = 1 << 20  # bytes of the (decompressed) file checked for UTF-8
SAMPLE_ROWS = 20480  # rows DuckDB reads to guess the column types
CHUNK_BYTES = 1 << 22  # read size when scanning a whole file for its line endings
NUMERIC_PREFIXES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "U",
)


@dataclass(frozen=True)
class CsvDialect:
    """The ``read_csv`` options a CSV export needs beyond DuckDB's own sniffing."""

    encoding: str = "utf-8"  # or "latin-1", or "cp1252" (read from a UTF-8 copy)
    decimal_comma: bool = False  # numbers are written 12,50
    lenient: bool = False  # strict_mode=false: the file mixes \r\n and \n line endings
    copy: str = ""  # the UTF-8 copy of a cp1252 file, read in its place

    def options(self) -> str:
        """The options, as SQL for ``read_csv(path, <options>)``."""
        options = ["header=true", f"sample_size={SAMPLE_ROWS}"]
        if self.encoding == "latin-1":
            options.append(f"encoding={quote_literal(self.encoding)}")
        if self.decimal_comma:
            options.append("decimal_separator=','")
        if self.lenient:
            options.append("strict_mode=false")
        return ", ".join(options)

    def call(self, path: str) -> str:
        """The DuckDB table function call reading ``path`` this way."""
        return f"read_csv({quote_literal(self.copy or path)}, {self.options()})"

    def describe(self) -> str:
        """What was read differently from plain UTF-8 CSV, in words ('' for nothing)."""
        return ", ".join(
            text
            for flag, text in (
                (self.encoding != "utf-8", f"{self.encoding} text"),
                (self.decimal_comma, "decimal comma"),
                (self.lenient, "mixed line endings"),
            )
            if flag
        )


def _open(path: str):
    """The file, decompressed when it is gzip."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_head(path: str, size: int | None = None) -> bytes:
    """The first ``size`` (:data:`HEAD_BYTES`) bytes of the (decompressed) file; b'' when it
    cannot be read."""
    try:
        with _open(path) as fh:
            return fh.read(size or HEAD_BYTES)
    except (OSError, EOFError):
        return b""


def is_utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 text (it may end in the middle of a character: it is a head)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def file_mixes_line_endings(path: str) -> bool:
    """Whether the file has both ``\\r\\n`` and a bare ``\\n`` line ending (a bare ``\\n`` may
    also be a line break inside a quoted field: then a lenient read is still right). Scans
    until both are seen, so only a file that does not mix them is read to its end."""
    crlf = bare = False
    last = b""
    try:
        with _open(path) as fh:
            while chunk := fh.read(CHUNK_BYTES):
                data = last + chunk
                crlf = crlf or b"\r\n" in data
                bare = bare or re.search(rb"(?:^|[^\r])\n", data) is not None
                if crlf and bare:
                    return True
                last = data[-1:]
    except (OSError, EOFError):
        return False
    return False


def _numeric_columns(
    con: duckdb.DuckDBPyConnection, path: str, dialect: CsvDialect
) -> tuple[str, int] | None:
    """The delimiter DuckDB's sniffer finds read this way and how many columns it types as
    numbers; None when it cannot sniff the file."""
    try:
        delimiter, columns = con.execute(
            f"SELECT Delimiter, Columns FROM sniff_csv({quote_literal(dialect.copy or path)}, "
            f"{dialect.options()})"
        ).fetchone()
    except duckdb.Error:
        return None
    return delimiter, sum(column["type"].startswith(NUMERIC_PREFIXES) for column in columns)


def uses_decimal_comma(con: duckdb.DuckDBPyConnection, path: str, dialect: CsvDialect) -> bool:
    """Whether the file writes numbers with a decimal comma (``12,50``): its delimiter is not a
    comma, and read with ``decimal_separator=','`` DuckDB types more columns as numbers than
    without. Two sniffs of :data:`SAMPLE_ROWS` rows, for files not separated by commas only."""
    plain = _numeric_columns(con, path, dialect)
    if plain is None or plain[0] == ",":
        return False
    comma = _numeric_columns(con, path, replace(dialect, decimal_comma=True))
    return comma is not None and comma[1] > plain[1]


def utf8_copy(path: str) -> str:
    """A UTF-8 copy of the cp1252 file at ``path`` (decompressed), in a temporary folder that
    is removed when Python exits; its path. The five bytes cp1252 leaves undefined become U+FFFD."""
    folder = tempfile.mkdtemp(prefix="personas-csv-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    copy = str(Path(folder) / "events.csv")
    with _open(path) as source, open(copy, "w", encoding="utf-8", newline="") as target:
        text = io.TextIOWrapper(source, encoding="cp1252", errors="replace", newline="")
        shutil.copyfileobj(text, target, CHUNK_BYTES)
    return copy


def _single_byte(path: str, cp1252: bool) -> CsvDialect:
    """Read as Latin-1 by DuckDB, or as cp1252 from a UTF-8 copy."""
    return (
        CsvDialect(encoding="cp1252", copy=utf8_copy(path))
        if cp1252
        else CsvDialect(encoding="latin-1")
    )


def sniff(con: duckdb.DuckDBPyConnection, path: str) -> CsvDialect:
    """The dialect to read the CSV at ``path`` with first: UTF-8 when its head is UTF-8, else
    Latin-1, or cp1252 when the head holds bytes 0x80-0x9F; and the decimal comma when
    :func:`uses_decimal_comma` finds one."""
    head = read_head(path)
    dialect = (
        CsvDialect()
        if is_utf8(head)
        else _single_byte(path, re.search(rb"[\x80-\x9f]", head) is not None)
    )
    return replace(dialect, decimal_comma=uses_decimal_comma(con, path, dialect))


def fallback(
    con: duckdb.DuckDBPyConnection, path: str, dialect: CsvDialect, error: str
) -> CsvDialect | None:
    """The dialect to read the file with after reading it with ``dialect`` failed with
    ``error`` (DuckDB's message), or None when another read would fail the same way: Latin-1
    after invalid UTF-8 past the head, cp1252 after bytes Latin-1 refuses; ``strict_mode=false``
    after another error, when the file mixes line endings. The decimal comma is looked for
    again (the first sniff may have failed)."""
    if dialect.encoding == "utf-8" and "Invalid unicode" in error:
        dialect = replace(dialect, encoding="latin-1")
    elif dialect.encoding == "latin-1" and "not latin-1 encoded" in error:
        dialect = replace(_single_byte(path, True), lenient=dialect.lenient)
    elif not dialect.lenient and file_mixes_line_endings(path):
        dialect = replace(dialect, lenient=True)
    else:
        return None
    return (
        dialect
        if dialect.decimal_comma
        else replace(dialect, decimal_comma=uses_decimal_comma(con, path, dialect))
    )
