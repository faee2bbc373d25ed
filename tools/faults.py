"""Faults a scheduled run meets, tried for real; the second part of docs/robustness.md.

    .venv/bin/python tools/faults.py            # ~15 min: the cases, then the soak
    .venv/bin/python tools/faults.py --soak 5   # a shorter soak

``tools/robustness.py`` calls :func:`run_all` and writes its sections into docs/robustness.md.
Every case runs ``personas run`` (the notebooks, as a scheduler runs them) as its own process on
a small bundled sample, into a folder that already holds a finished run, and records the exit
code, the error line and what is left on disk; then a clean run follows and must leave nothing
but the run folder. The soak runs 20 times in a row into one folder, each run killed at a random
moment or let finish, and checks after each that the published report is complete and byte for
byte one of the finished runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERSONAS = ROOT / ".venv" / "bin" / "personas"
SMALL = ("-p", "sample_users=1000", "-p", "sample_size=1000", "-p", "n_fits=2")
COMPLETE = (
    "index.html",
    "run.json",
    "personas.json",
    "personas.csv",
    "assignments.parquet",
    "assignments.csv",
    "features.parquet",
    "features.json",
    "model/model.json",
    "model/reference.parquet",
    "model/manifest.json",
    "model/map.parquet",
    "notebooks/01_features.ipynb",
    "notebooks/02_personas.ipynb",
    "notebooks/03_report.ipynb",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- looking at a folder ---------------------------------------------------------------------------


def digest(folder: Path) -> str:
    """One SHA-256 over every file's path and bytes under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def incomplete(run: Path) -> list[str]:
    """What a published run lacks ([] for a whole run)."""
    if not run.is_dir():
        return ["the run folder"]
    missing = [name for name in COMPLETE if not (run / name).is_file()]
    if not missing:
        try:
            json.loads((run / "run.json").read_text(encoding="utf-8"))
        except ValueError:
            missing.append("a readable run.json")
        if not (run / "index.html").read_text(encoding="utf-8").rstrip().endswith("</html>"):
            missing.append("the end of index.html")
    return missing


def left(folder: Path) -> list[str]:
    return sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())


def kernels() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "ipykernel_launcher"], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def spill_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("personas-duckdb-*")}


# -- one run, perhaps killed -----------------------------------------------------------------------


@dataclass
class Attempt:
    command: str
    exit_code: int
    stderr: str
    seconds: float
    killed_at: str = ""  # the last progress line before the kill


