"""Event logs as people export them (issue 24, parts 4 and 5): byte-order marks, ``;`` with a
decimal comma, Windows and mixed line endings, Latin-1 / cp1252 text, quoted line breaks,
folders of Parquet with one bad file, and edges (a bot among users, 10,000 event names, awkward
ids, a single day).

Each file is small and written to tmp_path; everything goes through
:func:`personas.load.load_events` as a run does, or through the CLI for the error contract.
Only the ``slow`` tests fit UMAP.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from personas import pipeline
from personas.cli import EXIT_USAGE, main
from personas.errors import InputError
from personas.load import load_events, sniff
from personas.params import PersonaParams

ROWS = [
    ("u1", "2024-05-01 10:00:00", "page_view", ""),
    ("u1", "2024-05-01 10:05:00", "purchase", "12.5"),
    ("u2", "2024-05-02 08:00:00", "page_view", ""),
]
HEADER = ("user_id", "timestamp", "event", "amount")


def _text(rows=ROWS, sep: str = ",", header=HEADER) -> list[str]:
    return [sep.join(header)] + [sep.join(row) for row in rows]


def _write(tmp_path, data: bytes, name: str = "events.csv") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _load(path: str, **params):
    return load_events(PersonaParams(events_path=path, **params))


def _rows(log) -> list[tuple]:
    return log.con.execute("SELECT user_id, event, amount FROM events ORDER BY ALL").fetchall()


def _check(log, users=("u1", "u2")) -> None:
    """The three rows of ROWS came back as pandas reads them."""
    assert log.counts["users"] == 2 and log.counts["events"] == 3
    assert log.columns[:4] == list(HEADER)
    a, b = sorted(users)
    assert _rows(log) == [(a, "page_view", None), (a, "purchase", 12.5), (b, "page_view", None)]


# -- 1. byte-order mark ------------------------------------------------------------------------
def test_utf8_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = _write(tmp_path, ("\ufeff" + "\n".join(_text()) + "\n").encode("utf-8"))
    log = _load(path)
    assert log.columns[0] == "user_id"
    _check(log)
    assert pd.read_csv(path, encoding="utf-8-sig").columns[0] == log.columns[0]


# -- 2. ';' with a decimal comma ----------------------------------------------------------------
def test_semicolon_and_decimal_comma(tmp_path):
    rows = [
        ("u1", "2024-05-01 10:00:00", "page_view", ""),
        ("u1", "2024-05-01 10:05:00", "purchase", "12,50"),
        ("u2", "2024-05-02 08:00:00", "purchase", "3,75"),
    ]
    path = _write(tmp_path, ("\n".join(_text(rows, ";")) + "\n").encode())
    log = _load(path)
    assert log.read_as == "decimal comma"
    assert log.columns == list(HEADER)
    assert _rows(log) == [
        ("u1", "page_view", None),
        ("u1", "purchase", 12.5),
        ("u2", "purchase", 3.75),
    ]
    assert pd.read_csv(path, sep=";", decimal=",")["amount"].tolist()[1:] == [12.5, 3.75]


def test_excel_export_bom_semicolon_crlf_and_decimal_comma(tmp_path):
    rows = [
        ("u1", "2024-05-01 10:00:00", "page_view", ""),
        ("u1", "2024-05-01 10:05:00", "purchase", "12,50"),
        ("u2", "2024-05-02 08:00:00", "page_view", ""),
    ]
    path = _write(tmp_path, ("\ufeff" + "\r\n".join(_text(rows, ";")) + "\r\n").encode())
    _check(_load(path))


def test_semicolon_with_decimal_points_is_left_alone(tmp_path):
    path = _write(tmp_path, ("\n".join(_text(sep=";")) + "\n").encode())
    log = _load(path)
    assert log.read_as == ""
    _check(log)


def test_thousands_separators_with_a_decimal_comma_are_refused_with_the_fix(tmp_path):
    rows = [
        ("u1", "2024-05-01 10:05:00", "purchase", "1.234,50"),
        ("u2", "2024-05-02 08:00:00", "purchase", "3,75"),
    ]
    path = _write(tmp_path, ("\n".join(_text(rows, ";")) + "\n").encode())
    with pytest.raises(
        InputError,
        match=r"values in amount column 'amount' are not numbers "
        r"\(e\.g\. '.*'\); remove currency signs and thousands "
        r"separators",
    ):
        _load(path)


# -- 3. line endings ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header_end", "row_end"),
    [("\r\n", "\r\n"), ("\r\n", "\n"), ("\n", "\r\n")],
    ids=["windows", "crlf-header-lf-rows", "lf-header-crlf-rows"],
)
def test_windows_and_mixed_line_endings(tmp_path, header_end, row_end):
    header, *rows = _text()
    path = _write(tmp_path, (header + header_end + row_end.join(rows) + row_end).encode())
    log = _load(path)
    _check(log)
    assert log.read_as == ("" if header_end == row_end else "mixed line endings")


@pytest.mark.parametrize("first, later", [("\n", "\r\n"), ("\r\n", "\n")])
def test_line_endings_that_change_past_the_sniffed_rows(tmp_path, first, later):
    n = 25_000  # more rows than DuckDB samples: the strict read fails late, the file is read again
    times = pd.Timestamp("2024-05-01") + pd.to_timedelta(np.arange(n), unit="s")
    rows = [f"u{i % 100},{t},page_view,{i % 7}.5" for i, t in enumerate(times)]
    text = (
        ",".join(HEADER) + first + first.join(rows[: n - 10]) + first + later.join(rows[n - 10 :])
    )
    log = _load(_write(tmp_path, (text + later).encode()))
    assert log.read_as == "mixed line endings"
    assert log.counts["events"] == n and log.counts["users"] == 100
    assert log.con.execute("SELECT sum(amount) FROM events").fetchone()[0] == pytest.approx(
        sum(i % 7 + 0.5 for i in range(n))
    )


def test_csv_without_mixed_line_endings_still_fails_on_a_bad_value(tmp_path):
    n = 25_000
    rows = [f"u{i % 50},2024-05-01 10:00:00,page_view,1.5" for i in range(n)] + [
        "u1,2024-05-01 10:00:00,page_view,abc"
    ]
    with pytest.raises(InputError, match=r"cannot be read to the end \(.*abc"):
        _load(_write(tmp_path, ("\n".join([",".join(HEADER)] + rows) + "\n").encode()))


# -- 4. Latin-1 / cp1252 -----------------------------------------------------------------------
LATIN_ROWS = [
    ("René", "2024-05-01 10:00:00", "page_view", ""),
    ("René", "2024-05-01 10:05:00", "achat_réussi", "12.5"),
    ("Jürgen", "2024-05-02 08:00:00", "page_view", ""),
]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-8"])
def test_latin1_text_is_read_as_latin1_and_utf8_as_utf8(tmp_path, encoding):
    path = _write(tmp_path, ("\n".join(_text(LATIN_ROWS)) + "\n").encode(encoding))
    log = _load(path)
    assert log.read_as == ("" if encoding == "utf-8" else "latin-1 text")
    assert _rows(log) == [
        ("Jürgen", "page_view", None),
        ("René", "achat_réussi", 12.5),
        ("René", "page_view", None),
    ]
    assert log.event_counts == {"page_view": 2, "achat_réussi": 1}
    assert sorted(pd.read_csv(path, encoding=encoding)["user_id"].unique()) == ["Jürgen", "René"]


def test_cp1252_letters_latin1_does_not_have(tmp_path):
    rows = [
        ("Zoë", "2024-05-01 10:00:00", "Käse – 5€ ‘bio’", "12.5"),
        ("Œuvre", "2024-05-02 08:00:00", "page_view", ""),
    ]
    path = _write(tmp_path, ("\r\n".join(_text(rows, ";")) + "\r\n").encode("cp1252"))
    log = _load(path)
    assert log.read_as == "cp1252 text"
    assert _rows(log) == [("Zoë", "Käse – 5€ ‘bio’", 12.5), ("Œuvre", "page_view", None)]


@pytest.mark.parametrize(
    "encoding, read_as", [("latin-1", "latin-1 text"), ("cp1252", "cp1252 text")]
)
def test_latin1_bytes_past_the_sniffed_rows(tmp_path, encoding, read_as):
    n = 25_000
    times = pd.Timestamp("2024-05-01") + pd.to_timedelta(np.arange(n), unit="s")
    rows = [f"u{i % 100},{t},page_view,1" for i, t in enumerate(times)]
    last = (
        "Jürgen,2024-05-02 10:00:00,vue – 5€,2"
        if encoding == "cp1252"
        else "Jürgen,2024-05-02 10:00:00,vue,2"
    )
    text = "\n".join([",".join(HEADER)] + rows + [last]) + "\n"
    path = _write(tmp_path, gzip.compress(text.encode(encoding)), "events.csv.gz")
    log = _load(path)
    assert log.read_as == read_as
    assert log.counts["users"] == 101 and log.counts["events"] == n + 1
    assert log.con.execute(
        "SELECT event, amount FROM events WHERE user_id = 'Jürgen'"
    ).fetchall() == [(last.split(",")[2], 2.0)]


def test_utf8_head_check_allows_a_character_cut_at_the_end():
    assert sniff.is_utf8("aé".encode()[:-1])
    assert not sniff.is_utf8("aé".encode("latin-1") + b"b")


# -- 5. quoted fields with line breaks ---------------------------------------------------------
def test_quoted_fields_with_line_breaks_commas_and_quotes(tmp_path):
    text = (
        "user_id,timestamp,event,amount,note\r\n"
        'u1,2024-05-01 10:00:00,page_view,,"first line\nsecond line"\r\n'
        'u1,2024-05-01 10:05:00,purchase,12.5,"a, b and ""c"""\r\n'
        '"u2",2024-05-02 08:00:00,"page_view",,"x\r\ny"\r\n'
    )
    path = _write(tmp_path, text.encode())
    log = _load(path)
    _check(log)
    assert log.counts["rows_read"] == 3
    assert pd.read_csv(path)["note"].tolist() == [
        "first line\nsecond line",
        'a, b and "c"',
        "x\r\ny",
    ]


