"""Gaps: the stretches in which nothing happened.

One family for every "the longest stretch without X" of the lab: without an acknowledgement
(``availability.outages``, ``availability.outage_at``), without a message processed
(``recovery.consumption_gap``), without an owner for a partition (``metrics.ownership_gaps``).
The callers choose the times (successful delivery reports, consumed messages, ownerships);
the stretches between them are measured here.

- ``between``: every stretch between consecutive happenings, longest first;
- ``longest``: the longest one, as (start, end);
- ``around``: the one an instant falls in.

Times are seconds on any one clock; NaN times are ignored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GAP_COLUMNS = ("start", "end", "seconds", "before", "after")
"""The columns of ``between``."""


def between(times, ends=None, start: float | None = None, end: float | None = None,
            longer_than: float | None = None, after: float | None = None) -> pd.DataFrame:
    """Every stretch between one happening and the next, longest first.

    Happenings are instants (``times``) or spans (``times`` to ``ends``, e.g. ownerships of a
    partition). In order of their beginnings, a stretch runs from one's end to the next
    one's beginning; spans that overlap leave no stretch.

    Args:
        times: when each happening began (a sequence or a Series, whose index labels name
            the happenings in ``before`` and ``after``).
        ends: when each ended, aligned with ``times``; None: instants.
        start: if given, the time from it to the first happening is a stretch too (with no
            happening at all, the whole stretch to ``end``).
        end: if given, the time from the last happening to it is a stretch too.
        longer_than: keep only stretches strictly longer than this many seconds; None keeps
            every stretch, zero-length ones included (a hand-over in the same instant).
        after: keep only stretches ending after this time.

    Returns:
        ``GAP_COLUMNS``: start and end of each stretch, seconds, and the labels of the
        happenings before and after it (None at ``start`` or ``end``), longest first (ties
        in time order).
    """
    begins = pd.Series(times, dtype=object).astype(float)  # a Series keeps its labels
    finish = begins if ends is None else pd.Series(np.asarray(ends, dtype=float),
                                                   index=begins.index)
    keep = begins.notna() & finish.notna()
    order = np.argsort(begins[keep].to_numpy(), kind="stable")
    labels = list(begins.index[keep][order])
    opens = begins[keep].to_numpy()[order]
    closes = finish[keep].to_numpy()[order]
    if start is not None:
        labels, opens, closes = [None, *labels], np.r_[start, opens], np.r_[start, closes]
    if end is not None:
        labels, opens, closes = [*labels, None], np.r_[opens, end], np.r_[closes, end]
    frame = pd.DataFrame({"start": closes[:-1], "end": opens[1:],
                          "before": pd.Series(labels[:-1], dtype=object),
                          "after": pd.Series(labels[1:], dtype=object)})
    frame["seconds"] = frame.end - frame.start
    wanted = frame.seconds >= 0 if longer_than is None else frame.seconds > longer_than
    if after is not None:
        wanted &= frame.end > after
    frame = frame[wanted].astype({"start": float, "end": float, "seconds": float})
    return (frame.sort_values("seconds", ascending=False, kind="stable")
            .reset_index(drop=True)[list(GAP_COLUMNS)])


def longest(times, after: float | None = None) -> tuple[float, float]:
    """The longest stretch between two consecutive times, e.g. of consumed messages.

    Args:
        times: event times (any order).
        after: consider only stretches ending after this time.

    Returns:
        (start, end) of the stretch; (nan, nan) if there is none.
    """
    found = between(times, after=after)
    if found.empty:
        return float("nan"), float("nan")
    return float(found.start.iloc[0]), float(found.end.iloc[0])


def around(times, t: float) -> tuple[float, float]:
    """The stretch between consecutive times that the instant ``t`` falls in.

    Returns:
        (the last time at or before ``t``, the first after it); NaN for a side with no
        such time.
    """
    ordered = np.sort(pd.Series(times, dtype=float).dropna().to_numpy())
    i = int(np.searchsorted(ordered, t, side="right"))
    return (float(ordered[i - 1]) if i else float("nan"),
            float(ordered[i]) if i < len(ordered) else float("nan"))
