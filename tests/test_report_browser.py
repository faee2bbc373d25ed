"""The report in a real browser: headless Chromium via Playwright, fully offline.

Needs Debian's Chromium at /usr/bin/chromium and the playwright package (no browser download):
    apt-get install chromium; pip install playwright
The ``browser`` fixture (conftest.py) launches it, or skips when either is missing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def report(report_fixtures, tmp_path_factory) -> tuple[Path, object]:
    from personas.report import render_report

    fixtures = report_fixtures
    summary = fixtures.make_summary()
    folder = tmp_path_factory.mktemp("browser")
    out = render_report(
        summary,
        folder / "index.html",
        map_points=fixtures.make_map_points(),
        heatmap=fixtures.make_heatmap(summary),
        comparison=fixtures.make_summary_comparison(summary, folder),
    )
    return out, summary


def _open(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
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
            ".map(el => getComputedStyle(el).breakBefore)"
        )
        assert breaks == ["page"] * len(summary.personas)
        pdf = page.pdf(format="A4")
        assert pdf[:4] == b"%PDF" and len(pdf) > 10_000
    finally:
        page.close()
    assert errors == []


# --- phone and print (issue 25) ------------------------------------------------------------------

PHONE = {"width": 390, "height": 844}
# The width of an A4 page's printable area at the report's 14 mm margins, in CSS pixels
# (182 mm at 96 px to the inch): the width the print layout has to fit.
A4_PRINT_WIDTH = 688

# Everything laid out in ``main`` that reaches past the viewport's right or left edge, and every
# table (or its scroll box) wider than it may be; visually hidden text (.sr-only, the header row
# of a stacked table, kept for screen readers) is clipped to nothing and does not count.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const hidden = el => {
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.clipPath !== 'none' || style.clip !== 'auto' || style.display === 'none') {
        return true;
      }
    }
    return false;
  };
  const name = el => {
    const persona = el.closest('[data-persona-id]');
    return el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
      + (persona ? ' in persona ' + persona.dataset.personaId : '');
  };
  const found = [];
  for (const el of document.querySelectorAll('main, main *')) {
    if (hidden(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    if (box.right > width + 0.5 || box.left < -0.5)
      found.push(`${name(el)} spans ${box.left}-${box.right}`);
    const style = getComputedStyle(el);
    if (style.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1)
      found.push(`${name(el)} scrolls: ${el.scrollWidth} > ${el.clientWidth}`);
  }
  for (const table of document.querySelectorAll('table')) {
    const right = table.getBoundingClientRect().right;
    const column = table.closest('.card-main, .card-side, .page');
    if (right > width + 0.5) found.push(`${name(table)} ends at ${right}`);
    if (column && right > column.getBoundingClientRect().right + 0.5)
      found.push(`${name(table)} runs past its column`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, found};
}"""

# Each body cell with its column's header, its data-label and its explicit ARIA role.
LABELS_JS = """() => [...document.querySelectorAll('table')].flatMap(table => {
  const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
  return [...table.querySelectorAll('tbody tr')].flatMap(tr => [...tr.children].map((cell, i) =>
    ({table: table.className, tag: cell.tagName.toLowerCase(), head: heads[i],
      label: cell.dataset.label, role: cell.getAttribute('role')})));
})"""


def _wide_summary(summary):
    """The fake summary with figures as long as real data can make them: eight-digit amounts with
    both centres shown, a five-digit lift, long labels and long persona names."""
    import dataclasses

    from personas.results import Stat

    wide = (
        Stat(
            "revenue",
            "Revenue per customer over the whole window",
            12345678.9,
            1234567.8,
            10.0,
            "currency",
            "median",
            basis="median",
            median=12345678.9,
            mean=23456789.1,
            overall_median=1234567.8,
            overall_mean=2345678.9,
        ),
        Stat(
            "tenure",
            "Days between the first and the last purchase",
            1234.5,
            12.0,
            102.9,
            "days",
            "mean",
            basis="mean",
            median=1000.0,
            mean=1234.5,
            overall_median=10.0,
            overall_mean=12.0,
        ),
        Stat("orders", "Orders", 123456, 7, 17636.6, "orders", "mean"),
    )
    personas = tuple(
        dataclasses.replace(
            p, stats=wide + p.stats[:3], name=f"{p.name} and a long persona name to wrap"
        )
        for p in summary.personas
    )
    return dataclasses.replace(summary, personas=personas)


@pytest.fixture(scope="module")
def wide_report(report_fixtures, tmp_path_factory) -> tuple[Path, object]:
    from personas.report import render_report

    fixtures = report_fixtures
    summary = _wide_summary(fixtures.make_summary())
    folder = tmp_path_factory.mktemp("browser-wide")
    out = render_report(
        summary,
        folder / "index.html",
        map_points=fixtures.make_map_points(),
        heatmap=fixtures.make_heatmap(summary),
        comparison=fixtures.make_summary_comparison(summary, folder),
    )
    return out, summary


