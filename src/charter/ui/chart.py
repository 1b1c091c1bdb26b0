"""A line chart as inline SVG, drawn on the server: no chart library, nothing for the
browser to run, readable by a screen reader (``role="img"`` with ``<title>``/``<desc>``,
and each point a ``<title>`` of its own).

>>> from datetime import datetime, UTC, timedelta
>>> start = datetime(2026, 1, 1, tzinfo=UTC)
>>> svg = line_chart([(start + timedelta(hours=i), i) for i in range(3)], title="Open",
...                  desc="3 buckets", label=lambda t: t.strftime("%H:%M"))
>>> svg.count('data-testid="chart-point"')
3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from itertools import count

from markupsafe import Markup

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 44  # margins: axis labels live in them
X_LABELS = 8  # at most this many labels under the x axis
_ids = count(1)


def nice_ticks(top: int, wanted: int = 5) -> list[int]:
    """Whole-number y ticks from 0 to at least ``top``, on a 1/2/5 step.

    >>> nice_ticks(0)
    [0, 1]
    >>> nice_ticks(7)
    [0, 2, 4, 6, 8]
    >>> nice_ticks(1234)
    [0, 500, 1000, 1500]
    """
    if top <= 0:
        return [0, 1]
    raw = top / wanted
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    last = step * math.ceil(top / step)
    return list(range(0, last + 1, step))


def line_chart(points: Sequence[tuple[datetime, int]], *, title: str, desc: str,
               label: Callable[[datetime], str], y_label: str = "open violations",
               x_label: str = "time (UTC)") -> Markup:
    """The points (oldest first) as an SVG line with a shaded area, y from 0, one circle
    per point (``data-testid="chart-point"``, ``data-value``)."""
    uid = next(_ids)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ticks = nice_ticks(max((v for _, v in points), default=0))
    top = ticks[-1]
    n = len(points)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return TOP + plot_h - plot_h * v / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title-{uid} chart-desc-{uid}" class="line-chart">',
        f'<title id="chart-title-{uid}">{escape(title)}</title>',
        f'<desc id="chart-desc-{uid}">{escape(desc)}</desc>',
    ]
    for t in ticks:  # horizontal grid lines with their values
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(t):.1f}" '
                   f'y2="{y(t):.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y(t) + 4:.1f}" '
                   f'text-anchor="end">{t}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
               f'y2="{TOP + plot_h}"/>')
    every = max(1, math.ceil(n / X_LABELS))
    for i, (when, _) in enumerate(points):
        if i % every == 0:
            out.append(f'<line class="axis" x1="{x(i):.1f}" x2="{x(i):.1f}" '
                       f'y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}"/>')
            out.append(f'<text class="tick" x="{x(i):.1f}" y="{TOP + plot_h + 17}" '
                       f'text-anchor="middle">{escape(label(when))}</text>')
    out.append(f'<text class="axis-label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" '
               f'text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text class="axis-label" transform="translate(14 {TOP + plot_h / 2:.1f}) '
               f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    if n:
        line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
        area = f"{x(0):.1f},{y(0):.1f} {line} {x(n - 1):.1f},{y(0):.1f}"
        out.append(f'<polygon class="area" points="{area}"/>')
        out.append(f'<polyline class="line" points="{line}"/>')
        for i, (when, v) in enumerate(points):
            out.append(f'<circle class="point" data-testid="chart-point" data-value="{v}" '
                       f'data-start="{escape(when.isoformat())}" cx="{x(i):.1f}" '
                       f'cy="{y(v):.1f}" r="3"><title>{escape(label(when))}: {v} '
                       f'{escape(y_label)}</title></circle>')
    out.append("</svg>")
    return Markup("\n".join(out))
