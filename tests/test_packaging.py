"""environment.yml mirrors pyproject.toml; importing the package has no side effects."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"duckdb": "python-duckdb"}  # PyPI name -> conda-forge name where they differ


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_yml_mirrors_pyproject_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_deps = dict(_split(r) for r in project["dependencies"])
    conda = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    assert conda.pop("python") == "=3.11"
    conda.pop("pip", None)
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in pip_deps.items()}
    assert conda == expected
    assert "conda-forge" in env["channels"]


def test_importing_personas_has_no_side_effects():
    # dependencies may add warning filters when imported; personas itself must add none
    code = (
        "import logging, sys, warnings, duckdb, numpy, pandas, scipy, sklearn.base, "
        "sklearn.neighbors, sklearn.preprocessing, yaml; "
        "before = len(warnings.filters); import personas; "
        "assert 'umap' not in sys.modules and 'matplotlib.pyplot' not in sys.modules; "
        "assert len(warnings.filters) == before; assert not logging.getLogger().handlers; "
        "print(personas.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.1.0"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