# -- 6. a folder of Parquet with one bad file --------------------------------------------------
def _parts(tmp_path, bad=None, name: str = "c.parquet") -> str:
    """A folder of three Parquet files (a, b and the one ``bad`` writes, or a good one)."""
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i % 5}" for i in range(30)],
            "timestamp": pd.date_range("2024-05-01", periods=30, freq="h"),
            "event": ["page_view", "purchase"] * 15,
            "amount": [None, 12.5] * 15,
        }
    )
    frame.iloc[:10].to_parquet(folder / "a.parquet", index=False)
    frame.iloc[10:20].to_parquet(folder / "b.parquet", index=False)
    if bad is None:
        frame.iloc[20:].to_parquet(folder / name, index=False)
    else:
        bad(folder / name, frame.iloc[20:].reset_index(drop=True), folder)
    return str(folder)


def _corrupt_pages(path, frame, folder):
    """A Parquet file whose footer reads but whose data pages do not (1,000 rows of ``frame``'s
    columns, uncompressed, bytes 200 to 2,000 scrambled)."""
    rows = frame.sample(1000, replace=True, random_state=0).reset_index(drop=True)
    rows["user_id"] = [f"p{i}" for i in range(1000)]
    rows.to_parquet(path, index=False, compression=None)
    data = bytearray(path.read_bytes())
    for i in range(200, 2000):
        data[i] = (data[i] * 7 + 13) % 256
    path.write_bytes(bytes(data))


