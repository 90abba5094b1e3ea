"""The percentile rule QSTAT uses, against Python's statistics on odd, even and tiny counts."""

from __future__ import annotations

import random
import statistics

import pytest

from board.domain.qstat import percentile


@pytest.mark.parametrize("n", [2, 3, 4, 5, 10, 11, 100, 101])
def test_median_and_p90_match_statistics_inclusive(n: int) -> None:
    rng = random.Random(n)
    values = sorted(round(rng.uniform(0, 600), 4) for _ in range(n))
    assert percentile(values, 0.5) == pytest.approx(statistics.median(values))
    cuts = statistics.quantiles(values, n=10, method="inclusive")
    assert percentile(values, 0.9) == pytest.approx(cuts[8])
    assert percentile(values, 0.1) == pytest.approx(cuts[0])


def test_even_count_median_is_the_mean_of_the_middle_two() -> None:
    assert percentile([79.0, 138.7], 0.5) == pytest.approx(108.85)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_edges() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.5) == percentile([7.0], 0.9) == 7.0
    assert percentile([1.0, 9.0], 0.0) == 1.0 and percentile([1.0, 9.0], 1.0) == 9.0
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_tour_windows_by_the_new_york_wall_clock() -> None:
    from datetime import UTC, datetime, timedelta

    from board.domain.qstat import previous_tour, tour_window

    def utc(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    # 10:00 EST on 28 November: the day tour, 07:00–15:00 EST
    assert tour_window(utc("2026-11-28T15:00:00")) == (
        "day", utc("2026-11-28T12:00:00"), utc("2026-11-28T20:00:00"))
    # 23:30 EST: the midnight tour that began at 23:00 and ends at 07:00 the next morning
    assert tour_window(utc("2026-11-29T04:30:00")) == (
        "midnight", utc("2026-11-29T04:00:00"), utc("2026-11-29T12:00:00"))
    # 02:00 EST: the same kind of tour, begun the evening before
    assert tour_window(utc("2026-11-28T07:00:00")) == (
        "midnight", utc("2026-11-28T04:00:00"), utc("2026-11-28T12:00:00"))
    assert previous_tour(utc("2026-11-28T15:00:00"))[0] == "midnight"
    # the night the clocks go back: the midnight tour is 9 hours long
    name, start, end = tour_window(utc("2026-11-01T06:30:00"))
    assert name == "midnight" and end - start == timedelta(hours=9)
