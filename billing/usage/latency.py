"""A fixed, log-spaced latency histogram whose counts add across rows, so percentiles of any
set of rollups come from the merged counts.

Bucket 0 holds attempts under 1 ms; bucket k ≥ 1 holds [2^((k-1)/4), 2^(k/4)) ms, four buckets
per doubling, up to 2^22 ms (70 minutes); the last bucket also holds anything slower. A
percentile is read as the geometric middle of its bucket, 2^((2k-1)/8) ms, so within the
covered range it is off by at most a factor 2^(1/8): under 9.1 % of the true value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PER_DOUBLING = 4
BUCKETS = 1 + 22 * PER_DOUBLING + 1
#: The largest relative error of a percentile read from the buckets (docs/analytics.md).
MAX_RELATIVE_ERROR = 2 ** (1 / (2 * PER_DOUBLING)) - 1


def bucket_of(latency_ms: int) -> int:
    """The bucket an attempt of `latency_ms` milliseconds is counted in."""
    if latency_ms < 1:
        return 0
    # The float log can land a hair below an exact power of two: nudge, then clamp.
    k = math.floor(PER_DOUBLING * math.log2(latency_ms) + 1e-9) + 1
    return min(k, BUCKETS - 1)


def add(counts: list[int], latency_ms: int) -> None:
    """Count one attempt in `counts` (grown as needed: stored lists drop trailing zeros)."""
    k = bucket_of(latency_ms)
    if len(counts) <= k:
        counts.extend([0] * (k + 1 - len(counts)))
    counts[k] += 1


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    """The element-wise sum of histograms of any lengths."""
    total: list[int] = []
    for counts in histograms:
        if len(total) < len(counts):
            total.extend([0] * (len(counts) - len(total)))
        for k, n in enumerate(counts):
            total[k] += n
    return total


def trimmed(counts: list[int]) -> list[int]:
    """`counts` without trailing zeros (what a rollup stores)."""
    end = len(counts)
    while end and counts[end - 1] == 0:
        end -= 1
    return counts[:end]


def middle_ms(k: int) -> float:
    """The value a percentile falling in bucket `k` is reported as."""
    if k == 0:
        return 0.0
    return float(2 ** ((2 * k - 1) / (2 * PER_DOUBLING)))


def percentile(counts: Sequence[int], p: float) -> int | None:
    """The nearest-rank `p`-th percentile (0 < p ≤ 1) in whole milliseconds; None when the
    histogram is empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for k, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return round(middle_ms(k))
    raise AssertionError("unreachable: the ranks add up to the total")