BAD_PARTS = {
    "garbage": (
        lambda p, f, d: p.write_bytes(b"\x00garbage" * 50),
        r"is not a readable Parquet file \(.*No magic bytes",
    ),
    "truncated": (
        lambda p, f, d: p.write_bytes((d / "a.parquet").read_bytes()[:-30]),
        r"is not a readable Parquet file",
    ),
    "corrupt pages": (_corrupt_pages, r"cannot be read \("),
    "no user column": (
        lambda p, f, d: f.rename(columns={"user_id": "uid"}).to_parquet(p),
        r"has no 'user_id' column, unlike 2 other files",
    ),
    "no event column": (
        lambda p, f, d: f.drop(columns="event").to_parquet(p),
        r"has no 'event' column, unlike 2 other files",
    ),
    "amount as text": (
        lambda p, f, d: f.assign(amount=f["amount"].astype(str)).to_parquet(p),
        r"holds text in column 'amount', where 2 other files hold numbers",
    ),
    "times as numbers": (
        lambda p, f, d: f.assign(timestamp=1714557600).to_parquet(p),
        r"holds numbers in column 'timestamp', where 2 other files hold "
        r"times",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PARTS))
def test_folder_of_parquet_with_one_bad_file_names_it(tmp_path, case):
    bad, message = BAD_PARTS[case]
    folder = _parts(tmp_path, bad)
    part = f"{folder}/c.parquet"
    with pytest.raises(
        InputError,
        match=rf"^events file '{part}' \(one of the Parquet files of "
        rf"'{folder}'\) {message}.*; remove it or export it "
        r"again like the others$",
    ) as info:
        _load(folder)
    assert info.value.path == part


