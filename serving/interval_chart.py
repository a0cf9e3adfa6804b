"""The experiment page's chart: the confidence sequence as inline SVG.

Drawn on the server as plain SVG text, so the page needs no script and no
asset from anywhere. The chart shows Δ = Brier(challenger) − Brier(champion)
against labels collected: the anytime-valid interval as a band, the running
estimate as a line, zero and ±MDE as reference lines. Reading a crossing off
it is legitimate because the sequence is valid at every point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

import numpy as np

from ab_router.statistics.difference_curve import CumulativeDifference

WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 14, 46


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about ``count`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)]


def _tick_text(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{decimals}f}".replace("-", "−")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in ``mask``."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


@dataclass(frozen=True)
class _Frame:
    """The plot area and the scales from data to SVG coordinates."""

    span: float  # the vertical scale runs from -span to +span
    t_max: float
    plot_w: int = WIDTH - LEFT - RIGHT
    plot_h: int = HEIGHT - TOP - BOTTOM

    def x_of(self, t: np.ndarray) -> np.ndarray:
        return LEFT + self.plot_w * np.asarray(t, dtype=float) / self.t_max

    def y_of(self, v: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(v, dtype=float), -self.span, self.span)
        return TOP + self.plot_h * (self.span - clipped) / (2 * self.span)

    def y_at(self, v: float) -> float:
        return float(self.y_of(np.array(v)))


def _frame(
    curve: CumulativeDifference, shown: np.ndarray, mde: float, min_labels: int
) -> _Frame:
    warm = shown & (curve.t >= 2 * min_labels)
    scale = warm if warm.any() else shown
    span = 1.1 * max(
        float(np.abs(curve.lower[scale]).max()),
        float(np.abs(curve.upper[scale]).max()),
        2 * mde,
    )
    return _Frame(span, max(float(curve.t[-1]), 1.0))


def _heading(
    curve: CumulativeDifference,
    shown: np.ndarray,
    frame: _Frame,
    *,
    mde: float,
    alpha: float,
    label: str,
) -> list[str]:
    """The opening tag, title, description and plot background."""
    level = f"{1 - alpha:.0%}"
    last = int(np.flatnonzero(shown)[-1])
    title = f"Brier difference {label} with its {level} anytime-valid interval"
    desc = (
        f"After {int(curve.t[last])} labels the estimate is "
        f"{curve.estimate[last]:+.4f}, interval [{curve.lower[last]:+.4f}, "
        f"{curve.upper[last]:+.4f}]; negative means the challenger is better. "
        f"Dashed lines mark ±MDE = {mde:g}."
    )
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-labelledby="chart-title chart-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(desc)}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{frame.plot_w}" height="{frame.plot_h}" '
        'fill="#fff" stroke="#bbb"/>',
    ]


def _ticks(frame: _Frame) -> list[str]:
    """Horizontal grid lines with their values, and the labels-axis ticks."""
    parts = []
    y_ticks = nice_ticks(-frame.span, frame.span)
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else frame.span
    for v in y_ticks:
        y = frame.y_at(v)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#eee"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'class="tick">{_tick_text(v, y_step)}</text>'
        )
    for t in nice_ticks(0.0, frame.t_max):
        x = float(frame.x_of(np.array(t)))
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + frame.plot_h + 16}" text-anchor="middle" '
            f'class="tick">{t:g}</text>'
        )
    return parts


def _bands(curve: CumulativeDifference, shown: np.ndarray, frame: _Frame) -> list[str]:
    """The interval band and the estimate's line, one per run of finite points."""
    parts = []
    for start, stop in _runs(shown):
        xs = frame.x_of(curve.t[start:stop])
        upper = frame.y_of(curve.upper[start:stop])
        lower = frame.y_of(curve.lower[start:stop])
        band = _points(
            np.concatenate((xs, xs[::-1])), np.concatenate((upper, lower[::-1]))
        )
        parts.append(f'<polygon points="{band}" fill="#9ec5e8" fill-opacity="0.6"/>')
        line = _points(xs, frame.y_of(curve.estimate[start:stop]))
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="#1f5f99" stroke-width="2"/>'
        )
    return parts


def _references(frame: _Frame, mde: float, label: str) -> list[str]:
    """Zero, ±MDE, the axis titles and the closing tag."""
    zero = frame.y_at(0.0)
    parts = [
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" '
        'stroke="#222"/>'
    ]
    for sign in (-1, 1):
        y = frame.y_at(sign * mde)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#777" stroke-dasharray="6 4"/>'
        )
    return [
        *parts,
        f'<text x="{LEFT + frame.plot_w / 2:.0f}" y="{HEIGHT - 8}" '
        'text-anchor="middle" class="axis">labels collected (arrival order)</text>',
        f'<text transform="translate(16 {TOP + frame.plot_h / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle" class="axis">Δ Brier {escape(label)}</text>',
        "</svg>",
    ]


def interval_chart_svg(
    curve: CumulativeDifference,
    *,
    mde: float,
    min_labels: int,
    alpha: float,
    label: str,
) -> str | None:
    """The chart as an ``<svg>`` element, or None while no interval exists yet.

    ``label`` names the difference (e.g. ``"v2 − v1"``). The vertical scale
    follows the sequence after the warm-up (``2 × min_labels``), as in the
    offline report: the first intervals are so wide they would flatten the
    rest; earlier points are clipped to the frame.
    """
    finite = np.isfinite
    shown = finite(curve.lower) & finite(curve.upper) & finite(curve.estimate)
    if not shown.any():
        return None
    frame = _frame(curve, shown, mde, min_labels)
    return "".join(
        _heading(curve, shown, frame, mde=mde, alpha=alpha, label=label)
        + _ticks(frame)
        + _bands(curve, shown, frame)
        + _references(frame, mde, label)
    )