def start(out: Path, *extra: str, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PERSONAS_RUN_LOCK"}
    return subprocess.Popen(
        [str(PERSONAS), "run", "--out", str(out), *SMALL, *extra],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def run_until(
    out: Path,
    *extra: str,
    cwd: Path,
    kill_on: str | None = None,
    delay: float = 0.0,
    kill_after: float | None = None,
) -> Attempt:
    """``personas run`` into ``out``; SIGKILL ``delay`` seconds after the progress line holding
    ``kill_on`` (or ``kill_after`` seconds after the start), else let it finish."""
    began = time.perf_counter()
    process = start(out, *extra, cwd=cwd)
    lines: list[str] = []
    seen: list[float] = []  # when the kill_on line came
    reader = threading.Thread(
        target=_read_lines, args=(process.stderr, lines, kill_on, seen), daemon=True
    )
    reader.start()
    killed_at = ""
    while process.poll() is None:
        now = time.perf_counter()
        due = (seen and now - seen[0] >= delay) or (
            kill_after is not None and now - began >= kill_after
        )
        if due:
            killed_at = lines[-1].strip() if lines else "(before the first line)"
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    reader.join(timeout=5)
    process.stdout.read()
    command = " ".join(["personas", "run", "--out", out.name, *SMALL, *extra])
    return Attempt(
        command,
        process.returncode,
        "\n".join(lines),
        round(time.perf_counter() - began, 1),
        killed_at,
    )


def _read_lines(stream, lines: list[str], kill_on: str | None, seen: list[float]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))
        if kill_on is not None and not seen and kill_on in line:
            seen.append(time.perf_counter())


# -- the cases -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    title: str
    how: str
    attempt: Attempt
    previous_kept: bool | None  # the earlier run byte for byte (None: not asked)
    published: str  # what the run folder holds after
    left: list[str]  # what the output folder holds after
    after_next_run: list[str] = field(default_factory=list)  # after one clean run


def kill_case(tmp: Path, title: str, how: str, **kill) -> Outcome:
    folder = tmp / title.replace(" ", "-")
    folder.mkdir()
    out = folder / "run"
    first = run_until(out, cwd=folder)
    assert first.exit_code == 0, first.stderr
    before = digest(out)
    attempt = run_until(out, "-p", "title=killed", cwd=folder, **kill)
    kept = out.exists() and digest(out) == before
    published = (
        "the earlier run, byte for byte"
        if kept
        else ("a whole new run" if not incomplete(out) else f"INCOMPLETE: lacks {incomplete(out)}")
    )
    outcome = Outcome(title, how, attempt, kept, published, left(folder))
    clean = run_until(out, cwd=folder)
    assert clean.exit_code == 0, clean.stderr
    outcome.after_next_run = left(folder)
    return outcome


SELF_KILL = """
import os, signal, sys
from personas import runfolder
from personas.cli import main
swap = runfolder._exchange
def swap_and_die(a, b):
    swap(a, b)
    os.kill(os.getpid(), signal.SIGKILL)
runfolder._exchange = swap_and_die
sys.exit(main(sys.argv[1:]))
"""


def publish_case(tmp: Path) -> Outcome:
    """Killed at the one instant that matters most: right after the swap, before the old run is
    removed. (A process cannot be killed from outside at a chosen microsecond: it kills itself.)"""
    folder = tmp / "publish"
    folder.mkdir()
    out = folder / "run"
    assert run_until(out, cwd=folder).exit_code == 0
    before = digest(out)
    began = time.perf_counter()
    args = ["run", "--out", str(out), *SMALL, "-p", "title=killed"]
    done = subprocess.run(
        [sys.executable, "-c", SELF_KILL, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    attempt = Attempt(
        "personas " + " ".join(args[:2] + ["run"] + args[3:]),
        done.returncode,
        done.stderr.strip(),
        round(time.perf_counter() - began, 1),
        "the swap of the finished run into place",
    )
    attempt.command = " ".join(["personas", "run", "--out", "run", *SMALL, "-p", "title=killed"])
    kept = digest(out) == before
    title = json.loads((out / "run.json").read_text())["parameters"]["title"]
    published = (
        "the earlier run, byte for byte"
        if kept
        else f"a whole new run (title {title!r})"
        if not incomplete(out)
        else "INCOMPLETE"
    )
    outcome = Outcome(
        "killed while publishing",
        "kill -9 right after the swap, before the replaced run is removed",
        attempt,
        kept,
        published,
        left(folder),
    )
    assert run_until(out, cwd=folder).exit_code == 0
    outcome.after_next_run = left(folder)
    return outcome


def busy_case(tmp: Path) -> Outcome:
    folder = tmp / "busy"
    folder.mkdir()
    out = folder / "run"
    first = start(out, cwd=folder)
    while not (folder / ".run.lock").exists() and first.poll() is None:
        time.sleep(0.05)
    second = run_until(out, "-p", "title=second", cwd=folder)
    first.wait()
    outcome = Outcome(
        "two runs into one folder",
        "a second `personas run --out run` while the first is running",
        second,
        None,
        "the first run, whole" if not incomplete(out) else "INCOMPLETE",
        left(folder),
    )
    outcome.after_next_run = left(folder)
    return outcome


def model_case(tmp: Path) -> Outcome:
    """``personas assign`` with a model folder one number of which was edited after saving."""
    import shutil

    folder = tmp / "model"
    shutil.copytree(tmp / "busy" / "run" / "model", folder / "model")
    saved = folder / "model" / "model.json"
    saved.write_text(
        saved.read_text().replace('"scaler_mean": [\n    ', '"scaler_mean": [\n    1', 1)
    )
    from personas.sample import write_sample

    write_sample(folder / "new.csv", 200, seed=9)
    began = time.perf_counter()
    args = ["assign", "--model", "model", "--events", "new.csv", "--out", "scored.csv"]
    done = subprocess.run([str(PERSONAS), *args], cwd=folder, capture_output=True, text=True)
    attempt = Attempt(
        "personas " + " ".join(args),
        done.returncode,
        done.stderr.strip(),
        round(time.perf_counter() - began, 1),
    )
    return Outcome(
        "edited model folder",
        "`personas assign` with a run's `model/` folder, one "
        "number of whose `model.json` was changed after it was saved",
        attempt,
        None,
        "— (no run folder)",
        [n for n in left(folder) if n == "scored.csv"] or ["no scored.csv"],
    )


def full_disk_case(tmp: Path) -> Outcome | None:
    """The output folder on a 1 MB tmpfs (needs root; None elsewhere)."""
    disk = tmp / "disk"
    disk.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
        ).returncode
    ):
        return None
    try:
        out = disk / "run"
        out.mkdir()
        (out / "index.html").write_text("<html>the earlier good run</html>")
        before = digest(out)
        attempt = run_until(out, cwd=tmp)
        kept = digest(out) == before
        return Outcome(
            "full output disk",
            "the output folder on a 1 MB file system (tmpfs) that holds an earlier run",
            attempt,
            kept,
            "the earlier run, byte for byte" if kept else "CHANGED",
            left(disk),
        )
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def full_temp_case(tmp: Path, events: Path) -> Outcome | None:
    """DuckDB's spill folder on a 2 MB tmpfs, with a memory_limit low enough that it spills."""
    disk = tmp / "spill"
    disk.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
        ).returncode
    ):
        return None
    try:
        folder = tmp / "temp"
        folder.mkdir()
        attempt = run_until(
            folder / "run",
            "-p",
            f"events_path={events}",
            "-p",
            "memory_limit=200MB",
            "-p",
            f"temp_dir={disk}",
            cwd=folder,
        )
        attempt.command = attempt.command.replace(str(events), events.name).replace(
            str(disk), "/mnt/small"
        )
        attempt.stderr = attempt.stderr.replace(str(disk), "/mnt/small")
        return Outcome(
            "full temporary folder",
            f"`-p temp_dir` on a 2 MB file system (tmpfs), "
            f"`-p memory_limit=200MB`, a log of 100,000 users ({events.name})",
            attempt,
            None,
            "nothing (there was no earlier run)",
            left(folder) + [f"in temp_dir: {left(disk) or 'nothing'}"],
        )
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# -- the soak --------------------------------------------------------------------------------------


