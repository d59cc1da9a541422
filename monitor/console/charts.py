"""Inline SVG line charts (pure: numbers in, SVG text out).

The console draws every chart on the server so a page needs no JavaScript and no chart
library: a line per contiguous run of points (a gap in the data is a gap in the line), the
baseline as a dashed horizontal line, and vertical markers for the change point, version
changes and switch changes, each with a ``<title>`` a browser shows on hover.

>>> svg = line_chart([Point(0, 1.0), Point(60, 2.0)], 0, 60, baseline=1.5, spec=SPARK)
>>> svg.count("<polyline"), 'class="baseline"' in svg
(1, True)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from xml.sax.saxutils import escape, quoteattr

MarkerKind = Literal["since", "version", "switch"]


@dataclass(frozen=True, slots=True)
class Point:
    t: float  # epoch seconds
    v: float | None  # None: no data in this step (the line breaks here)


@dataclass(frozen=True, slots=True)
class Marker:
    t: float
    label: str  # shown on hover
    kind: MarkerKind


@dataclass(frozen=True, slots=True)
class ChartSpec:
    width: int
    height: int
    left: int  # room for the y labels
    right: int
    top: int
    bottom: int  # room for the x labels
    axes: bool  # draw the value range and the time range as text


SPARK: Final = ChartSpec(160, 40, 2, 2, 4, 4, axes=False)
FULL: Final = ChartSpec(720, 180, 64, 14, 10, 24, axes=True)


@dataclass(frozen=True, slots=True)
class Scale:
    """Maps (time, value) to SVG coordinates inside the plot area."""

    spec: ChartSpec
    t0: float
    t1: float
    lo: float
    hi: float

    def x(self, t: float) -> float:
        s = self.spec
        span = self.t1 - self.t0 or 1.0
        return s.left + (t - self.t0) / span * (s.width - s.left - s.right)

    def y(self, v: float) -> float:
        s = self.spec
        span = self.hi - self.lo or 1.0
        return s.top + (self.hi - v) / span * (s.height - s.top - s.bottom)


def value_range(values: Sequence[float], baseline: float | None) -> tuple[float, float]:
    """The y range: every value and the baseline, with a little room above and below;
    values that are all >= 0 keep the axis at or above 0 (a rate is never negative).

    >>> value_range([0.2, 0.4], 0.3)
    (0.18, 0.42000000000000004)
    >>> value_range([5.0], None)
    (4.5, 5.5)
    """
    pool = [*values, *([baseline] if baseline is not None else [])]
    if not pool:
        return 0.0, 1.0
    lo, hi = min(pool), max(pool)
    pad = (hi - lo) * 0.1 if hi > lo else (abs(hi) * 0.1 or 1.0)
    low = lo - pad
    if lo >= 0 > low:
        low = 0.0
    return low, hi + pad


def runs(points: Sequence[Point]) -> list[list[Point]]:
    """Contiguous runs of points with a value (the pieces the line is drawn in).

    >>> [len(r) for r in runs([Point(0, 1), Point(1, None), Point(2, 1), Point(3, 2)])]
    [1, 2]
    """
    out: list[list[Point]] = []
    current: list[Point] = []
    for p in points:
        if p.v is None or not math.isfinite(p.v):
            if current:
                out.append(current)
            current = []
        else:
            current.append(p)
    if current:
        out.append(current)
    return out


def _num(value: float) -> str:
    return f"{value:.1f}"


def _time_label(t: float, span: float) -> str:
    when = dt.datetime.fromtimestamp(t, dt.UTC)
    # a range of a day or more starts on another day: the date tells which end is which
    return when.strftime("%H:%M" if span < 86_400 else "%m-%d %H:%M") + " UTC"


def line_chart(
    points: Sequence[Point],
    t0: float,
    t1: float,
    *,
    baseline: float | None = None,
    markers: Sequence[Marker] = (),
    spec: ChartSpec = FULL,
    title: str = "",
    fmt: Callable[[float], str] = lambda v: f"{v:.3g}",
) -> str:
    """The chart of ``points`` over ``[t0, t1]`` as an ``<svg>`` element."""
    values = [p.v for p in points if p.v is not None and math.isfinite(p.v)]
    lo, hi = value_range(values, baseline)
    scale = Scale(spec, t0, t1, lo, hi)
    label = title or "chart"
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {spec.width} {spec.height}" width="{spec.width}" '
        f'height="{spec.height}" aria-label={quoteattr(label)}>',
        f"<title>{escape(label)}</title>",
        f'<rect class="plot" x="{spec.left}" y="{spec.top}" '
        f'width="{spec.width - spec.left - spec.right}" '
        f'height="{spec.height - spec.top - spec.bottom}"/>',
    ]
    if spec.axes:
        parts.extend(_axes(scale, fmt))
    if baseline is not None:
        y = _num(scale.y(baseline))
        parts.append(
            f'<line class="baseline" x1="{spec.left}" x2="{spec.width - spec.right}" '
            f'y1="{y}" y2="{y}" data-value="{baseline!r}">'
            f"<title>baseline {escape(fmt(baseline))}</title></line>"
        )
    for m in markers:
        if not t0 <= m.t <= t1:
            continue  # outside the range shown: saying where it is would be a lie
        x = _num(scale.x(m.t))
        parts.append(
            f'<line class="marker marker-{m.kind}" x1="{x}" x2="{x}" y1="{spec.top}" '
            f'y2="{spec.height - spec.bottom}" data-t="{m.t!r}">'
            f"<title>{escape(m.label)}</title></line>"
        )
    for piece in runs(points):
        if len(piece) == 1:  # a lone step still shows, as a dot
            p = piece[0]
            assert p.v is not None
            parts.append(
                f'<circle class="series" cx="{_num(scale.x(p.t))}" cy="{_num(scale.y(p.v))}" '
                f'r="{1.5 if spec is SPARK else 2.5}"/>'
            )
            continue
        coords = " ".join(f"{_num(scale.x(p.t))},{_num(scale.y(p.v or 0.0))}" for p in piece)
        parts.append(f'<polyline class="series" points="{coords}"/>')
    if not values:
        parts.append(
            f'<text class="empty" x="{spec.width / 2:.0f}" y="{spec.height / 2:.0f}" '
            f'text-anchor="middle">no data</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _axes(scale: Scale, fmt: Callable[[float], str]) -> list[str]:
    s = scale.spec
    bottom = s.height - s.bottom
    span = scale.t1 - scale.t0
    return [
        f'<text class="axis" x="{s.left - 4}" y="{s.top + 9}" text-anchor="end">'
        f"{escape(fmt(scale.hi))}</text>",
        f'<text class="axis" x="{s.left - 4}" y="{bottom}" text-anchor="end">'
        f"{escape(fmt(scale.lo))}</text>",
        f'<text class="axis" x="{s.left}" y="{bottom + 16}">'
        f"{escape(_time_label(scale.t0, span))}</text>",
        f'<text class="axis" x="{s.width - s.right}" y="{bottom + 16}" text-anchor="end">'
        f"{escape(_time_label(scale.t1, span))}</text>",
    ]