def test_glob_of_parquet_with_one_bad_file_names_it(tmp_path):
    folder = _parts(tmp_path, BAD_PARTS["garbage"][0])
    with pytest.raises(
        InputError,
        match=r"events file '.*/parts/c\.parquet' \(one of the "
        r"Parquet files of '.*/parts/\*\.parquet'\)",
    ):
        _load(f"{folder}/*.parquet")


def test_single_parquet_file_with_corrupt_pages(tmp_path):
    path = tmp_path / "one.parquet"
    _corrupt_pages(
        path,
        pd.DataFrame(
            {
                "user_id": ["u1"] * 400,
                "timestamp": pd.date_range("2024-05-01", periods=400, freq="min"),
                "event": "page_view",
                "amount": 1.5,
            }
        ),
        tmp_path,
    )
    # the first rows already fail here ("parsed as a table"); pages further in fail in a later
    # pass ("cannot be read (...); export it again"): one sentence naming the file either way
    with pytest.raises(
        InputError,
        match=rf"^events file '{path}' cannot be (parsed as a table|"
        r"read) \(Out of buffer\); export",
    ):
        _load(str(path))


def test_folder_of_parquet_whose_files_differ_harmlessly_loads(tmp_path):
    def harmless(path, frame, folder):  # no amount column, and whole numbers elsewhere
        frame.drop(columns="amount").to_parquet(path, index=False)
        pd.read_parquet(folder / "b.parquet").assign(
            amount=lambda f: f["amount"].fillna(0).astype("int64")
        ).to_parquet(folder / "b.parquet", index=False)

    log = _load(_parts(tmp_path, harmless))
    assert log.counts["rows_read"] == 30 and log.counts["users"] == 5
    assert log.con.execute("SELECT count(amount), sum(amount) FROM events").fetchone() == (
        15,
        5 * 12.5 + 5 * 12,
    )


def test_bad_parquet_file_in_a_folder_is_exit_2_with_one_line(tmp_path, capsys):
    folder = _parts(tmp_path, BAD_PARTS["corrupt pages"][0])
    out = tmp_path / "run"
    code = main(["run", "--no-notebooks", "-q", "--out", str(out), "--events", folder])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE == 2
    assert captured.err.splitlines() == [
        f"personas: error: events file '{folder}/c.parquet' (one of the Parquet files of "
        f"'{folder}') cannot be read (Out of buffer); remove it or export it again like the "
        "others"
    ]
    assert not out.exists() and not (tmp_path / ".run.partial").exists()


# -- 7. edges ----------------------------------------------------------------------------------
def _sample_frame(tmp_path, n_users: int = 2000) -> pd.DataFrame:
    from personas.sample import write_sample

    events, _ = write_sample(tmp_path / "shop.csv", n_users=n_users, seed=3)
    return pd.read_csv(events)