@dataclass
class SoakRow:
    number: int
    killed_after: float | None  # seconds; None = let finish
    exit_code: int
    killed_at: str
    published: str
    ok: bool


def soak(tmp: Path, runs: int, seed: int = 0) -> tuple[list[SoakRow], list[str], dict]:
    """``runs`` runs into one folder, about two in three killed at a uniform random moment of
    a run's length; after each, the published run must be whole and one of the finished ones."""
    rng = random.Random(seed)
    folder = tmp / "soak"
    folder.mkdir()
    out = folder / "run"
    first = run_until(out, "-p", "title=soak 0", cwd=folder)
    assert first.exit_code == 0, first.stderr
    length = first.seconds
    finished = {digest(out)}
    kernels_before, spills_before = kernels(), spill_folders()
    rows = []
    for number in range(1, runs + 1):
        kill = rng.random() < 2 / 3
        after = round(rng.uniform(0, 1.1 * length), 1) if kill else None
        attempt = run_until(out, "-p", f"title=soak {number}", cwd=folder, kill_after=after)
        if attempt.exit_code == 0:
            finished.add(digest(out))
        whole = not incomplete(out)
        known = whole and digest(out) in finished
        published = (
            json.loads((out / "run.json").read_text())["parameters"]["title"]
            if whole
            else f"INCOMPLETE ({incomplete(out)})"
        )
        rows.append(
            SoakRow(number, after, attempt.exit_code, attempt.killed_at, published, whole and known)
        )
        how = f"killed after {after:.1f} s" if kill else "finished"
        log(
            f"soak {number}/{runs}: {how}, "
            f"exit {attempt.exit_code}, published {published!r}, ok={rows[-1].ok}"
        )
    time.sleep(3)  # a dead run's kernel notices its parent is gone within a second or two
    final = run_until(out, "-p", "title=final", cwd=folder)
    stray = sorted(kernels() - kernels_before)
    checks = {
        "run length (s)": length,
        "final run exit code": final.exit_code,
        "kernels left running": len(stray),
        "DuckDB spill folders in the temp folder": len(spill_folders() - spills_before),
    }
    return rows, left(folder), checks


# -- the document ----------------------------------------------------------------------------------


def _fence(text: str, kind: str = "text") -> str:
    return f"```{kind}\n{text.rstrip()}\n```\n"


