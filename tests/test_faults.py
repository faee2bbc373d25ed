"""Faults a scheduled run meets: killed runs, full disks, two runs into one folder, untrusted files.

The contract (docs/robustness.md, second part): the published run folder is always one complete
run, the previous one or the new one; a run that cannot finish says why in one sentence and exits
2 (75 when another run holds the folder); what a dead run left is cleaned up by the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from personas import pipeline, runfolder
from personas.cli import EXIT_BUSY, EXIT_USAGE, main
from personas.errors import InputError, RunBusyError
from personas.params import PersonaParams

SMALL = dict(sample_users=400, sample_size=400, n_fits=2)


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def python(code: str, **kwargs) -> subprocess.Popen:
    """A fresh Python process running ``code`` (this checkout first on its path)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop(runfolder.HELD_ENV, None)
    return subprocess.Popen([sys.executable, "-c", code], env=env, text=True, **kwargs)


# -- publishing ------------------------------------------------------------------------------------


def _stage_and_target(tmp_path):
    target, stage = tmp_path / "run", tmp_path / ".run.partial"
    target.mkdir()
    (target / "old.txt").write_text("old")
    stage.mkdir()
    (stage / "new.txt").write_text("new")
    return stage, target


def test_publish_swaps_the_new_run_in_and_removes_the_old_one(tmp_path):
    stage, target = _stage_and_target(tmp_path)
    runfolder.publish(stage, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock, no old run


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_the_swap_is_one_system_call_on_linux(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("a"), (b / "x").write_text("b")
    if not runfolder._exchange(a, b):
        pytest.skip("this file system cannot swap two folders in one step")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_without_the_swap_publish_falls_back_to_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(runfolder, "_renameat2", lambda: None)
    stage, target = _stage_and_target(tmp_path)
    runfolder.publish(stage, target)
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_clean_up_restores_a_run_left_aside_and_removes_what_dead_runs_left(tmp_path):
    dead = 2**22 + 17  # above Linux's default pid_max: never running
    assert not runfolder.pid_alive(dead)
    aside = tmp_path / f".run.old-{dead}"  # a crash between the two renames of a publish
    aside.mkdir()
    (aside / "index.html").write_text("the good run")
    (tmp_path / ".run.partial").mkdir()
    (tmp_path / f".personas-notebooks-{dead}-abc").mkdir()
    live = tmp_path / f".personas-notebooks-{os.getpid()}-def"
    live.mkdir()
    runfolder.clean_up(tmp_path / "run")
    assert (tmp_path / "run" / "index.html").read_text() == "the good run"
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "run"]


KILLED_RUN = """
import os, signal, sys
from personas import pipeline, runfolder
from personas.params import PersonaParams
swap = runfolder._exchange
def kill_{when}(a, b):
    if "{when}" == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    swap(a, b)
    os.kill(os.getpid(), signal.SIGKILL)
runfolder._exchange = kill_{when}
pipeline.run(PersonaParams(**{params}), progress=False)
"""


@pytest.mark.slow
def test_a_run_killed_at_publishing_leaves_one_whole_run_and_the_next_run_cleans_up(tmp_path):
    target = tmp_path / "run"
    pipeline.run(PersonaParams(**SMALL, output_dir=str(target), sample_seed=1), progress=False)
    before = tree_digest(target)
    for when, seed in (("before", 2), ("after", 3)):
        params = dict(SMALL, output_dir=str(target), sample_seed=seed)
        killed = python(KILLED_RUN.format(when=when, params=params))
        assert killed.wait(timeout=300) == -signal.SIGKILL
        after = tree_digest(target)
        if when == "before":
            assert after == before  # byte for byte the previous run
        else:
            assert after != before and "index.html" in after and "run.json" in after
            run = json.loads((target / "run.json").read_text())
            assert run["parameters"]["sample_seed"] == 3  # the new run, complete
    assert (tmp_path / ".run.partial").exists() and (tmp_path / ".run.lock").exists()
    pipeline.run(PersonaParams(**SMALL, output_dir=str(target), sample_seed=4), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# -- one run per folder ----------------------------------------------------------------------------

HOLDER = """
import sys, time
from pathlib import Path
from personas.runfolder import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def held_folder(tmp_path):
    """A run folder whose lock another process holds (as a run in progress would)."""
    target = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop(runfolder.HELD_ENV, None)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    yield target, holder
    holder.kill()
    holder.wait()


def test_a_second_run_into_a_busy_folder_is_refused_with_exit_75(held_folder, capsys):
    target, holder = held_folder
    code = main(["run", "--no-notebooks", "-q", "--out", str(target)])
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_BUSY == 75
    assert len(err) == 1
    assert re.fullmatch(
        rf"personas: error: another run \(pid {holder.pid}, started [0-9: -]+\) "
        rf"is writing into '{re.escape(str(target))}'; wait for it to finish, or "
        r"give this run another output folder",
        err[0],
    )
    assert not target.exists() and not (target.parent / ".run.partial").exists()


def test_a_notebook_step_does_not_empty_the_stage_of_a_run_in_progress(held_folder):
    target, _ = held_folder
    stage = target.parent / ".run.partial"
    stage.mkdir()
    (stage / "features.parquet").write_text("the other run's")
    with pytest.raises(RunBusyError, match="another run"):
        pipeline.features_step(PersonaParams(**SMALL, output_dir=str(target)), progress=False)
    assert (stage / "features.parquet").read_text() == "the other run's"


def test_the_lock_of_a_killed_run_is_taken_over(held_folder):
    target, holder = held_folder
    holder.kill()
    holder.wait()
    assert (target.parent / ".run.lock").exists()  # the dead run's file, unlocked
    with runfolder.RunLock(target):
        assert runfolder.holds(target)
    assert not (target.parent / ".run.lock").exists()


@pytest.mark.slow
def test_runs_into_one_folder_at_once_publish_one_whole_run_and_other_folders_are_free(tmp_path):
    cli = [sys.executable, "-m", "personas", "run", "--no-notebooks", "-q"]
    small = [f"-p{k}={v}" for k, v in SMALL.items()]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop(runfolder.HELD_ENV, None)
    first = subprocess.Popen(
        [*cli, "--out", str(tmp_path / "a"), *small],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while not (tmp_path / ".a.lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    same = subprocess.run(
        [*cli, "--out", str(tmp_path / "a"), *small],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    other = subprocess.run(
        [*cli, "--out", str(tmp_path / "b"), *small],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert same.returncode == 75 and "another run" in same.stderr
    assert other.returncode == 0, other.stderr
    for name in ("a", "b"):
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert run["counts"]["users"] == 400
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


# -- full disks ------------------------------------------------------------------------------------


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def small_disk(tmp_path):
    """A 256 kB file system (tmpfs): a disk that fills up. Needs root; skipped elsewhere."""
    if not _can_mount():
        pytest.skip("mounting a small disk needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("this machine does not let us mount a tmpfs")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow  # fits the model
def test_a_full_output_disk_is_one_sentence_and_keeps_the_previous_report(small_disk, capsys):
    target = small_disk / "run"
    target.mkdir()
    (target / "index.html").write_text("the earlier good run")
    code = main(
        [
            "run",
            "--no-notebooks",
            "-q",
            "--out",
            str(target),
            *[f"-p{k}={v}" for k, v in SMALL.items()],
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_USAGE
    assert len(err) == 1
    assert re.fullmatch(
        rf"personas: error: the disk holding the output folder "
        rf"'{re.escape(str(target))}' is full \(\d+ MB free, and the run needs "
        r"about \d+ MB there\); free some space, or set output_dir to a folder "
        r"on another disk",
        err[0],
    )
    assert (target / "index.html").read_text() == "the earlier good run"
    assert sorted(p.name for p in small_disk.iterdir()) == ["run"]


def test_a_full_disk_anywhere_in_a_step_becomes_the_sentence(tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".run.partial" / "x"))

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    code = main(
        [
            "run",
            "--no-notebooks",
            "-q",
            "--out",
            str(tmp_path / "run"),
            *[f"-p{k}={v}" for k, v in SMALL.items()],
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_USAGE and len(err) == 1
    assert "the disk holding the output folder" in err[0] and "is full" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_full_temporary_folder_names_temp_dir(tmp_path):
    exc = OSError(
        f'IO Error: Could not write file "{tmp_path}/personas-duckdb-1-ab/'
        'duckdb_temp_storage-0.tmp": No space left on device'
    )
    error = runfolder.disk_full_error(exc, tmp_path / "run", 1000, temp_dir=tmp_path)
    assert str(error).startswith(
        f"the disk holding DuckDB's temporary folder '{tmp_path}' is full ("
    )
    assert str(error).endswith(
        "; set temp_dir to a folder on a disk with more room, or raise "
        "memory_limit so that less is spilled"
    )


@pytest.mark.slow  # demo_run fits the model
def test_the_space_a_run_needs_is_measured_not_guessed(demo_run):
    """run_bytes() must cover a real run folder, without asking for ten times what it uses."""
    used = sum(p.stat().st_size for p in demo_run.run_dir.rglob("*") if p.is_file())
    needed = runfolder.run_bytes(demo_run.info["counts"]["users"])
    assert used <= needed <= 3 * used


def test_memory_limit_and_temp_dir_reach_duckdb(tmp_path):
    from personas.load import connect
    from personas.runfolder import SPILL_PREFIX

    stale = tmp_path / f"{SPILL_PREFIX}{2**22 + 17}-abc"  # a killed run's spill folder
    stale.mkdir()
    con = connect("123MB", str(tmp_path))
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    folder = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    assert limit.replace(" ", "") in ("117.3MiB", "123.0MB")
    assert Path(folder).parent == tmp_path and Path(folder).name.startswith(
        f"{SPILL_PREFIX}{os.getpid()}-"
    )
    assert not stale.exists()


@pytest.mark.parametrize(
    "value, message",
    [
        ("lots", "parameter memory_limit='lots' is not a size; write it like 2GB or 500MB"),
    ],
)
def test_memory_limit_must_be_a_size(value, message):
    from personas.errors import ParameterError

    with pytest.raises(ParameterError, match=re.escape(message)):
        PersonaParams(memory_limit=value).validate()


# -- untrusted files -------------------------------------------------------------------------------

EVIL = "!!python/object/apply:os.system ['touch {marker}']\n"


@pytest.mark.parametrize(
    "flag", ["rules_path", "renames_path", "roles_path", "features_path", "--config"]
)
def test_yaml_files_cannot_run_code(flag, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(EVIL.format(marker=marker))
    args = ["--config", str(evil)] if flag == "--config" else [f"-p{flag}={evil}"]
    code = main(
        ["run", "--no-notebooks", "-q", "--out", str(tmp_path / "run"), "-psample_users=300", *args]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_USAGE and len(err) == 1
    assert str(evil) in err[0] and "python/object" in err[0], err[0]
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.yaml"]


@pytest.fixture
def saved_model(demo_run, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(demo_run.run_dir / "model", folder)
    return folder


@pytest.mark.slow  # demo_run fits the model
@pytest.mark.parametrize(
    "damage, message",
    [
        (
            "edit",
            "has changed since the model was saved (model.json differs from its checksum in "
            "manifest.json)",
        ),
        ("truncate", "has changed since the model was saved (reference.parquet differs"),
        ("delete", "lacks reference.parquet"),
    ],
)
def test_a_damaged_model_folder_is_refused(
    saved_model, damage, message, sample_csv, tmp_path, capsys
):
    if damage == "edit":
        path = saved_model / "model.json"
        text = path.read_text()
        path.write_text(text.replace('"scaler_mean": [\n    ', '"scaler_mean": [\n    1'))
    elif damage == "truncate":
        path = saved_model / "reference.parquet"
        path.write_bytes(path.read_bytes()[:1000])
    else:
        (saved_model / "reference.parquet").unlink()
    out = tmp_path / "assigned.csv"
    code = main(
        [
            "assign",
            "-q",
            "--model",
            str(saved_model),
            "--events",
            str(sample_csv),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_USAGE and len(err) == 1
    assert f"model folder '{saved_model}' " in err[0] and message in err[0]
    assert not out.exists()


@pytest.mark.slow  # demo_run fits the model
def test_an_intact_model_folder_still_loads(saved_model):
    from personas.model import PersonaModel

    assert PersonaModel.load(saved_model).info_["personas"] >= 2


@pytest.mark.slow  # demo_run fits the model
def test_the_report_and_persona_exports_hold_no_user_id(demo_run):
    ids = set(pd.read_parquet(demo_run.run_dir / "assignments.parquet")["user_id"])
    for name in ("index.html", "personas.json", "personas.csv"):
        text = (demo_run.run_dir / name).read_text(encoding="utf-8")
        found = set(re.findall(r"u\d{7}", text)) & ids
        assert not found, f"{name} holds user ids {sorted(found)[:5]}"


@pytest.mark.slow  # demo_run fits the model
def test_loading_a_model_with_parts_that_do_not_fit_is_refused(saved_model):
    from personas.model import MANIFEST, PersonaModel

    (saved_model / MANIFEST).unlink()  # as an older version saved it
    state = json.loads((saved_model / "model.json").read_text())
    state["scaler_scale"] = state["scaler_scale"][:-1]
    (saved_model / "model.json").write_text(json.dumps(state))
    with pytest.raises(InputError, match="does not hold a saved persona model"):
        PersonaModel.load(saved_model)
