"""Shared fixtures: one planted sample and one fitted run per test session.

Fitting UMAP costs seconds (plus numba's first compile), so the model is fitted once here and the
tests that need personas read the same run folder.
"""

from __future__ import annotations

import pytest

from personas import PersonaParams
from personas import pipeline

DEMO_USERS = 3000


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