def _fast_run(tmp_path, path: str):
    return pipeline.run(
        PersonaParams(
            events_path=path, output_dir=str(tmp_path / "run"), n_fits=1, sample_size=2001
        ),
        progress=False,
    )


@pytest.mark.slow
def test_a_bot_with_300k_events_among_2k_users_is_no_persona_of_one(tmp_path):
    frame = _sample_frame(tmp_path)
    n = 300_000
    start = pd.Timestamp(frame["timestamp"].min())
    seconds = np.sort(np.random.default_rng(0).integers(0, 60 * 86400, n))
    bot = pd.DataFrame(
        {
            "user_id": "bot-1",
            "event": "page_view",
            "timestamp": (start + pd.to_timedelta(seconds, unit="s")).astype(str),
        }
    )
    path = tmp_path / "bot.csv"
    pd.concat([frame, bot]).to_csv(path, index=False)
    result = _fast_run(tmp_path, str(path))
    sizes = [p.size for p in result.profiles]
    assert min(sizes) >= 20 and sum(sizes) == 2001
    assignments = pd.read_parquet(tmp_path / "run" / "assignments.parquet")
    assert len(assignments) == 2001
    assert (assignments["user_id"] == "bot-1").sum() == 1


def test_ten_thousand_event_names(tmp_path):
    n = 20_000
    names = [f"evt_{i % 10_000}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i % 300}" for i in range(n)],
            "timestamp": "2024-05-01 10:00:00",
            "event": names,
        }
    )
    frame["timestamp"] = pd.Timestamp("2024-05-01") + pd.to_timedelta(np.arange(n), unit="min")
    path = tmp_path / "names.csv"
    frame.to_csv(path, index=False)
    log = _load(str(path))
    assert len(log.event_counts) == 10_000 and set(log.event_counts.values()) == {2}
    assert log.roles == {"other"} and log.counts["users"] == 300


AWKWARD_IDS = ["x" * 190 + '"q";,1;🙂é', "comma,id", 'semi;"quoted"', "🙂🙃", " padded "]


def test_long_ids_with_quotes_commas_semicolons_and_emoji(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": [u for u in AWKWARD_IDS for _ in range(3)],
            "timestamp": [f"2024-05-0{d} 10:00:00" for _ in AWKWARD_IDS for d in (1, 2, 3)],
            "event": "page_view",
        }
    )
    for sep in (",", ";"):
        path = tmp_path / f"ids{sep == ';'}.csv"
        frame.to_csv(path, index=False, sep=sep)
        log = _load(str(path))
        assert sorted(
            u for (u,) in log.con.execute("SELECT DISTINCT user_id FROM events").fetchall()
        ) == sorted(AWKWARD_IDS)
        assert log.counts["events"] == 15
        assert sorted(pd.read_csv(path, sep=sep)["user_id"].unique()) == sorted(AWKWARD_IDS)


@pytest.mark.slow
@pytest.mark.parametrize("edge", ["awkward ids", "one day"])
def test_awkward_ids_and_a_single_day_give_a_full_run(tmp_path, edge):
    frame = _sample_frame(tmp_path)
    if edge == "awkward ids":
        ids = {u: "x" * 180 + f'"q";,{i};🙂é' for i, u in enumerate(frame["user_id"].unique())}
        frame["user_id"] = frame["user_id"].map(ids)
    else:
        times = pd.to_datetime(frame["timestamp"])
        frame["timestamp"] = (pd.Timestamp("2024-05-01") + (times - times.dt.normalize())).astype(
            str
        )
    path = tmp_path / "edge.csv"
    frame.to_csv(path, index=False)
    result = _fast_run(tmp_path, str(path))
    assert 4 <= len(result.profiles) <= 8
    assignments = pd.read_parquet(tmp_path / "run" / "assignments.parquet")
    assert sorted(assignments["user_id"]) == sorted(frame["user_id"].unique())
