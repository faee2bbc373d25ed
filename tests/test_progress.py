"""Progress inside the long steps: one line per finished stage, live on a terminal."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest

from personas.cli import _Lines, main
from personas.progress import CLEAR, Progress, as_progress

SECONDS = r"\(\d+\.\d s\)"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_finished_stage_prints_one_line_with_its_time():
    out = io.StringIO()
    progress = Progress(out)
    assert not progress.live
    with progress.stage("load", "reading rows") as stage:
        stage.done("1,000 rows read")
    with progress.stage("features", "computing features"):
        pass
    progress.line("[1/3] features done")
    lines = out.getvalue().splitlines()
    assert re.fullmatch(rf"  load: 1,000 rows read {SECONDS}", lines[0])
    assert re.fullmatch(rf"  features: computing features {SECONDS}", lines[1])
    assert lines[2:] == ["[1/3] features done"]
    assert "\r" not in out.getvalue()


def test_a_failed_stage_prints_nothing_and_quiet_prints_nothing():
    out = io.StringIO()
    with pytest.raises(ValueError, match="bad"):
        with Progress(out).stage("load", "reading rows"):
            raise ValueError("bad")
    quiet = Progress(out, quiet=True, live=True)
    assert not quiet.live
    with quiet.stage("load", "reading rows") as stage:
        stage.done("1,000 rows read")
    quiet.line("a line")
    with quiet.waiting("[1/3] 01_features"):
        pass
    assert out.getvalue() == ""


def test_on_a_terminal_the_running_stage_is_redrawn_in_place_then_replaced():
    out = Terminal()
    progress = Progress(out, interval=0.01)
    assert progress.live
    with progress.stage("load", "reading rows", poll=lambda: 42.0) as stage:
        time.sleep(0.1)
        stage.done("1,000 rows read")
    text = out.getvalue()
    draws = re.findall(re.escape(CLEAR) + r"  load: reading rows \.\.\. 42% \(\d+ s\)", text)
    assert len(draws) >= 3  # the ticker redraws it while the stage runs
    assert re.search(re.escape(CLEAR) + rf"  load: 1,000 rows read {SECONDS}\n$", text)


def test_lines_printed_while_waiting_go_above_the_live_line():
    out = Terminal()
    progress = Progress(out, interval=10)
    with progress.waiting("[1/3] 01_features"):
        progress.line("  load: 1,000 rows read (0.1 s)")
    # drawn, cleared for the line, drawn again below it, cleared at the end
    assert out.getvalue() == (
        f"{CLEAR}[1/3] 01_features ... (0 s)"
        f"{CLEAR}  load: 1,000 rows read (0.1 s)\n"
        f"{CLEAR}[1/3] 01_features ... (0 s){CLEAR}"
    )


def test_a_failed_stage_on_a_terminal_leaves_a_clean_line():
    out = Terminal()
    with pytest.raises(KeyboardInterrupt):
        with Progress(out, interval=10).stage("personas", "fitting"):
            raise KeyboardInterrupt
    assert out.getvalue().endswith(CLEAR)
    assert not [t for t in threading.enumerate() if t.name == "personas-progress"]


def test_a_steps_progress_argument():
    mine = Progress(io.StringIO())
    assert as_progress(mine) is mine
    assert as_progress(False).quiet
    assert not as_progress(None).quiet and not as_progress(True).quiet


def test_the_notebooks_printed_lines_are_passed_on_whole():
    out = io.StringIO()
    lines = _Lines(Progress(out))
    for chunk in (
        "  load: 1,0",
        "00 rows read (0.1 s)\n  load: 10 users",
        " summed (0.2 s)\n",
        "unfinished",
    ):
        lines.write(chunk)
        lines.flush()
    assert out.getvalue() == "  load: 1,000 rows read (0.1 s)\n  load: 10 users summed (0.2 s)\n"
    lines.close()
    assert out.getvalue().endswith("\nunfinished\n")


@pytest.mark.slow
def test_personas_run_prints_each_stage_of_each_step(capsys, tmp_path):
    code = main(
        [
            "run",
            "--no-notebooks",
            "-p",
            "sample_users=400",
            "-p",
            "sample_size=400",
            "-p",
            "n_fits=1",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(tmp_path / "run" / "index.html")
    expected = [
        r"personas .*",
        r"\[1/3\] features \.\.\.",
        rf"  load: [\d,]+ rows read {SECONDS}",
        rf"  load: 400 users summed from [\d,]+ events {SECONDS}",
        rf"  features: \d+ columns for 400 users {SECONDS}",
        r"\[1/3\] features done in \d+\.\d s",
        r"\[2/3\] personas \.\.\.",
        rf"  personas: 1 fit on 400 users each: \d personas {SECONDS}",
        rf"  personas: 400 users assigned {SECONDS}",
        rf"  personas: 2-D map of 400 users {SECONDS}",
        r"\[2/3\] personas done in \d+\.\d s",
        r"\[3/3\] report \.\.\.",
        rf"  report: \d personas profiled and named {SECONDS}",
        rf"  report: forecast over 90 days {SECONDS}",
        rf"  report: index\.html, personas\.json/csv and assignments written {SECONDS}",
        r"\[3/3\] report done in \d+\.\d s",
        r"done in \d+\.\d s",
    ]
    lines = captured.err.splitlines()
    assert len(lines) == len(expected), captured.err
    for pattern, line in zip(expected, lines):
        assert re.fullmatch(pattern, line), (pattern, line)
