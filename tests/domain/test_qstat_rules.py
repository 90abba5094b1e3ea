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
