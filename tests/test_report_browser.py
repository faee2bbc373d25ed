"""The report in a real browser: headless Chromium via Playwright, fully offline.

Needs Debian's Chromium at /usr/bin/chromium and the playwright package (no browser download):
    apt-get install chromium; pip install playwright
The ``browser`` fixture (conftest.py) launches it, or skips when either is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report(report_fixtures, tmp_path_factory) -> tuple[Path, object]:
    from personas.report import render_report
    fixtures = report_fixtures
    summary = fixtures.make_summary()
    folder = tmp_path_factory.mktemp("browser")
    out = render_report(summary, folder / "index.html", map_points=fixtures.make_map_points(),
                        heatmap=fixtures.make_heatmap(summary),
                        comparison=fixtures.make_summary_comparison(summary, folder))
    return out, summary


def _open(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console",
            lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url, wait_until="load")
    return page, errors, requests


def test_report_in_chromium(browser, report, tmp_path):
    path, summary = report
    page, errors, requests = _open(browser, path.resolve().as_uri(), 1280)
    try:
        for p in summary.personas:
            card = page.locator(f'section.persona-card[data-persona-id="{p.id}"]')
            assert card.count() == 1
            assert card.is_visible()
            heading = card.locator("h3")
            assert heading.count() == 1 and heading.is_visible()
            assert heading.inner_text().strip() == p.name
        # the comparison with the earlier run: one row per current persona, one per persona gone
        comparison = page.locator("section.comparison")
        assert comparison.is_visible()
        assert comparison.locator("h2").inner_text().strip() == "Compared with the previous run"
        rows = comparison.locator("tbody tr")
        assert rows.count() == len(summary.personas) + 1
        assert all(rows.nth(i).is_visible() for i in range(rows.count()))
        assert rows.nth(1).locator("th").inner_text().strip() == summary.personas[1].name
        # every chart is laid out with a real size
        for box in page.locator("svg[role=img]").all():
            size = box.bounding_box()
            assert size and size["width"] > 150 and size["height"] > 40
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280 + 1
    finally:
        page.close()
    assert errors == []
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests


def test_report_at_phone_width(browser, report, tmp_path):
    path, summary = report
    page, errors, requests = _open(browser, path.resolve().as_uri(), 390)
    try:
        shot = tmp_path / "report-390.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
        for p in summary.personas:
            card = page.locator(f'section.persona-card[data-persona-id="{p.id}"]')
            assert card.is_visible()
            width = card.bounding_box()["width"]
            assert width <= 390
    finally:
        page.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests


def test_print_puts_each_card_on_its_own_page(browser, report):
    path, summary = report
    page, errors, _ = _open(browser, path.resolve().as_uri(), 1280)
    try:
        page.emulate_media(media="print")
        breaks = page.evaluate(
            "[...document.querySelectorAll('section.persona-card')]"
            ".map(el => getComputedStyle(el).breakBefore)")
        assert breaks == ["page"] * len(summary.personas)
        pdf = page.pdf(format="A4")
        assert pdf[:4] == b"%PDF" and len(pdf) > 10_000
    finally:
        page.close()
    assert errors == []
