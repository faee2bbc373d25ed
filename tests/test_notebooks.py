"""The notebooks: thin, parameterised, stripped, and runnable by papermill and by the CLI."""

from __future__ import annotations

import ast
import dataclasses
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest

from personas import PersonaParams
from personas.cli import main, notebook_paths

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIELDS = [f.name for f in dataclasses.fields(PersonaParams)]
RUN_FILES = {
    "index.html",
    "personas.json",
    "personas.csv",
    "assignments.parquet",
    "assignments.csv",
    "features.parquet",
    "features.json",
    "model",
    "run.json",
    "notebooks",
    "purchases.parquet",
}


def test_the_three_notebooks_are_the_ones_the_cli_runs():
    assert [p.name for p in NOTEBOOKS] == [
        "01_features.ipynb",
        "02_personas.ipynb",
        "03_report.ipynb",
    ]
    assert [p.resolve() for p in NOTEBOOKS] == [p.resolve() for p in notebook_paths()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_lists_exactly_the_dataclass_fields(path):
    inspected = pm.inspect_notebook(str(path))
    assert list(inspected) == FIELDS
    for f in dataclasses.fields(PersonaParams):
        assert inspected[f.name]["help"] == f.metadata["help"]
        assert inspected[f.name]["default"] == repr(f.default)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped_thin_and_has_one_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    source = "\n".join("".join(c["source"]) for c in code)
    assert "def " not in source and "open(" not in source and "for " not in source


def _run_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _draws(source: str) -> bool:
    """Whether a cell ends in a call of a plots function that returns a figure."""
    from typing import get_type_hints

    from matplotlib.figure import Figure

    from personas import plots

    call = re.search(r"plots\.(\w+)\(", source.strip().splitlines()[-1])
    return bool(call) and issubclass(
        get_type_hints(getattr(plots, call.group(1)))["return"], Figure
    )


def _shown(folder: Path, stem: str) -> list[tuple[str, dict, str]]:
    """(source, mime type -> data, stream text) of every code cell of an executed notebook."""
    nb = json.loads((folder / f"{stem}.ipynb").read_text())
    return [
        (
            "".join(c["source"]),
            {k: v for o in c["outputs"] for k, v in o.get("data", {}).items()},
            "".join("".join(o["text"]) for o in c["outputs"] if o["output_type"] == "stream"),
        )
        for c in nb["cells"]
        if c["cell_type"] == "code"
    ]


def _check_what_the_notebooks_show(folder: Path, personas: list[dict]) -> None:
    """Every chart is a picture, 02 already uses the report's names, 03 shows the cards."""
    shown = {path.stem: _shown(folder, path.stem) for path in NOTEBOOKS}
    plotted = [
        (stem, data) for stem, cells in shown.items() for source, data, _ in cells if _draws(source)
    ]
    assert len(plotted) >= 6
    for stem, data in plotted:
        assert data["image/png"], stem
    assert not any("IProgress" in text for cells in shown.values() for *_, text in cells)
    names = next(
        data["text/plain"] for source, data, _ in shown["02_personas"] if "persona_names" in source
    )
    assert ast.literal_eval("".join(names)) == {p["id"]: p["name"] for p in personas}
    cards = next(
        "".join(data["text/html"])
        for source, data, _ in shown["03_report"]
        if source.strip() == "result"
    )
    assert cards.count('class="persona-card"') == len(personas)
    assert all(html.escape(p["name"]) in cards for p in personas)


@pytest.mark.slow
def test_papermill_notebooks_one_after_another_give_the_same_run_as_the_cli(
    sample_csv, tmp_path, capsys
):
    by_hand = tmp_path / "by-hand"
    for path in NOTEBOOKS:
        pm.execute_notebook(
            str(path),
            str(tmp_path / path.name),
            progress_bar=False,
            parameters={
                "events_path": str(sample_csv),
                "output_dir": str(by_hand),
                "sample_size": 1500,
            },
            kernel_name="python3",
        )
    assert _run_files(by_hand) == RUN_FILES - {"notebooks"}
    _check_what_the_notebooks_show(tmp_path, json.loads((by_hand / "personas.json").read_text()))

    by_cli = tmp_path / "by-cli"
    capsys.readouterr()
    code = main(
        ["run", "--events", str(sample_csv), "--out", str(by_cli), "-p", "sample_size=1500"]
    )
    assert code == 0
    # the steps' progress lines, printed in the kernel, come out between the notebooks' lines
    lines = capsys.readouterr().err.splitlines()
    first = lines[lines.index("[1/3] 01_features ...") + 1 :]
    assert re.fullmatch(r"  load: [\d,]+ rows read \(\d+\.\d s\)", first[0])
    assert first[1].startswith("  load: 1,500 users summed from ")
    assert first[2].startswith("  features: ")
    assert first[3].startswith("[1/3] 01_features done in ")
    assert any(line.startswith("  personas: 1,500 users assigned (") for line in lines)
    assert _run_files(by_cli) == RUN_FILES
    assert sorted(p.name for p in (by_cli / "notebooks").iterdir()) == [p.name for p in NOTEBOOKS]

    hand = json.loads((by_hand / "personas.json").read_text())
    cli = json.loads((by_cli / "personas.json").read_text())
    assert [(p["name"], p["size"]) for p in hand] == [(p["name"], p["size"]) for p in cli]
    run = json.loads((by_cli / "run.json").read_text())
    assert run["counts"]["users"] == 1500
    assert run["input"]["time_format"]
    assert not list(tmp_path.glob(".*"))  # no staging or temp folder left behind
    _check_what_the_notebooks_show(by_cli / "notebooks", cli)


@pytest.mark.slow
def test_a_parameter_papermill_injects_that_the_notebook_lacks_is_an_error(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        pm.execute_notebook(
            str(NOTEBOOKS[0]),
            str(tmp_path / "out.ipynb"),
            progress_bar=False,
            parameters={"max_persona": 6, "output_dir": str(tmp_path / "run")},
            kernel_name="python3",
        )
    assert info.value.ename == "ParameterError"
    assert info.value.evalue.startswith(
        "unknown parameter 'max_persona'; did you mean 'max_personas'? valid names: events_path"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_assign_scores_new_users_with_the_saved_model(tmp_path, capsys):
    from personas.sample import write_sample

    fit_log, _ = write_sample(tmp_path / "fit.parquet", n_users=800, seed=1)
    new_log, _ = write_sample(tmp_path / "new.parquet", n_users=300, seed=2)
    assert (
        main(
            [
                "run",
                "--no-notebooks",
                "--events",
                str(fit_log),
                "--out",
                str(tmp_path / "run"),
                "-q",
            ]
        )
        == 0
    )
    out = tmp_path / "scored.csv"
    capsys.readouterr()
    assert (
        main(
            [
                "assign",
                "--model",
                str(tmp_path / "run" / "model"),
                "--events",
                str(new_log),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert printed.out == f"{out}\n"
    lines = printed.err.splitlines()  # the progress of the load and the assignment
    assert [line.split(":")[0] for line in lines] == ["  load", "  load", "  assign"]
    assert lines[1].startswith("  load: 300 users summed from ")
    assert re.fullmatch(r"  assign: 300 users assigned \(\d+\.\d s\)", lines[2])
    import pandas as pd

    scored = pd.read_csv(out)
    names = {p["name"] for p in json.loads((tmp_path / "run" / "personas.json").read_text())}
    assert len(scored) == 300 and scored["user_id"].is_unique
    assert set(scored["persona"]) <= names
    assert scored["confidence"].between(0, 1).all()


def _probe_notebooks(folder: Path, pids: Path, fail_in: str = "") -> list[Path]:
    """Three stand-ins for the real notebooks, each reporting what its kernel still holds."""
    import nbformat

    cells = {
        "01_probe": [
            "from personas import PersonaParams, pipeline\n"
            "pipeline.stage_dir(PersonaParams.from_mapping(globals())).mkdir(parents=True)",
            "import os, sys, types\n"
            "sys.modules['_personas_probe'] = types.ModuleType('_personas_probe')\n"
            "leftover = 'from 01'\n"
            "os.chdir('/')",
        ],
        "02_probe": [
            "import os, sys\n"
            "assert 'leftover' not in globals() and '_personas_probe' in sys.modules\n"
            "os.getcwd()"
        ],
        "03_probe": ["import os\nassert 'sys' not in globals()\nos.getcwd()"],
    }
    paths = []
    folder.mkdir(exist_ok=True)
    for name, sources in cells.items():
        if name == fail_in:
            sources = [*sources, "raise ValueError('probe failed')"]
        sources = [*sources, f"open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\nos.getpid()"]
        defaults = "\n".join(f"{f.name} = {f.default!r}" for f in dataclasses.fields(PersonaParams))
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(s) for s in sources),
            ]
        )
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "language": "python",
            "display_name": "Python 3",
        }
        paths.append(folder / f"{name}.ipynb")
        nbformat.write(nb, paths[-1])
    return paths


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


def _gone(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_run_executes_its_notebooks_in_one_kernel_with_a_fresh_namespace_each(
    tmp_path, monkeypatch
):
    """One kernel start-up and one set of imports a run: the next notebook still has the modules
    (``sys.modules``) but not the variables, working folder or execution counts of the one
    before, and the kernel is gone after the run, also after a failing cell. Probe notebooks
    stand in for the real three (the papermill test above runs those through the CLI)."""
    import os

    monkeypatch.chdir(tmp_path)
    cwd = str(Path.cwd())
    pids = tmp_path / "pids"
    probes = _probe_notebooks(tmp_path / "probes", pids)
    monkeypatch.setattr("personas.cli.notebook_paths", lambda: probes)
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "-q"]) == 0

    kernel = _pids(pids)
    assert len(kernel) == 3 and len(set(kernel)) == 1 and kernel[0] != os.getpid()
    assert _gone(kernel[0])
    for path in probes:
        nb = json.loads((out / "notebooks" / path.name).read_text())
        assert nb["metadata"]["papermill"]["exception"] is None
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
        shown = [
            "".join(c["outputs"][0]["data"]["text/plain"]) if c["outputs"] else None for c in code
        ]
        assert shown[-1] == str(kernel[0])
        if path.stem != "01_probe":
            assert shown[-2] == repr(cwd)

    pids.unlink()
    failing = _probe_notebooks(tmp_path / "failing", pids, fail_in="02_probe")
    monkeypatch.setattr("personas.cli.notebook_paths", lambda: failing)
    with pytest.raises(RuntimeError, match="notebook 02_probe.ipynb failed: ValueError: probe"):
        main(["run", "--out", str(tmp_path / "failed"), "-q"])
    kernel = _pids(pids)
    assert len(kernel) == 1 and _gone(kernel[0])
    assert not (tmp_path / "failed").exists() and not list(tmp_path.glob(".*"))


@pytest.mark.slow
def test_shared_kernel_preloads_modules_without_binding_names(tmp_path):
    # preload: before the first notebook; background: in a thread of the kernel while it runs
    import nbformat

    from personas.kernel import SharedKernel

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import sys, threading, time\n"
            "for _ in range(200):\n"  # the background thread: up to 10 s to import wave
            "    if 'wave' in sys.modules and not any(t.name == 'personas-imports' "
            "for t in threading.enumerate()):\n"
            "        break\n"
            "    time.sleep(0.05)\n"
            "print('colorsys' in sys.modules, 'wave' in sys.modules, 'colorsys' in dir(), "
            "'wave' in dir(), 'no_such_module_x' in sys.modules, "
            "__import__('gc').get_freeze_count() > 0)"
        )
    ]
    nbformat.write(nb, tmp_path / "probe.ipynb")
    with SharedKernel(
        cwd=str(tmp_path), preload=("colorsys",), background=("no_such_module_x", "wave")
    ) as kernel:
        done = kernel.execute(
            tmp_path / "probe.ipynb", tmp_path / "out.ipynb", parameters={}, progress_bar=False
        )
    # both loaded, neither bound; a module that fails to import leaves no error in the output;
    # what was imported is frozen out of the garbage collector's walks
    assert [out["text"] for out in done.cells[0].outputs] == ["True True False False False True\n"]


def test_the_command_line_freezes_its_heap_on_exit_unless_duckdb_is_loaded(monkeypatch):
    import gc

    from personas.cli import _freeze_unless_duckdb

    gc.unfreeze()
    try:
        monkeypatch.setitem(sys.modules, "duckdb", sys.modules.get("duckdb", object()))
        _freeze_unless_duckdb()
        assert gc.get_freeze_count() == 0  # DuckDB would report the frozen objects as leaks
        monkeypatch.delitem(sys.modules, "duckdb")
        _freeze_unless_duckdb()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_command_line_does_not_import_the_model_or_pandas():
    # `personas --version` answers at once; `personas run` leaves the heavy imports to the kernel
    code = (
        "import sys, personas.cli; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'umap', 'duckdb') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "[]"
