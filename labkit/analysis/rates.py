"""Rates: how many things per second, in buckets of time.

The one way the lab turns times into a rate: messages delivered (``metrics.throughput``),
processed by a group, failed or read per second, whatever a chart draws over time. Buckets
are aligned on multiples of their width from the clock's 0, so rates of runs on one clock
line up bucket by bucket; a bucket with nothing in it reads 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def per_second(times, bucket_s: float = 1.0, start: float | None = None,
               end: float | None = None, weights=None) -> pd.Series:
    """Happenings per second (or the sum of their ``weights`` per second), bucket by bucket.

    Args:
        times: when each thing happened, seconds on any clock (NaN ignored).
        bucket_s: bucket width in seconds.
        start: the first bucket is the one holding this time (default: the earliest time's);
            earlier times are left out.
        end: the last bucket is the one holding this time (default: the latest time's);
            later times are left out.
        weights: a number per time (e.g. bytes), summed instead of counted.

    Returns:
        Per second values indexed by bucket start ``t`` (seconds), every bucket from the
        first to the last, empty ones 0; empty if there is no time and no ``start`` and
        ``end``.

    Raises:
        ValueError: ``bucket_s`` is not positive.
    """
    if not bucket_s > 0:
        raise ValueError(f"bucket_s={bucket_s!r} must be seconds > 0")
    values = pd.Series(np.asarray(times, dtype=float))
    amounts = pd.Series(np.ones(len(values)) if weights is None
                        else np.asarray(weights, dtype=float))
    kept = values.notna()
    values, amounts = values[kept], amounts[kept]
    bucket = np.floor(values / bucket_s).astype(int)
    first = int(np.floor(start / bucket_s)) if start is not None else (
        int(bucket.min()) if len(bucket) else None)
    last = int(np.floor(end / bucket_s)) if end is not None else (
        int(bucket.max()) if len(bucket) else None)
    if first is None or last is None:
        return pd.Series([], dtype=float, index=pd.Index([], dtype=float, name="t"),
                         name="per_s")
    inside = (bucket >= first) & (bucket <= last)
    sums = amounts[inside].groupby(bucket[inside]).sum()
    sums = sums.reindex(range(first, last + 1), fill_value=0.0)
    return pd.Series(sums.to_numpy(dtype=float) / bucket_s,
                     index=pd.Index(sums.index * bucket_s, dtype=float, name="t"), name="per_s")
