"""Inline SVG line charts, drawn on the server (no chart library, no script)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, PAD = 600, 160, 28


@dataclass(frozen=True)
class LineChart:
    """A polyline's points in the SVG's coordinates, with its axis labels."""

    points: str
    top_label: str
    bottom_label: str
    left_label: str
    right_label: str
    width: int = WIDTH
    height: int = HEIGHT
    empty: bool = False


def line_chart(
    xs: Sequence[float], ys: Sequence[float], unit: str, x_labels: tuple[str, str]
) -> LineChart:
    """Scale (x, y) pairs into the chart's box; y from 0 (or the lowest negative) to the max."""
    if len(xs) < 2:
        return LineChart("", "", "", x_labels[0], x_labels[1], empty=True)
    low, high = min(0.0, *ys), max(ys)
    span_y = (high - low) or 1.0
    span_x = (xs[-1] - xs[0]) or 1.0
    coords = (
        (
            PAD + (x - xs[0]) / span_x * (WIDTH - 2 * PAD),
            HEIGHT - PAD - (y - low) / span_y * (HEIGHT - 2 * PAD),
        )
        for x, y in zip(xs, ys, strict=True)
    )
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    return LineChart(points, f"{high:,.2f} {unit}", f"{low:,.2f} {unit}", *x_labels)
