"""The console's Jinja2 environment: templates shipped in the package, autoescaped, and
``when`` for times (UTC in the HTML; console.js shows them in the browser's zone).

>>> print(when(0.0).replace(" title", "\\n title"))
<time datetime="1970-01-01T00:00:00Z"
 title="1970-01-01 00:00:00 UTC">1970-01-01 00:00:00 UTC</time>
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

HERE: Final = Path(__file__).parent


def when(epoch: float | None) -> Markup:
    """A ``<time>`` element: UTC text and title, ISO 8601 ``datetime`` for the script."""
    if epoch is None:
        return Markup("&ndash;")
    at = dt.datetime.fromtimestamp(float(epoch), dt.UTC)
    utc = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    iso = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, utc, utc)


def number(value: float | None, digits: int = 3) -> str:
    return "\N{EN DASH}" if value is None else f"{value:.{digits}g}"


def _svg(markup: str) -> Markup:
    # charts.line_chart escapes every text it puts in the SVG: safe to insert as is
    return Markup(markup)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["when"] = when
    env.filters["number"] = number
    env.filters["svg"] = _svg
    return env


ENV: Final = environment()


def render(name: str, **context: Any) -> str:
    return ENV.get_template(name).render(**context)


__all__ = ["ENV", "render", "when"]
