"""A captured librdkafka debug log, read back: its lines as a DataFrame, and those around a moment.

The file is what ``labkit.workloads.client_logs.capture`` writes, one line per log line::

    <wall, epoch seconds> <level> <facility> [<client name>] [thrd:<thread>]: <text>

Pure: nothing here talks to Kafka.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

LOG_COLUMNS = ("wall", "t", "level", "facility", "client", "thread", "text")
"""The columns of ``read_log``, in order."""

_LINE = re.compile(r"^(?P<wall>\d+\.\d+) (?P<level>\w+) (?P<facility>\S+) \[(?P<client>[^\]]*)\] "
                   r"(?:\[thrd:(?P<thread>[^\]]*)\]: )?(?P<text>.*)$")



def read_log(path: str | os.PathLike, zero_wall: float | None = None) -> pd.DataFrame:
    """Parse a captured log file.

    Args:
        path: a file written through ``capture``.
        zero_wall: the wall time (epoch seconds) that is 0 in column ``t``, e.g. a fault;
            default the first line's.

    Returns:
        One row per line, columns ``LOG_COLUMNS``: wall (epoch seconds), t (seconds since
        ``zero_wall``), level (e.g. "DEBUG"), facility (librdkafka's, e.g. "ERRSEQ",
        "DRAIN", "PRODUCE"), client (e.g. "rdkafka#producer-3"), thread (the librdkafka
        thread, e.g. "127.0.0.1:9092/2", "" if none), text. A line that does not parse
        is kept whole in text, with the previous line's time.
    """
    rows: list[tuple] = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            line = line.rstrip("\n")
            match = _LINE.match(line)
            if match:
                rows.append((float(match["wall"]), match["level"], match["facility"],
                             match["client"], match["thread"] or "", match["text"]))
            elif line:
                wall = rows[-1][0] if rows else np.nan
                rows.append((wall, "", "", "", "", line))
    log = pd.DataFrame(rows, columns=["wall", "level", "facility", "client", "thread", "text"])
    zero = (log.wall.iloc[0] if len(log) else 0.0) if zero_wall is None else zero_wall
    log.insert(1, "t", log.wall - zero)
    return log[list(LOG_COLUMNS)]


def lines_around(log: pd.DataFrame, times: Iterable[float], before_s: float = 0.5,
           after_s: float = 0.5, facilities: Iterable[str] | None = None,
           contains: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """The log lines within a window around any of the given moments.

    Args:
        log: ``read_log`` output.
        times: moments on the log's ``t`` clock (seconds since its ``zero_wall``), e.g. the
            ``sent_s`` and ``acked_s`` of ``audit.evidence`` rows computed with the same
            zero; NaN values are ignored.
        before_s: seconds kept before each moment.
        after_s: seconds kept after it.
        facilities: keep only these librdkafka facilities (e.g. {"ERRSEQ", "DRAIN"}).
        contains: keep only lines whose text contains this (case-insensitive regex).
        limit: keep at most this many lines, the ones nearest to a moment (then back in
            time order).

    Returns:
        The matching rows of ``log`` in time order, with a column ``from_nearest_s`` (the
        line's time minus the nearest moment).

    Raises:
        ValueError: a negative window.
    """
    if before_s < 0 or after_s < 0:
        raise ValueError(f"before_s={before_s!r} and after_s={after_s!r} must be >= 0")
    moments = np.sort(np.asarray([t for t in times if t == t], dtype=float))
    if not len(moments) or log.empty:
        return log.iloc[:0].assign(from_nearest_s=pd.Series(dtype=float))
    t = log.t.to_numpy(dtype=float)
    # The nearest moment to each line: the one just before or just after it.
    right = np.clip(np.searchsorted(moments, t), 0, len(moments) - 1)
    left = np.clip(right - 1, 0, len(moments) - 1)
    diff_right, diff_left = t - moments[right], t - moments[left]
    nearest = np.where(np.abs(diff_left) < np.abs(diff_right), diff_left, diff_right)
    # In the window of some moment: some moment m with m - before <= t <= m + after.
    first_after = np.searchsorted(moments, t - after_s, side="left")
    inside = (first_after < len(moments)) & (
        moments[np.clip(first_after, 0, len(moments) - 1)] <= t + before_s)
    keep = pd.Series(inside, index=log.index)
    if facilities is not None:
        keep &= log.facility.isin(list(facilities))
    if contains is not None:
        keep &= log.text.str.contains(contains, case=False, regex=True)
    out = log[keep].assign(from_nearest_s=nearest[keep.to_numpy()])
    if limit is not None and len(out) > limit:
        out = out.loc[out.from_nearest_s.abs().sort_values(kind="stable").index[:limit]]
        out = out.sort_index()
    return out
