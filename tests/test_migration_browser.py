"""The report's "Who moved where" section and the history page in headless Chromium: on a phone
nothing runs past the screen and every cell is labelled with its column, and in print the
section starts a page and nothing is cut.

Uses the checks of test_report_browser.py (loaded from it, one source) on a report that has a
migration; the ``browser`` fixture (conftest.py) skips without Chromium.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def checks():
    spec = importlib.util.spec_from_file_location(
        "_report_browser", Path(__file__).with_name("test_report_browser.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(report_fixtures, tmp_path_factory):
    """A report with a migration (and long names), and a history page of three runs."""
    import dataclasses

    from personas.history import write_history
    from personas.migration import migrate, read_side
    from personas.report.render import render_report
    from personas.sample import make_events

    spec = importlib.util.spec_from_file_location(
        "_migration_tests", Path(__file__).with_name("test_migration.py")
    )
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    folder = tmp_path_factory.mktemp("migration-browser")
    long = " and a long persona name to wrap on a phone"
    helpers.NAMES.update({k: v + long for k, v in list(helpers.NAMES.items())[:3]})
    runs = []
    for period in (1, 2, 3):
        events, truth = make_events(600, seed=4, period=period)
        runs.append(helpers.write_run(folder / f"shop-{period}", truth, events))
    summary = report_fixtures.make_summary()
    summary = dataclasses.replace(
        summary,
        personas=tuple(dataclasses.replace(p, name=p.name + long) for p in summary.personas),
    )
    report = render_report(
        summary,
        folder / "report" / "index.html",
        map_points=report_fixtures.make_map_points(),
        heatmap=report_fixtures.make_heatmap(summary),
        migration=migrate(read_side(runs[0]), read_side(runs[1])),
    )
    history = write_history(runs, folder / "history.html")
    return {"report": report, "history": history}


@pytest.mark.parametrize("which", ["report", "history"])
def test_migration_fits_a_phone_with_every_cell_labelled(browser, checks, pages, which):
    page = browser.new_page(viewport=checks.PHONE)
    try:
        page.goto(pages[which].resolve().as_uri(), wait_until="load")
        result = page.evaluate(checks.OVERFLOW_JS)
        assert result["found"] == []
        assert result["scrollWidth"] <= page.evaluate("window.innerWidth")
        cells = [
            c for c in page.evaluate(checks.LABELS_JS) if c["table"].startswith("migration-table")
        ]
        assert len(cells) > 50
        assert [c for c in cells if c["label"] != c["head"]] == []
        assert {c["role"] for c in cells} == {"rowheader", "cell"}
        display = page.evaluate(
            "[...document.querySelectorAll('table.migration-table tbody tr')]"
            ".map(tr => getComputedStyle(tr).display)"
        )
        assert set(display) == {"block"}
        chart = page.locator("figure.flow svg").first.bounding_box()
        assert chart["width"] > 0 and chart["x"] + chart["width"] <= checks.PHONE["width"] + 0.5
    finally:
        page.close()


@pytest.mark.parametrize("which", ["report", "history"])
def test_migration_in_print(browser, checks, pages, which):
    page = browser.new_page(viewport={"width": checks.A4_PRINT_WIDTH, "height": 1000})
    try:
        page.goto(pages[which].resolve().as_uri(), wait_until="load")
        page.emulate_media(media="print")
        result = page.evaluate(checks.OVERFLOW_JS)
        assert result["found"] == []
        assert result["scrollWidth"] <= checks.A4_PRINT_WIDTH
        breaks = page.evaluate(
            "[...document.querySelectorAll('section.migration')]"
            ".map(el => getComputedStyle(el).breakBefore)"
        )
        assert breaks and set(breaks) == {"page"}
        assert page.pdf(format="A4")[:4] == b"%PDF"
    finally:
        page.close()
