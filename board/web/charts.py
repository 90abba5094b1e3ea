"""Chart geometry for server-rendered SVG: bars scaled into a box, with labels to print.

Pure (no I/O, no markup): the partials under templates/partials/qstat_*.svg.html draw what
this computes, so a chart is legible on a wall display without any JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    href: str = ""
    known: bool = True  # False: "no data" (drawn as nothing, named in words, never a link)

    @property
    def shown(self) -> str:
        """The value as text: minutes to 0.1, counts whole, "no data" when unknown."""
        if not self.known:
            return "no data"
        return f"{self.value:.1f}" if self.value % 1 else f"{self.value:.0f}"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    top: float  # the value the full scale stands for
    title: str

    @property
    def linked(self) -> bool:
        """Any bar a link: the SVG is then a group of links, not one image (an image's
        children are presentational, and a link inside one is nested-interactive)."""
        return any(b.href for b in self.bars)


def _nice(top: float) -> float:
    """A round scale maximum at or above `top` (1, 2, 5 × 10^n)."""
    if top <= 0:
        return 1.0
    step = 10 ** len(str(int(top))) / 10
    for m in (1, 2, 5, 10):
        if m * step >= top:
            return float(m * step)
    return float(top)


def columns(points: list[tuple[str, float | None, str]], title: str, width: int = 900,
            height: int = 260, pad: int = 40) -> Chart:
    """Vertical bars, one per (label, value, link), left to right; None draws nothing."""
    top = _nice(max((v or 0 for _, v, _ in points), default=0))
    n = max(len(points), 1)
    slot = (width - 2 * pad) / n
    bars = []
    for i, (label, value, href) in enumerate(points):
        h = (value or 0) / top * (height - 2 * pad)
        bars.append(Bar(label, value or 0, pad + i * slot + slot * 0.1, height - pad - h,
                        max(slot * 0.8, 1), h, href if value is not None else "",
                        value is not None))
    return Chart(width, height, bars, top, title)


def rows(points: list[tuple[str, float | None, str]], title: str, width: int = 900,
         row: int = 26, label_width: int = 110) -> Chart:
    """Horizontal bars, one row per (label, value, link): comparisons across precincts."""
    top = _nice(max((v or 0 for _, v, _ in points), default=0))
    span = width - label_width - 90
    bars = [Bar(label, value or 0, label_width, 30 + i * row, (value or 0) / top * span,
                row * 0.75, href if value is not None else "", value is not None)
            for i, (label, value, href) in enumerate(points)]
    return Chart(width, 40 + len(points) * row, bars, top, title)
