"""Shared fixtures: one planted sample, one fitted run and one headless Chromium per test session.

Fitting UMAP costs seconds (plus numba's first compile), so the model is fitted once here and the
tests that need personas read the same run folder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from personas import PersonaParams, pipeline

DEMO_USERS = 3000
# Debian's Chromium, driven by the playwright package without a browser download of its own
CHROMIUM = "/usr/bin/chromium"
# --disable-dev-shm-usage: a container's small /dev/shm (Docker: 64 MB) crashes large pages
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A complete in-process run on the bundled sample (3,000 users, seed 0)."""
    out = tmp_path_factory.mktemp("demo") / "run"
    params = PersonaParams(sample_users=DEMO_USERS, output_dir=str(out), random_state=0)
    return pipeline.run(params)


@pytest.fixture(scope="session")
def sample_csv(tmp_path_factory):
    """A 1,500-user planted log written as CSV (events) with its truth file."""
    from personas.sample import write_sample

    folder = tmp_path_factory.mktemp("sample")
    events, truth = write_sample(folder / "shop.csv", n_users=1500, seed=7)
    return events


@pytest.fixture(scope="session")
def report_fixtures():
    """The fake RunSummary, profiles and chart data of test_report.py, for the other test files
    that draw a report or cards (one source for all of them)."""
    spec = importlib.util.spec_from_file_location(
        "_report_fixtures", Path(__file__).with_name("test_report.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (playwright's ``Browser``) for the ``browser`` tests; skips without it."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium; pip install playwright")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "playwright is not importable: apt-get install chromium; pip install playwright"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def cdnow_csv(tmp_path_factory) -> Path:
    """CDNOW, a real order table (23,570 customers, 1997-1998), as a CSV with the columns
    customer_id, date (ISO), quantity and amount; skips where the data is not installed (it
    ships with the 'lifetimes' package, a test extra)."""
    from importlib import metadata

    import pandas as pd

    try:
        source = metadata.distribution("Lifetimes").locate_file(
            "lifetimes/datasets/CDNOW_master.txt"
        )
    except metadata.PackageNotFoundError:
        pytest.skip("the CDNOW data ships with the 'lifetimes' package: pip install -e '.[test]'")
    orders = pd.read_csv(
        source,
        sep=r"\s+",
        skiprows=1,
        header=None,
        dtype={0: str, 1: str},
        names=["customer_id", "date", "quantity", "amount"],
    )
    orders["date"] = pd.to_datetime(orders["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d")
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    orders.to_csv(path, index=False)
    return path
