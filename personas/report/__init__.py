"""The report stage: one self-contained HTML file (inline CSS and SVG, no scripts, no links)."""

from .render import render_report

__all__ = ["render_report"]
