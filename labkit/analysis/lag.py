"""Consumer lag from three sources, lined up on one clock and compared (pure pandas).

Inputs are the records of ``labkit.experiments.consumer_lag.LagRun`` (every ``t`` in
seconds since the group started, ``partition`` a "topic-partition" name):

- ``stats``: librdkafka's statistics of each member's owned partitions, ``t`` when
  librdkafka took them; ``consumer_lag_stored`` is the end of the log as the member's last
  fetch response said (``hi_offset``, or ``ls_offset`` under read_committed) minus its
  stored offset (what it will commit next), ``consumer_lag`` the same minus its last
  committed offset.
- ``positions``: each member's position (the next offset its poll hands over), read right
  after each poll; it holds until the next poll.
- ``offsets``: samples of the high watermark (asked of the leader) and the group's committed
  offset (asked of the coordinator), taken between ``t`` and ``t_done``.

``lag_table`` gives, at each sample of ``offsets``, the lag of each partition from the three
sources and how much they may differ; ``agreement`` summarises it; ``total_lag`` sums the
partitions for a plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SOURCES = {
    "stats": "librdkafka statistics (consumer_lag_stored)",
    "position": "high watermark − position",
    "committed": "high watermark − committed offset",
}
"""The three sources of ``lag_table`` (its ``lag_<source>`` columns) and their names."""

LAG_COLUMNS = [
    "t", "t_done", "partition", "member", "high_watermark", "committed", "position",
    "high_cached", "stats_t", "stats_hi", "stats_committed", "lag_stats", "lag_stats_committed",
    "lag_committed", "lag_position", "lag_client", "allowance_stats", "allowance_committed",
    "comparable_stats", "comparable_committed"]
"""Columns of ``lag_table``."""


def _asof(rows: pd.DataFrame, samples: pd.DataFrame, at: str, columns: dict[str, str],
          on: str = "t") -> pd.DataFrame:
    """For each of ``rows``, the newest of ``samples`` whose ``on`` <= ``rows[at]``.

    Returns:
        ``columns`` (sample column -> name) on the index of ``rows``; NaN where none.
    """
    right = pd.DataFrame({"_key": samples[on].to_numpy(),
                          **{new: samples[old].to_numpy() for old, new in columns.items()}})
    found = pd.merge_asof(rows[[at]].reset_index().sort_values(at), right.sort_values("_key"),
                          left_on=at, right_on="_key", direction="backward")
    return found.set_index("index").drop(columns=[at, "_key"]).reindex(rows.index)


def _owned(frame: pd.DataFrame, own) -> pd.DataFrame:
    """The rows of ``frame`` of one ownership: its partition and member, within its time."""
    return frame[(frame.partition == own.partition) & (frame.member == own.member)
                 & (frame.t >= own.start) & (frame.t <= own.end)]


def lag_table(stats: pd.DataFrame, positions: pd.DataFrame, offsets: pd.DataFrame,
              ownership: pd.DataFrame, stats_interval_s: float,
              commit_interval_s: float) -> pd.DataFrame:
    """The lag of each partition at each offsets sample from three sources, and their margins.

    At a sample (asked at ``t``, answered by ``t_done``) of a partition owned by one member:

    - ``lag_position`` = high watermark − that member's position at ``t`` (read before the
      high watermark, so never negative);
    - ``lag_committed`` = the same high watermark − the committed offset;
    - ``lag_stats`` = ``consumer_lag_stored`` of the member's newest statistics taken by
      ``t_done`` (``lag_stats_committed``: its ``consumer_lag``);
    - ``lag_client`` = what the member itself could compute at ``t`` with no request: the
      high watermark of its last fetch response (``high_cached``) − its position (the
      Java client's ``records-lag``).

    What "agree" means. The true lag (end of the log minus position) moves only as messages
    are produced (the end grows) and consumed (the position grows). Each source is a high
    watermark read at one moment minus a position reached at another; if both moments lie
    in a window, two sources differ by at most the messages produced plus consumed in that
    window: the allowance. For the statistics the window is one ``statistics.interval.ms``
    before the sample to its answer (``[t - stats_interval_s, t_done]``): the newest
    statistics are at most one interval old, and their high watermark came with the
    member's last fetch response. The committed offset is the position at the last auto
    commit, up to ``auto.commit.interval.ms`` before, plus the commit's trip to the
    coordinator, given one statistics interval too: ``[t - commit_interval_s -
    stats_interval_s, t_done]``. The growth is read from the records themselves: the high
    watermark from the newest sample answered by the window's start to the next sample
    after this one, the position from the start of the window to ``t_done``; both can only
    overstate it.

    A comparison needs one owner throughout the window (a new owner starts again from the
    committed offset) and a position (and statistics) of that owner from inside it;
    otherwise ``comparable_stats`` / ``comparable_committed`` is False.

    Args:
        stats: librdkafka statistics rows (t, member, partition, hi_offset,
            committed_offset, consumer_lag, consumer_lag_stored).
        positions: position rows (t, member, partition, position).
        offsets: offsets samples (t, t_done, partition, high_watermark, committed).
        ownership: ``metrics.ownership`` of the group's events.
        stats_interval_s: the members' statistics.interval.ms, in seconds.
        commit_interval_s: their auto.commit.interval.ms, in seconds.

    Returns:
        ``LAG_COLUMNS``, one row per sample and partition, by t then partition.
    """
    grid = offsets.sort_values(["t", "partition"]).reset_index(drop=True)
    # The high watermark by the end of a window: the next sample's (asked after t_done).
    high_end = grid.groupby("partition").high_watermark.shift(-1) \
        .fillna(grid.high_watermark).clip(lower=grid.high_watermark)
    grid["member"] = None
    grid["comparable_stats"] = grid["comparable_committed"] = False
    for column in LAG_COLUMNS:
        if column not in grid:
            grid[column] = np.nan
    valid = stats[stats.consumer_lag_stored >= 0]
    windows = {"stats": stats_interval_s, "committed": commit_interval_s + stats_interval_s}
    for own in ownership.itertuples(index=False):
        rows = grid[(grid.partition == own.partition) & (grid.t >= own.start)
                    & (grid.t_done <= own.end)]
        pos, st = _owned(positions, own), _owned(valid, own)
        if rows.empty or pos.empty:
            continue
        grid.loc[rows.index, "member"] = own.member
        now = _asof(rows, pos, "t", {"position": "p", "high_cached": "h"})
        grid.loc[rows.index, "position"], grid.loc[rows.index, "high_cached"] = now.p, now.h
        pos_end = _asof(rows, pos, "t_done", {"position": "p"}).p
        if len(st):
            got = _asof(rows, st, "t_done", {"t": "stats_t", "hi_offset": "stats_hi",
                                             "committed_offset": "stats_committed",
                                             "consumer_lag_stored": "lag_stats",
                                             "consumer_lag": "lag_stats_committed"})
            grid.loc[rows.index, got.columns] = got
        high = grid[grid.partition == own.partition]
        for source, window in windows.items():
            since = rows.assign(_from=rows.t - window)
            hw_then = _asof(since, high, "_from", {"high_watermark": "hw"}, on="t_done").hw
            pos_then = _asof(since, pos, "_from", {"position": "p"}).p
            grid.loc[rows.index, f"allowance_{source}"] = \
                (high_end[rows.index] - hw_then) + (pos_end - pos_then)
            needs = grid.loc[rows.index, "lag_stats" if source == "stats" else "committed"]
            grid.loc[rows.index, f"comparable_{source}"] = (
                (since._from >= own.start) & pos_then.notna() & hw_then.notna()
                & grid.loc[rows.index, "position"].notna() & needs.notna()).to_numpy(bool)
    grid["lag_position"] = grid.high_watermark - grid.position
    grid["lag_committed"] = grid.high_watermark - grid.committed
    grid["lag_client"] = (grid.high_cached - grid.position).where(grid.high_cached >= 0)
    return grid[LAG_COLUMNS]


def agreement(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each source against ``lag_position``, where comparable: the difference and allowance.

    Returns:
        "stats" and "committed" -> the comparable rows of ``lag_table`` with ``difference``
        (source − position, messages), ``allowance`` and ``within`` (|difference| <=
        allowance).
    """
    out = {}
    for source in ("stats", "committed"):
        rows = table[table[f"comparable_{source}"]].copy()
        rows["difference"] = rows[f"lag_{source}"] - rows.lag_position
        rows["allowance"] = rows[f"allowance_{source}"]
        rows["within"] = rows.difference.abs() <= rows.allowance
        out[source] = rows
    return out


def total_lag(table: pd.DataFrame, partitions: list[str],
              sources=(*SOURCES, "stats_committed")) -> pd.DataFrame:
    """Lag summed over ``partitions`` per offsets sample, per source (NaN if any is missing).

    Args:
        table: ``lag_table``.
        partitions: the partitions to sum.
        sources: which ``lag_<source>`` columns (default: ``SOURCES`` and librdkafka's
            ``consumer_lag``, "stats_committed").

    Returns:
        Index t (when the sample was asked for); a column per source.
    """
    out = {}
    for source in sources:
        wide = table.pivot_table(index="t", columns="partition", values=f"lag_{source}",
                                 aggfunc="first", dropna=False).reindex(columns=partitions)
        out[source] = wide.sum(axis=1, min_count=len(partitions)).where(wide.notna().all(axis=1))
    return pd.DataFrame(out)


def catch_up(total: pd.Series, added_s: float) -> dict[str, float]:
    """The peak of a total lag series before ``added_s``, and when it first fell back.

    Returns:
        peak (messages), peak_s (when), low (the least after the peak), low_s (when it was
        first reached), drain_s (``low_s - added_s``).
    """
    before = total[total.index <= added_s].dropna()
    after = total[total.index > added_s].dropna()
    if before.empty or after.empty:
        return {"peak": np.nan, "peak_s": np.nan, "low": np.nan, "low_s": np.nan,
                "drain_s": np.nan}
    low_s = float(after.idxmin())
    return {"peak": float(before.max()), "peak_s": float(before.idxmax()),
            "low": float(after.min()), "low_s": low_s, "drain_s": low_s - added_s}


def owned_stats(stats: pd.DataFrame, ownership: pd.DataFrame) -> pd.DataFrame:
    """The statistics rows of partitions their member owned when librdkafka took them."""
    parts = [_owned(stats, own) for own in ownership.itertuples(index=False)]
    return pd.concat(parts).sort_index() if parts else stats.iloc[:0]


def fetched_high_behind(stats: pd.DataFrame, offsets: pd.DataFrame) -> pd.Series:
    """How far librdkafka's fetched high watermark was behind the broker's, per statistics row.

    The row's ``hi_offset`` (from the member's last fetch response) is compared with the
    high watermark of the newest offsets sample answered by the row's ``t``: a positive
    value means the member's last fetch response was older than that sample.

    Args:
        stats: statistics rows of owned partitions (``owned_stats``).
        offsets: offsets samples.

    Returns:
        Messages (that high watermark − ``hi_offset``) by stats row; rows with no sample
        answered before them are left out.
    """
    rows = stats[stats.hi_offset >= 0]
    parts = []
    for part, mine in rows.groupby("partition"):
        high = offsets[offsets.partition == part]
        got = _asof(mine, high, "t", {"high_watermark": "hw"}, on="t_done")
        parts.append((got.hw - mine.hi_offset).dropna())
    return pd.concat(parts).sort_index() if parts else pd.Series(dtype=float)


def committed_ahead_of_stored(stats: pd.DataFrame) -> pd.DataFrame:
    """Statistics rows whose committed offset was ahead of the stored offset.

    librdkafka's ``consumer_lag`` counts from the committed offset and
    ``consumer_lag_stored`` from the stored one; auto commit commits stored offsets, so for
    the partition's owner the first can never be the smaller.

    Args:
        stats: statistics rows of owned partitions (``owned_stats``).

    Returns:
        The rows (with both lags) where ``consumer_lag < consumer_lag_stored``.
    """
    both = stats[(stats.consumer_lag >= 0) & (stats.consumer_lag_stored >= 0)]
    return both[both.consumer_lag < both.consumer_lag_stored]


SNAPSHOT_NAMES = {"partition": "partition", "member": "owner", "high_watermark": "high watermark",
                  "committed": "committed offset", "position": "position",
                  "lag_stats": "consumer_lag_stored", "lag_stats_committed": "consumer_lag",
                  "lag_committed": "high watermark − committed",
                  "lag_position": "high watermark − position",
                  "lag_client": "cached high watermark − position"}
"""The columns ``snapshot`` shows, with their names for people."""


def snapshot(table: pd.DataFrame, t: float) -> pd.DataFrame:
    """The partitions at the offsets sample asked nearest ``t``, under plain names.

    Returns:
        One row per partition, columns ``SNAPSHOT_NAMES``'s values (offsets and lags in
        messages; NaN where a source had nothing yet).
    """
    nearest = table.t.iloc[(table.t - t).abs().argmin()]
    rows = table[table.t == nearest][list(SNAPSHOT_NAMES)]
    rows = rows.assign(partition=rows.partition.str.rsplit("-", n=1).str[1].astype(int))
    return rows.rename(columns=SNAPSHOT_NAMES).set_index("partition")


def processed_per_second(messages: pd.DataFrame, start: float, end: float) -> float:
    """Messages the group processed per second between ``start`` and ``end`` (its ``t``)."""
    if not end > start:
        return float("nan")
    return float(((messages.t >= start) & (messages.t < end)).sum() / (end - start))


def blind_after_assign(stats: pd.DataFrame, ownership: pd.DataFrame,
                       after: float = 0.0) -> pd.DataFrame:
    """How long after each assignment librdkafka had no ``consumer_lag_stored`` to give.

    The stored offset is set when a message of the partition is handed to the application,
    so a new owner reports -1 until its first poll returns one, however long the backlog.
    ``consumer_lag`` (from the committed offset) is known as soon as the committed offset
    is fetched.

    Args:
        stats: statistics rows (t, member, partition, consumer_lag, consumer_lag_stored).
        ownership: ``metrics.ownership``.
        after: only ownerships that started after this time.

    Returns:
        One row per ownership: partition, member, start, blind_s (from the assignment to
        the first statistics with ``consumer_lag_stored``; NaN if none came), unknown (how
        many statistics before that one had none), lag_meanwhile (the largest
        ``consumer_lag`` those reported; NaN if none).
    """
    rows = []
    for own in ownership[ownership.start > after].itertuples(index=False):
        mine = _owned(stats, own).sort_values("t")
        known = mine.consumer_lag_stored >= 0
        first = float(mine.t[known].iloc[0]) if known.any() else np.nan
        before = mine[~known.cummax()]
        meanwhile = before.consumer_lag[before.consumer_lag >= 0]
        rows.append((own.partition, own.member, own.start, first - own.start, len(before),
                     float(meanwhile.max()) if len(meanwhile) else np.nan))
    return pd.DataFrame(rows, columns=["partition", "member", "start", "blind_s", "unknown",
                                       "lag_meanwhile"])


def first_assign_after(events: pd.DataFrame, t: float) -> float:
    """When the first partitions were assigned after ``t`` (a group's events), else NaN."""
    later = events[(events.kind == "assign") & (events.t > t)]
    return float(later.t.min()) if len(later) else float("nan")


def log_growth_per_second(offsets: pd.DataFrame, start: float, end: float) -> float:
    """Messages per second the partitions' logs grew by between ``start`` and ``end``.

    From the offsets samples asked in that stretch: all high watermarks of the last one
    minus those of the first, over the time between them (NaN with fewer than two).
    """
    asked = offsets[(offsets.t >= start) & (offsets.t <= end)]
    totals = asked.groupby("t").high_watermark.sum()
    if len(totals) < 2:
        return float("nan")
    return float((totals.iloc[-1] - totals.iloc[0]) / (totals.index[-1] - totals.index[0]))