def render(cases: list[Outcome], rows: list[SoakRow], soak_left: list[str], checks: dict) -> str:
    parts = [
        "## Faults: killed runs, full disks, two runs at once\n\n"
        "Generated by `tools/faults.py` (called by `tools/robustness.py`); "
        "`tests/test_faults.py` tests each case. Every case runs `personas run` with its "
        "notebooks, as a scheduler does, on the bundled sample of "
        f"{SMALL[1].split('=')[1]} users, into a folder that already holds a finished "
        "run; then one clean run follows.\n\n",
        "| case | exit code | the published run after | left beside it | after the next "
        "run |\n|---|---:|---|---|---|\n",
    ]
    for c in cases:
        code = "killed" if c.attempt.exit_code == -signal.SIGKILL else c.attempt.exit_code
        parts.append(
            f"| {c.title} | {code} | {c.published} | "
            f"{', '.join(c.left)} | {', '.join(c.after_next_run) or '—'} |\n"
        )
    for c in cases:
        parts.append(
            f"\n### {c.title}\n\n{c.how}.\n\n" + _fence(f"$ {c.attempt.command}", "console")
        )
        if c.attempt.killed_at:
            parts.append(f"\nKilled (SIGKILL) after the line `{c.attempt.killed_at}`.\n")
        errors = [line for line in c.attempt.stderr.splitlines() if "error" in line]
        if c.attempt.exit_code == -signal.SIGKILL:
            continue
        parts.append(
            f"\nExit code **{c.attempt.exit_code}**"
            + (". Stderr's last line:\n\n" + _fence(errors[-1]) if errors else ".\n")
        )
    ok = sum(r.ok for r in rows)
    parts.append(
        f"\n## Soak: {len(rows)} runs in a row, killed at random\n\n"
        f"Each run was killed (SIGKILL) at a uniform random moment of a run's length "
        f"({checks['run length (s)']} s) or, one time in three, let finish; after "
        f"each, the published run was checked: whole ({len(COMPLETE)} files, "
        "`run.json` readable, `index.html` ends) and byte for byte one of the runs "
        f"that finished. **{ok} of {len(rows)} passed.**\n\n"
        "| run | killed after (s) | exit code | last line before the kill | published "
        "run (its title) | whole and a finished one |\n|---:|---:|---:|---|---|---|\n"
    )
    for r in rows:
        code = "killed" if r.exit_code == -signal.SIGKILL else r.exit_code
        parts.append(
            f"| {r.number} | {r.killed_after if r.killed_after is not None else '—'} "
            f"| {code} | {r.killed_at or '—'} | {r.published} | "
            f"{'yes' if r.ok else '**NO**'} |\n"
        )
    parts.append(
        f"\nThen one clean run: exit code {checks['final run exit code']}; the output "
        f"folder holds {', '.join(soak_left)}; notebook kernels left running: "
        f"{checks['kernels left running']}; DuckDB spill folders left in the temporary "
        f"folder: {checks['DuckDB spill folders in the temp folder']}.\n"
    )
    return "".join(parts)


def run_all(soak_runs: int = 20) -> str:
    """Every case and the soak, as docs/robustness.md's second part."""
    from personas.sample import write_sample

    with tempfile.TemporaryDirectory(prefix="personas-faults-") as name:
        tmp = Path(name)
        log("killed while loading")
        cases = [
            kill_case(
                tmp,
                "killed while loading",
                "kill -9 one second after the features notebook starts",
                kill_on="[1/3]",
                delay=1.0,
            )
        ]
        log("killed while fitting")
        cases.append(
            kill_case(
                tmp,
                "killed while fitting",
                "kill -9 two seconds after the personas notebook starts",
                kill_on="[2/3]",
                delay=2.0,
            )
        )
        log("killed while reporting")
        cases.append(
            kill_case(
                tmp,
                "killed while reporting",
                "kill -9 half a second after the report notebook starts",
                kill_on="[3/3]",
                delay=0.5,
            )
        )
        log("killed while publishing")
        cases.append(publish_case(tmp))
        log("two runs into one folder")
        cases.append(busy_case(tmp))
        cases.append(model_case(tmp))
        log("full disks")
        cases += [c for c in (full_disk_case(tmp),) if c]
        events, _ = write_sample(tmp / "events-100k.parquet", 100_000, seed=0)
        cases += [c for c in (full_temp_case(tmp, Path(events)),) if c]
        log(f"soak of {soak_runs} runs")
        rows, soak_left, checks = soak(tmp, soak_runs)
        for case in cases:  # the folders as the reader knows them
            case.attempt.stderr = case.attempt.stderr.replace(f"{tmp}/", "")
    return render(cases, rows, soak_left, checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--soak", type=int, default=20, help="runs in the soak (default 20)")
    parser.add_argument("--out", type=Path, help="write the section here (default: print)")
    args = parser.parse_args()
    text = run_all(args.soak)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
