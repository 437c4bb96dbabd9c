"""labkit.analysis.lag: three lag sources lined up and compared, on made-up records (no broker)."""

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import lag, metrics

P0, P1 = "t-0", "t-1"


def frames(end: float = 10.0, produce: float = 10.0, consume: float = 8.0,
           commit_every: float = 2.0, stats_every: float = 0.5, owner_events=None,
           partitions=(P0,)):
    """Records of a group where a partition grows at ``produce`` msg/s and is read at ``consume``.

    Offsets samples every second (each answered 0.1 s after it was asked), positions every
    0.25 s, statistics every ``stats_every`` s, commits every ``commit_every`` s.
    """
    def high(t):
        return np.floor(produce * t)

    def position(t):
        return np.floor(consume * t)

    def committed(t):
        return position(np.floor(t / commit_every) * commit_every)

    events = owner_events if owner_events is not None else pd.DataFrame(
        [(0.0, "m1", "assign", list(partitions), ""), (end, "m1", "leave", [], "")],
        columns=["t", "member", "kind", "partitions", "detail"])
    own = metrics.ownership(events)
    offsets, positions, stats = [], [], []
    for part in partitions:
        for t in np.arange(1.0, end, 1.0):
            offsets.append((t, t + 0.1, part, high(t), committed(t)))
        for row in own[own.partition == part].itertuples():
            for t in np.arange(row.start, row.end, 0.25):
                positions.append((t, row.member, part, position(t), high(t)))
            for t in np.arange(row.start + stats_every, row.end, stats_every):
                hi, stored, done = high(t), position(t), committed(t)
                stats.append((t, row.member, part, hi, stored, done, hi - done, hi - stored))
    return (pd.DataFrame(stats, columns=["t", "member", "partition", "hi_offset", "stored_offset",
                                         "committed_offset", "consumer_lag",
                                         "consumer_lag_stored"]),
            pd.DataFrame(positions, columns=["t", "member", "partition", "position",
                                             "high_cached"]),
            pd.DataFrame(offsets, columns=["t", "t_done", "partition", "high_watermark",
                                           "committed"]),
            own, events)


def table_of(stats, positions, offsets, own, stats_interval_s=0.5, commit_interval_s=2.0):
    return lag.lag_table(stats, positions, offsets, own, stats_interval_s, commit_interval_s)


def test_each_source_reads_what_it_should():
    stats, positions, offsets, own, _ = frames()
    table = table_of(stats, positions, offsets, own)
    row = table[table.t == 5.0].iloc[0]
    assert row.member == "m1"
    assert row.lag_position == 50 - 40  # high watermark at 5 s minus the position at 5 s
    assert row.lag_committed == 50 - 32  # committed at the 4 s commit
    assert row.lag_stats == 50 - 40  # the statistics taken at 5.0 s, by t_done 5.1 s
    assert row.lag_stats_committed == 50 - 32
    assert row.lag_client == 50 - 40  # its cached high watermark (current here) − position


def test_sources_within_one_interval_agree_and_the_allowance_is_the_window_growth():
    stats, positions, offsets, own, _ = frames()
    table = table_of(stats, positions, offsets, own)
    agree = lag.agreement(table)
    assert len(agree["stats"]) and agree["stats"].within.all()
    assert len(agree["committed"]) and agree["committed"].within.all()
    row = agree["stats"][agree["stats"].t == 5.0].iloc[0]
    # Window [5 - 0.5, 5.1]: high watermark from the sample answered by 4.5 s (4.1: 40) to
    # the next sample (6 s: 60); position from 4.5 s (36) to 5.1 s (40).
    assert row.allowance == (60 - 40) + (40 - 36)


def test_a_source_off_by_more_than_the_window_does_not_agree():
    stats, positions, offsets, own, _ = frames()
    stats.loc[stats.t == 5.0, "consumer_lag_stored"] += 100
    agree = lag.agreement(table_of(stats, positions, offsets, own))
    off = agree["stats"][~agree["stats"].within]
    assert list(off.t) == [5.0] and off.difference.iloc[0] == 100


def test_samples_before_the_window_fits_the_ownership_are_not_compared():
    stats, positions, offsets, own, _ = frames()
    table = table_of(stats, positions, offsets, own)
    # The committed window is 2.5 s: the samples at 1 s and 2 s start before the assignment,
    # the one at 3 s before the first high watermark was answered (1.1 s).
    assert not table[table.t <= 3].comparable_committed.any()
    assert table[table.t >= 4].comparable_committed.all()