def _inside(box, width: float, height: float | None = None) -> bool:
    return (
        box is not None
        and box["width"] > 0
        and box["x"] >= -0.5
        and box["x"] + box["width"] <= width + 0.5
        and (height is None or box["height"] > 0)
    )


@pytest.mark.parametrize("which", ["report", "wide_report"])
def test_every_table_fits_a_phone(browser, request, which):
    path, summary = request.getfixturevalue(which)
    page = browser.new_page(viewport=PHONE)
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        result = page.evaluate(OVERFLOW_JS)
        assert result["found"] == []
        assert result["scrollWidth"] <= page.evaluate("window.innerWidth")
        # the lift of every key figure, with its arrow, and every change since the previous run
        # are on screen, each after its column's label
        lifts = page.locator("table.stats td[data-label='Lift']")
        assert lifts.count() == sum(min(len(p.stats), 6) for p in summary.personas)
        changes = page.locator("table.comparison-table td[data-label='Change']")
        rows = page.locator("table.comparison-table tbody tr").count()
        assert changes.count() == rows >= len(summary.personas) + 1
        for cell in [*lifts.all(), *changes.all()]:
            assert cell.is_visible()
            assert _inside(cell.bounding_box(), PHONE["width"])
            text = cell.inner_text()
            assert text.strip()
            label = cell.evaluate("el => getComputedStyle(el, '::before').content")
            assert cell.get_attribute("data-label") in label
        for arrow in page.locator("table.stats .lift .arrow").all():
            assert _inside(arrow.bounding_box(), PHONE["width"])
        # stacked rows: one block per row, the header row hidden from sight only
        display = page.evaluate(
            "[...document.querySelectorAll('table.stats tbody tr')]"
            ".map(tr => getComputedStyle(tr).display)"
        )
        assert set(display) == {"block"}
        assert page.locator("table.stats thead th").first.get_attribute("role") == "columnheader"
    finally:
        page.close()


def test_every_cell_is_labelled_with_its_column(browser, report):
    path, _ = report
    page = browser.new_page(viewport=PHONE)
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        cells = page.evaluate(LABELS_JS)
        assert len(cells) > 100
        # the comparison table's row markup is pinned by test_report.py: no roles, and its row
        # header (the persona's name, the row's title) has no label
        pinned = [c for c in cells if c["table"] == "comparison-table"]
        assert pinned and {c["role"] for c in pinned} == {None}
        labelled = [c for c in cells if not (c in pinned and c["tag"] == "th")]
        assert [c for c in labelled if c["label"] != c["head"]] == []
        assert {c["role"] for c in cells if c not in pinned} == {"rowheader", "cell"}
        # the header rows stay in the accessibility tree for screen readers
        heads = page.locator("thead")
        assert heads.count() == page.locator("table").count()
        assert [h.get_attribute("role") for h in heads.all()].count("rowgroup") == heads.count() - 1
    finally:
        page.close()


def test_desktop_tables_stay_tables(browser, report):
    path, _ = report
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        display = page.evaluate(
            "[...document.querySelectorAll('table, thead, tbody tr, tbody td')]"
            ".map(el => getComputedStyle(el).display)"
        )
        assert set(display) == {"table", "table-header-group", "table-row", "table-cell"}
        labels = page.evaluate(
            "[...document.querySelectorAll('td')]"
            ".map(td => getComputedStyle(td, '::before').content)"
        )
        assert set(labels) == {"none"}
        assert page.evaluate(OVERFLOW_JS)["found"] == []
    finally:
        page.close()


@pytest.mark.parametrize("which", ["report", "wide_report"])
def test_print_gives_each_card_its_own_page_and_cuts_nothing(browser, request, which):
    path, summary = request.getfixturevalue(which)
    # laid out at the width of an A4 page's printable area: nothing may run past it
    page = browser.new_page(viewport={"width": A4_PRINT_WIDTH, "height": 1000})
    try:
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.emulate_media(media="print")
        cards = page.evaluate(
            "[...document.querySelectorAll('section.persona-card')].map(el => {"
            " const s = getComputedStyle(el);"
            " return [s.breakBefore, s.breakInside, el.getBoundingClientRect().width]; })"
        )
        assert [c[:2] for c in cards] == [["page", "avoid"]] * len(summary.personas)
        assert all(c[2] <= A4_PRINT_WIDTH for c in cards)
        result = page.evaluate(OVERFLOW_JS)
        assert result["found"] == []
        assert result["scrollWidth"] <= A4_PRINT_WIDTH
        for fmt in ("A4", "Letter"):
            pdf = page.pdf(format=fmt)
            pages = len(re.findall(rb"/Type\s*/Page\b", pdf))
            assert pages >= len(summary.personas) + 1, (fmt, pages)
    finally:
        page.close()
