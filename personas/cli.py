"""``personas run | sample | assign | history``: the command line.

Exit codes: 0 done, 2 bad input or usage, a full disk included (one line on stderr, the fix
included), 75 another run is writing into the same output folder (try again later), 1 a bug
(traceback kept), 130 interrupted.

Why it is long: four commands, each with its options, help text and the mapping of every
error to one sentence and an exit code; the work itself is in :mod:`personas.pipeline`.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from . import __version__
from .errors import ParameterError, PersonaError, RunBusyError, yaml_problem
from .kernel import SharedKernel
from .params import PersonaParams
from .progress import Progress
from .runfolder import NOTEBOOKS_PREFIX, RunLock, disk_full_error, is_disk_full, publish

NOTEBOOKS = ("01_features", "02_personas", "03_report")
# what the notebooks' steps import (pandas, DuckDB, scikit-learn, umap-learn, matplotlib)
# imported by the kernel before the first notebook, and while it runs (the model's)
NOTEBOOK_MODULES = ("personas.pipeline", "personas.load", "personas.features", "personas.plots")
MODEL_MODULES = ("personas.model", "umap", "hdbscan")
EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 75, 130


def _reporter(quiet: bool) -> Progress:
    """Progress lines on stderr (stdout holds only the result path); live on a terminal."""
    return Progress(sys.stderr, quiet=quiet)


class _Lines:
    """What the notebooks print (the steps' progress lines), passed on to ``say`` line by line
    as the kernel sends it: papermill writes it here (``stdout_file``)."""

    def __init__(self, say: Progress):
        self.say = say
        self.partial = ""

    def write(self, text: str) -> None:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.say.line(line)

    def flush(self) -> None:
        """Lines are passed on when complete (the rest at :meth:`close`)."""

    def close(self) -> None:
        if self.partial:
            self.say.line(self.partial)
        self.partial = ""


def _pairs(items: Sequence[str] | None) -> dict[str, str]:
    """``-p name=value`` items as a mapping."""
    values = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ParameterError(f"-p {item!r} is not name=value; write e.g. -p max_personas=6")
        values[name.strip()] = value
    return values


def _parameters(args: argparse.Namespace) -> PersonaParams:
    values: dict = {}
    if args.config:
        values.update(_read_config(args.config))
    values.update(_pairs(args.param))
    if args.events is not None:
        values["events_path"] = args.events
    if args.out is not None:
        values["output_dir"] = args.out
    return PersonaParams.from_mapping(values, strict=True)


def _read_config(path: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ParameterError(f"config file {path!r} cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ParameterError(
            f"config file {path!r} is not valid YAML ({yaml_problem(exc)})"
        ) from None
    if not isinstance(data, dict):
        raise ParameterError(f"config file {path!r} should map parameter names to values")
    return data


def notebook_paths() -> list[Path]:
    folder = resources.files("personas") / "notebooks"
    return [Path(str(folder / f"{name}.ipynb")) for name in NOTEBOOKS]


def _run_notebooks(params: PersonaParams, say: Progress) -> Path:
    """Execute the three notebooks with papermill, one after another in one kernel; publish the
    run with the executed copies.

    The steps' progress lines, which the notebooks print, are passed on to ``say`` as they come;
    on a terminal a live line below them shows the notebook running and its time."""
    target = params.run_dir().resolve()
    params = params.replace(output_dir=str(target), publish=False)
    values = params.to_dict()
    with SharedKernel(
        cwd=str(Path.cwd()), preload=NOTEBOOK_MODULES, background=MODEL_MODULES
    ) as kernel:
        # the kernel imports the package while this process imports pandas and papermill
        from papermill.exceptions import PapermillExecutionError

        from . import pipeline

        stage = pipeline.stage_dir(params)
        executed = Path(
            tempfile.mkdtemp(prefix=f"{NOTEBOOKS_PREFIX}{os.getpid()}-", dir=target.parent)
        )
        try:
            for i, path in enumerate(notebook_paths(), 1):
                start = time.perf_counter()
                say.line(f"[{i}/3] {path.stem} ...")
                printed = _Lines(say)
                try:
                    with say.waiting(f"[{i}/3] {path.stem}"):
                        kernel.execute(
                            path,
                            executed / path.name,
                            parameters=values,
                            progress_bar=False,
                            stdout_file=None if say.quiet else printed,
                        )
                except PapermillExecutionError as exc:
                    raise _notebook_error(exc, path.name) from None
                finally:
                    printed.close()
                say.line(f"[{i}/3] {path.stem} done in {time.perf_counter() - start:.1f} s")
            executed.chmod(0o755)  # mkdtemp makes it private, the run folder is not
            shutil.move(str(executed), str(stage / "notebooks"))
            return publish(stage, target)
        except BaseException as exc:
            shutil.rmtree(stage, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, PersonaError) and is_disk_full(exc):
                raise disk_full_error(exc, target, pipeline._users(params)) from None
            raise
        finally:
            shutil.rmtree(executed, ignore_errors=True)


def _notebook_error(exc, notebook: str) -> Exception:
    """Our own errors raised inside a notebook come back as their one clean line."""
    from . import errors

    cls = getattr(errors, exc.ename, None)
    if cls is errors.RunBusyError:
        return errors.RunBusyError(exc.evalue)
    if isinstance(cls, type) and issubclass(cls, PersonaError):
        return PersonaError(exc.evalue)
    return RuntimeError(f"notebook {notebook} failed: {exc.ename}: {exc.evalue}")


def cmd_run(args: argparse.Namespace) -> int:
    say = _reporter(args.quiet)
    params = _parameters(args)
    source = params.events_path or f"the bundled sample ({params.sample_users} users)"
    if args.explain:  # no lock, no run folder: the SQL only
        from .explain import explain, render

        sys.stdout.write(render(explain(params), source))
        return EXIT_OK
    start = time.perf_counter()
    say.line(f"personas {__version__}: {source} -> {params.run_dir()}")
    with RunLock(params.run_dir()):  # held until published: one run per folder at a time
        if args.no_notebooks:
            from .pipeline import run

            run_dir = run(params, progress=say).run_dir
        else:
            run_dir = _run_notebooks(params, say)
    say.line(f"done in {time.perf_counter() - start:.1f} s")
    print(run_dir / "index.html")
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample import MAX_PERIOD, write_sample

    if args.users < 1:
        raise ParameterError(f"--users {args.users} must be at least 1")
    if not 1 <= args.period <= MAX_PERIOD:
        raise ParameterError(f"--period {args.period} must be from 1 to {MAX_PERIOD}")
    start = time.perf_counter()
    events, truth = write_sample(
        args.out, n_users=args.users, seed=args.seed, mix=args.mix, period=args.period
    )
    _reporter(args.quiet).line(
        f"wrote {args.users:,} users in {time.perf_counter() - start:.1f} s"
        f" (planted personas in {truth})"
    )
    print(events)
    return EXIT_OK


def cmd_assign(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from .custom import add_custom_features, load_custom_features
    from .features import compute_features, model_matrix
    from .load import load_events
    from .model import PersonaModel

    model = PersonaModel.load(args.model)
    params = PersonaParams.from_mapping(
        {**_pairs(args.param), "events_path": args.events}, strict=True
    )
    custom = load_custom_features(params.features_path)
    say = _reporter(args.quiet)
    log = load_events(params, progress=say)
    features = add_custom_features(log, compute_features(log)[0], custom, params.features_path)
    if model.preprocessor_ is None:  # a model saved before it kept its preprocessing
        matrix, columns = model_matrix(features)
        features = pd.DataFrame(matrix, columns=columns, index=features.index)
    # the model fills and pulls the users' values toward the medians it was fitted with
    with say.stage("assign", f"assigning {len(features):,} users") as assigning:
        labels, confidence = model.predict_with_confidence(features)
        assigning.done(f"{len(features):,} users assigned")
    names = {}
    personas_json = Path(args.model).parent / "personas.json"
    if personas_json.exists():
        names = {p["id"]: p["name"] for p in json.loads(personas_json.read_text("utf-8"))}
    labels = _run_ids(Path(args.model).parent, labels)
    out = pd.DataFrame(
        {
            "user_id": features.index,
            "persona_id": labels,
            "persona": [names.get(int(i), f"persona {i}") for i in labels],
            "confidence": confidence.round(4),
        }
    )
    out_path = Path(args.out)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    if out_path.suffix == ".parquet":
        out.to_parquet(tmp, index=False)
    else:
        out.to_csv(tmp, index=False)
    tmp.replace(out_path)
    print(out_path)
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from .history import write_history

    start = time.perf_counter()
    out = write_history(args.runs, args.out, title=args.title)
    _reporter(args.quiet).line(f"{len(args.runs)} runs in {time.perf_counter() - start:.1f} s")
    print(out)
    return EXIT_OK


def _run_ids(run_dir: Path, labels):
    """The model's persona numbers as the run's persona ids: a run compared with an earlier one
    keeps the earlier ids (``identities.model_labels`` in its run.json)."""
    import json

    import pandas as pd

    from .migration import relabel

    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        mapping = {int(k): int(v) for k, v in info["identities"]["model_labels"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return labels
    return relabel(pd.Series(labels), mapping).to_numpy()


def build_parser() -> argparse.ArgumentParser:
    from .sample import MIXES

    parser = argparse.ArgumentParser(
        prog="personas",
        description="Discover behavioural personas in event data.",
        epilog="Run 'personas run --help' for the parameters.",
    )
    parser.add_argument("--version", action="version", version=f"personas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print only the result path")
    common.add_argument("--debug", action="store_true", help="show tracebacks for input errors")

    run = sub.add_parser(
        "run",
        parents=[common],
        help="find personas and write a report",
        description="Run the three notebooks with papermill and write a run "
        "folder with index.html, personas.json/csv, assignments, model/.",
    )
    run.add_argument(
        "--events",
        metavar="PATH",
        help="event log (CSV, CSV.gz, Parquet, folder "
        "of Parquet); default: the bundled synthetic sample",
    )
    run.add_argument(
        "--out",
        metavar="DIR",
        help="run folder (default reports/<name>; a relative one is taken in the project folder)",
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="set a parameter; repeatable (see the list below)",
    )
    run.add_argument("--config", metavar="YAML", help="parameters from a YAML file (-p wins)")
    run.add_argument(
        "--no-notebooks",
        action="store_true",
        help="run the steps in this process instead of through papermill",
    )
    run.add_argument(
        "--explain",
        action="store_true",
        help="print the SQL the run would send to DuckDB for this input, in order, "
        "and exit: it reads the input (the SQL depends on the data) but writes "
        "nothing and fits no model",
    )
    run.epilog = "parameters:\n" + "\n".join(
        f"  {f.name} (default {f.default!r}): {f.metadata['help']}"
        for f in dataclasses.fields(PersonaParams)
    )
    run.formatter_class = argparse.RawDescriptionHelpFormatter
    run.set_defaults(func=cmd_run)

    sample = sub.add_parser(
        "sample", parents=[common], help="write a synthetic event log with planted personas"
    )
    sample.add_argument("--users", type=int, default=5000, help="users (default 5000)")
    sample.add_argument(
        "--out", required=True, metavar="PATH", help="output file: .parquet, .csv or .csv.gz"
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument(
        "--mix",
        choices=tuple(MIXES),
        default="default",
        help="cast of planted personas: default, or holdout (other personas, "
        "to check naming on data it was not written against; default: default)",
    )
    sample.add_argument(
        "--period",
        type=int,
        default=1,
        metavar="N",
        help="year N of the same shop (default 1): 2 is the next year, with the "
        "same users moved between personas, some gone and some new (default mix "
        "only); the truth files of two years give the planted moves",
    )
    sample.set_defaults(func=cmd_sample)

    assign = sub.add_parser(
        "assign", parents=[common], help="assign users of an event log to a saved model's personas"
    )
    assign.add_argument("--model", required=True, metavar="DIR", help="a run's model/ folder")
    assign.add_argument("--events", required=True, metavar="PATH", help="event log to score")
    assign.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    assign.add_argument(
        "-p",
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="column mapping etc., as for run",
    )
    assign.set_defaults(func=cmd_assign)

    history = sub.add_parser(
        "history",
        parents=[common],
        help="one page over a series of runs: shares over time "
        "and who moved between consecutive runs",
        description="Read run folders of one series (e.g. monthly runs chained with -p "
        "compare_to) and write one self-contained HTML page: each persona's share over time, "
        "followed by persona id, and the migration of users between consecutive runs (ordered "
        "by the end of their data windows).",
    )
    history.add_argument(
        "runs", nargs="+", metavar="RUN", help="run folders (at least two), e.g. reports/shop-*"
    )
    history.add_argument(
        "--out",
        default="history.html",
        metavar="FILE",
        help="HTML file to write (default history.html; a folder gets history.html inside it)",
    )
    history.add_argument("--title", default="Persona history", help="title of the page")
    history.set_defaults(func=cmd_history)
    return parser


def _freeze_unless_duckdb() -> None:
    """On exit: spare the interpreter collecting the objects of papermill, pandas and the rest,
    which the process's end frees anyway (~0.3 s a run here; see ``personas.kernel.prepare``).
    Not once DuckDB is loaded (``--no-notebooks``, ``assign``): its bindings report objects
    still alive at exit as leaks, on stderr."""
    if "duckdb" not in sys.modules:
        gc.freeze()


def main(argv: Sequence[str] | None = None) -> int:
    atexit.unregister(_freeze_unless_duckdb)
    atexit.register(_freeze_unless_duckdb)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PersonaError as exc:
        if args.debug:
            raise
        print(f"personas: error: {exc}", file=sys.stderr)
        return EXIT_BUSY if isinstance(exc, RunBusyError) else EXIT_USAGE
    except KeyboardInterrupt:
        print("personas: interrupted; nothing was published", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