def test_a_partition_that_changed_hands_is_compared_only_after_a_full_window():
    events = pd.DataFrame([(0.0, "m1", "assign", [P0], ""), (4.0, "m1", "revoke", [P0], ""),
                           (4.2, "m2", "assign", [P0], ""), (10.0, "m2", "leave", [], "")],
                          columns=["t", "member", "kind", "partitions", "detail"])
    stats, positions, offsets, own, _ = frames(owner_events=events)
    table = table_of(stats, positions, offsets, own)
    assert table[table.t == 4.0].member.isna().all()  # answered after the revoke: no owner
    after = table[table.t > 4.2]
    assert (after.member == "m2").all()
    assert not after[after.t - 0.5 < 4.2].comparable_stats.any()
    assert after[after.t - 0.5 >= 4.2].comparable_stats.all()


def test_total_lag_sums_partitions_and_is_missing_when_one_is():
    events = pd.DataFrame([(0.0, "m1", "assign", [P0, P1], ""), (10.0, "m1", "leave", [], "")],
                          columns=["t", "member", "kind", "partitions", "detail"])
    stats, positions, offsets, own, _ = frames(owner_events=events, partitions=(P0, P1))
    table = table_of(stats, positions, offsets, own)
    total = lag.total_lag(table, [P0, P1])
    assert total.loc[5.0, "position"] == 2 * 10
    assert list(total.columns) == [*lag.SOURCES, "stats_committed"]
    table.loc[(table.t == 5.0) & (table.partition == P1), "lag_position"] = np.nan
    assert np.isnan(lag.total_lag(table, [P0, P1]).loc[5.0, "position"])


def test_catch_up_finds_the_peak_before_the_change_and_the_low_after():
    total = pd.Series([0, 50, 100, 80, 20, 0, 5], index=[1, 2, 3, 4, 5, 6, 7], dtype=float)
    got = lag.catch_up(total, added_s=3.5)
    assert got == {"peak": 100, "peak_s": 3, "low": 0, "low_s": 6, "drain_s": 2.5}
    assert np.isnan(lag.catch_up(total, added_s=10)["peak"])


def test_snapshot_names_partitions_by_number():
    stats, positions, offsets, own, _ = frames()
    shot = lag.snapshot(table_of(stats, positions, offsets, own), 5.04)
    assert list(shot.index) == [0]
    assert shot.loc[0, "high watermark − position"] == 10
    assert list(shot.columns) == list(lag.SNAPSHOT_NAMES.values())[1:]


def test_committed_ahead_of_stored_is_found():
    stats, *_ = frames()
    assert lag.committed_ahead_of_stored(stats).empty
    stats.loc[stats.t == 3.0, "consumer_lag"] = 0
    assert list(lag.committed_ahead_of_stored(stats).t) == [3.0]


def test_fetched_high_behind_compares_with_the_sample_answered_before():
    stats, _, offsets, own, _ = frames()
    behind = lag.fetched_high_behind(lag.owned_stats(stats, own), offsets)
    assert (behind <= 0).all()  # the statistics' high watermark is never older here
    stats.loc[stats.t == 5.5, "hi_offset"] = 20
    behind = lag.fetched_high_behind(stats, offsets)
    assert behind.max() == 50 - 20


def test_blind_after_assign_measures_the_time_without_a_stored_lag():
    events = pd.DataFrame([(0.0, "m1", "assign", [P0], ""), (4.0, "m1", "revoke", [P0], ""),
                           (4.2, "m2", "assign", [P0], ""), (10.0, "m2", "leave", [], "")],
                          columns=["t", "member", "kind", "partitions", "detail"])
    stats, _, _, own, _ = frames(owner_events=events)
    early = stats.member.eq("m2") & (stats.t < 5.5)
    stats.loc[early, "consumer_lag_stored"] = -1
    blind = lag.blind_after_assign(stats, own, after=1.0)
    assert list(blind.member) == ["m2"]
    assert blind.blind_s.iloc[0] == pytest.approx(5.7 - 4.2)
    assert blind.unknown.iloc[0] == early.sum() == 2  # at 4.7 and 5.2 s; known at 5.7 s
    assert blind.lag_meanwhile.iloc[0] == stats[early].consumer_lag.max()
    stats.loc[early, "consumer_lag_stored"] = 1
    assert lag.blind_after_assign(stats, own, after=1.0).unknown.iloc[0] == 0


def test_processed_per_second_and_first_assign_after():
    messages = pd.DataFrame({"t": [0.5, 1.0, 1.5, 2.0, 3.5]})
    assert lag.processed_per_second(messages, 1.0, 3.0) == 1.5
    assert np.isnan(lag.processed_per_second(messages, 3.0, 3.0))
    _, _, _, _, events = frames()
    assert lag.first_assign_after(events, -1) == 0.0
    assert np.isnan(lag.first_assign_after(events, 0.0))


def test_log_growth_per_second_reads_the_samples_in_the_stretch():
    _, _, offsets, _, _ = frames(produce=10.0)
    assert lag.log_growth_per_second(offsets, 2.0, 6.0) == 10.0
    assert np.isnan(lag.log_growth_per_second(offsets, 2.0, 2.5))
