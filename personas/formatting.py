"""How a figure reads: one formatter per kind of figure, for the report, the cards' texts and the
exports alike.

The profile step writes trait texts and descriptions with these functions and the report shows
the figures with the same ones, so a figure reads the same in ``index.html``, ``personas.json``
and ``personas.csv``. Money carries its ISO 4217 currency (parameter ``currency``), with the
symbol and its placement from the report's locale (English, :data:`LOCALE`) through Babel's
CLDR data; counts get thousands separators; dates read as dates.
"""

from __future__ import annotations

import math
import numbers
from datetime import date, datetime
from typing import Any

DASH = "\u2013"  # shown for a missing figure
MINUS = "\u2212"  # typographic minus for signed figures
NBSP = "\u00a0"
LOCALE = "en"  # the report's language: symbols and their placement follow it


def missing(x: Any) -> bool:
    """None or NaN (text and other objects are not missing)."""
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def pct(x: float | None, digits: int = 1) -> str:
    """Share as a percentage: 0.153 -> "15.3 %"; pct(0.1, 0) -> "10 %"; tiny -> "< 0.1 %"."""
    if missing(x):
        return DASH
    value = 100 * float(x)
    smallest = 10**-digits
    if 0 < abs(value) < smallest:
        return f"< {smallest:.{digits}f} %"
    return f"{value:.{digits}f} %"


def num(x: float | int | None) -> str:
    """Number with thousands separators and about three significant digits; a whole number
    (a count, or a median of counts) has no decimals.

    1234567 -> "1,234,567"; 1234.56 -> "1,235"; 12.345 -> "12.3"; 3.14159 -> "3.14";
    2.0 -> "2"; 0.0042 -> "0.0042".
    """
    if missing(x):
        return DASH
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return f"{int(x):,}"
    v = float(x)
    a = abs(v)
    if a == 0:
        return "0"
    if v.is_integer() or a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01:
        return f"{v:.2f}"
    return f"{v:.2g}"


def lift(x: float | None) -> str:
    """Ratio to all users: 2.41 -> "2.4×"; 12.6 -> "13×"; 0.04 -> "0.04×"; None -> "–"."""
    if missing(x):
        return DASH
    v = float(x)
    if v >= 10:
        return f"{v:.0f}×"
    if v >= 0.1:
        return f"{v:.1f}×"
    return f"{v:.2f}×"


def check_currency(code: str) -> str:
    """``code`` as an upper-case ISO 4217 currency code, or "" for none; ValueError when Babel's
    CLDR data does not know it."""
    from babel.numbers import list_currencies

    code = (code or "").strip().upper()
    if code and code not in list_currencies():
        raise ValueError(code)
    return code


def money(x: float | None, currency: str = "", like: float | None = None) -> str:
    """Amount in its currency: 1234.5 -> "1,234", 56.789 -> "56.79" without one;
    money(1234.5, "EUR") -> "€1,234", money(56.789, "USD") -> "$56.79",
    money(56.789, "CHF") -> "CHF 56.79" (symbol and placement from the locale's CLDR data).
    Amounts of 1,000 and more drop the cents; ``like``, an amount shown beside this one, makes
    both drop them when either is that large: money(417.2, like=2760.0) -> "417"."""
    if missing(x):
        return DASH
    v = float(x)
    big = max(abs(v), abs(float(like)) if not missing(like) else 0.0) >= 1000
    if not currency:
        return f"{v:,.0f}" if big else f"{v:,.2f}"
    from babel.numbers import format_currency, get_currency_symbol

    text = (
        format_currency(v, currency, "¤#,##0", locale=LOCALE, currency_digits=False)
        if big
        else format_currency(v, currency, locale=LOCALE)
    )
    symbol = get_currency_symbol(currency, locale=LOCALE)
    # CLDR's currency spacing (which Babel does not apply): a symbol that is letters ("CHF")
    # is kept apart from the digits by a no-break space
    if symbol[-1:].isalpha() and symbol in text:
        head, _, tail = text.partition(symbol)
        if tail[:1].isdigit():
            text = f"{head}{symbol}{NBSP}{tail}"
    if symbol[:1].isalpha() and symbol in text:
        head, _, tail = text.partition(symbol)
        if head[-1:].isdigit():
            text = f"{head}{NBSP}{symbol}{tail}"
    return text.replace("-", MINUS)


def days(x: float | None) -> str:
    """Days: 1 -> "1 day"; 3.46 -> "3.5 days"; 41.7 -> "42 days"."""
    if missing(x):
        return DASH
    v = float(x)
    text = f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.1f}"
    return f"{text} day" if text == "1" else f"{text} days"


def minutes(x: float | None) -> str:
    """Minutes: 4.25 -> "4.2 min"; 75 -> "75 min"."""
    if missing(x):
        return DASH
    v = float(x)
    return f"{v:,.0f} min" if abs(v) >= 10 else f"{v:.1f} min"


def zscore(x: float | None) -> str:
    """Signed standardised difference: 1.23 -> "+1.2"; -0.84 -> "−0.8"; -0.04 -> "0.0"."""
    if missing(x):
        return DASH
    z = round(float(x), 1)
    return "0.0" if z == 0 else f"{z:+.1f}".replace("-", MINUS)


def measure(x: float | None, unit: str, currency: str = "") -> str:
    """A figure in its unit: share -> pct, currency -> money (in ``currency``), days, minutes;
    else -> num."""
    unit = (unit or "").lower()
    if unit in ("share", "rate", "percent"):
        return pct(x)
    if unit in ("currency", "money", "revenue"):
        return money(x, currency)
    if unit == "days":
        return days(x)
    if unit == "minutes":
        return minutes(x)
    return num(x)


def points(x: float | None) -> str:
    """Change in percentage points: 1.84 -> "+1.8 pts"; -0.4 -> "−0.4 pts"; 0.01 -> "0.0 pts"."""
    if missing(x):
        return DASH
    v = round(float(x), 1)
    return "0.0 pts" if v == 0 else f"{v:+.1f} pts".replace("-", MINUS)


def day(x: Any) -> str:
    """A date or a date-time (ISO text, date or datetime) as a date for people:
    "2024-01-02 22:47:14" -> "2 Jan 2024"; text that is not a date is returned as it is."""
    if missing(x):
        return DASH
    value = x
    if isinstance(x, str):
        text = x.strip().removesuffix(" UTC").removesuffix("Z")
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return x
    if isinstance(value, (date, datetime)):
        return f"{value.day} {value:%b %Y}"
    return str(x)


CENTRES = ("median", "mean")


def figure_name(label: str, statistic: str = "") -> str:
    """A figure's name as every part of the report writes it: the label, and the statistic
    where the figure is a median or a mean -- one quantity can be shown both ways ("Orders per
    user (median)" on a key figure, "Orders per user (mean)" as the KPI), and the label says
    which. Shares of users and ratios of totals need no such word.

    >>> figure_name("Orders per user", "mean")
    'Orders per user (mean)'
    >>> figure_name("Bought at least once", "share of users")
    'Bought at least once'
    """
    return f"{label} ({statistic})" if statistic in CENTRES else label
