"""What bounded a flat-out run: the rules on constructed numbers (pure), then the cluster's
CPU reading and the experiment on the session's real cluster (broker tier)."""

import math

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import bounds


def run(label="acks=1", kind="labkit", messages=100_000, wall_s=1.0, thread=0.5, waiting=0.1,
        process=0.7, brokers=0.8, machine=1.6, cores=2, samples=10, full=0, buffer_errors=0):
    """One recorded run (``bounds.RUN_COLUMNS``), CPU and waits given as shares of ``wall_s``."""
    return {"label": label, "kind": kind, "messages": messages, "wall_s": wall_s,
            "thread_cpu_s": thread * wall_s, "thread_wait_s": waiting * wall_s,
            "process_cpu_s": process * wall_s,
            "broker_cpu_s": brokers * wall_s, "machine_cpu_s": machine * wall_s,
            "cores": cores, "queue_samples": samples, "queue_full_samples": full,
            "buffer_errors": buffer_errors}


def sample(ts_s, msg_cnt, msg_max=100_000, msg_size=0, msg_size_max=1 << 30):
    return {"ts": ts_s * 1e6, "msg_cnt": msg_cnt, "msg_max": msg_max, "msg_size": msg_size,
            "msg_size_max": msg_size_max}


# -- the queue's fill -------------------------------------------------------------------------


def test_queue_fill_is_the_fuller_of_count_and_bytes():
    fill = bounds.queue_fill([sample(1, 95_000), sample(2, 10, msg_size=950, msg_size_max=1000),
                              sample(3, 50_000)])
    assert fill.fill.round(2).tolist() == [0.95, 0.95, 0.5]
    assert fill.full.tolist() == [True, True, False]
    assert fill.t.tolist() == [1, 2, 3]


def test_queue_fill_keeps_the_samples_inside_the_window():
    stats = [sample(t, 100_000) for t in (1.0, 2.0, 3.0, 4.0)]
    assert bounds.queue_fill(stats, start=1.5, end=3.0).t.tolist() == [2.0, 3.0]
    assert bounds.queue_fill([]).empty


def test_queue_fill_of_a_sample_without_limits_is_zero():
    assert bounds.queue_fill([sample(1, 5, msg_max=0, msg_size_max=0)]).fill.tolist() == [0.0]


# -- the rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(("thread", "waiting", "machine", "queue", "expected"), [
    (0.95, 0.0, 0.95, 0.6, "queue"),  # a full queue wins: the client waited, whatever its CPU
    (0.95, 0.0, 0.95, 0.1, "client thread"),  # it had its core: its own work set the pace
    (0.60, 0.1, 0.95, 0.1, "machine"),  # the cores were busy: it shared them
    (0.60, 0.35, 0.80, 0.1, "machine"),  # it waited for a core although the average had room
    (0.60, 0.1, 0.50, 0.1, "none"),  # blocked a third of the time: waiting set the pace
    (0.60, math.nan, 0.50, math.nan, "none"),  # nothing measured: nothing claimed
    (bounds.THREAD_SATURATED, 0.0, 0.0, bounds.QUEUE_BOUND_SHARE - 0.01, "client thread"),
    (0.0, 0.0, bounds.MACHINE_SATURATED, 0.0, "machine"),
])
def test_the_first_saturated_side_is_the_bound(thread, waiting, machine, queue, expected):
    assert bounds.bound(thread, waiting, machine, queue) == expected
    assert expected in bounds.BOUNDS and expected in bounds.BOUND_WORDS


def test_per_run_turns_seconds_into_cores_per_side():
    row = bounds.per_run(pd.DataFrame([run(wall_s=2.0, thread=0.5, process=0.7, brokers=0.8,
                                           machine=1.9, samples=8, full=2)])).iloc[0]
    assert row.msgs_per_s == 50_000
    assert row.thread_cores == pytest.approx(0.5)
    assert row.thread_waiting == pytest.approx(0.1)
    assert row.librdkafka_cores == pytest.approx(0.2)
    assert row.broker_cores == pytest.approx(0.8)
    assert row.others_cores == pytest.approx(0.4)
    assert row.machine_busy == pytest.approx(0.95)
    assert row.queue_full_share == 0.25
    assert row.bound == "machine"


def test_a_machine_not_measured_counts_the_client_and_the_brokers():
    rows = pd.DataFrame([run(thread=0.5, process=0.7, brokers=1.2, machine=math.nan),
                         run(thread=0.5, process=0.7, brokers=math.nan, machine=math.nan)])
    measured = bounds.per_run(rows)
    assert measured.machine_busy.round(2).tolist() == [0.95, 0.35]
    assert measured.others_cores.isna().all()
    assert measured.bound.tolist() == ["machine", "none"]


def test_a_run_without_statistics_has_no_queue_share():
    assert math.isnan(bounds.per_run(pd.DataFrame([run(samples=0)])).queue_full_share[0])


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"lack the columns \['cores'\]"):
        bounds.per_run(pd.DataFrame([run()]).drop(columns="cores"))


# -- per setting ------------------------------------------------------------------------------


def rounds(label, *rates, messages=50_000, **cpu):
    return [run(label, "bare", messages=messages, wall_s=messages / rate, **cpu) for rate in rates]


def test_table_puts_labkit_beside_the_median_of_the_bare_rounds():
    rows = pd.DataFrame([
        *rounds("acks=all", 200_000), run("acks=all", wall_s=2.0), *rounds("acks=all", 300_000),
        run("acks=0", wall_s=1.0, thread=0.95), *rounds("acks=0", 250_000, 250_000, 200_000),
    ])
    table = bounds.table(rows)
    assert list(table.index) == ["acks=all", "acks=0"]  # in the order first run
    first = table.loc["acks=all"]
    assert first.msgs_per_s == 50_000
    assert first.bare_msgs_per_s == 250_000
    assert first.ratio == pytest.approx(0.2)
    assert (first.bare_low, first.bare_high, first.bare_rounds) == (200_000, 300_000, 2)
    assert first.bare_spread == pytest.approx(1 / 3)
    assert table.loc["acks=0", "bare_msgs_per_s"] == 250_000
    assert table.loc["acks=0", "bound"] == "client thread"
    assert table.loc["acks=all", "bound"] == "none"


def test_the_bare_rounds_get_one_bound_over_all_of_them():
    rows = pd.DataFrame([run("a"), *rounds("a", 100_000, messages=100_000, samples=10, full=9),
                         *rounds("a", 100_000, messages=100_000, samples=10, full=0)])
    row = bounds.table(rows).loc["a"]
    assert row.bare_queue_full_share == 0.45  # 9 of 20 samples
    assert row.bare_bound == "none"


def test_a_setting_without_bare_rounds_has_no_ceiling():
    table = bounds.table(pd.DataFrame([run("a"), run("b"), *rounds("b", 100_000)]))
    assert np.isnan(table.loc["a", ["bare_msgs_per_s", "ratio", "bare_spread"]].astype(float)).all()
    assert table.loc["a", "bare_bound"] == "" and table.loc["a", "bare_rounds"] == 0
    assert table.loc["b", "bare_rounds"] == 1 and table.loc["b", "bare_spread"] == 0
    assert bounds.table(pd.DataFrame([run("a")])).bare_bound.tolist() == [""]


def test_grouped_takes_medians_and_the_most_common_bound():
    rows = [run("none/0", wall_s=1.0, thread=0.95), *rounds("none/0", 200_000),
            run("none/5", wall_s=0.5, samples=10, full=8), *rounds("none/5", 300_000),
            run("none/50", wall_s=0.25, thread=0.95), *rounds("none/50", 400_000),
            run("gzip/0", wall_s=4.0, samples=10, full=10), *rounds("gzip/0", 50_000)]
    table = bounds.table(pd.DataFrame(rows))
    summary = bounds.grouped(table, [label.split("/")[0] for label in table.index])
    assert list(summary.index) == ["none", "gzip"]
    none = summary.loc["none"]
    assert (none.settings, none.msgs_per_s, none.bare_msgs_per_s) == (3, 200_000, 300_000)
    assert (none.bound, none.bound_count) == ("client thread", 2)
    assert none.ratio == pytest.approx(200_000 / 300_000)
    assert summary.loc["gzip", "bound"] == "queue" and summary.loc["gzip", "ratio"] == 0.5


# -- whether the comparison means something ---------------------------------------------------


def settings(rates, bare_rates, thread=0.5, others=0.05):
    """A table of settings, machine-bound (client 0.7 + brokers 1.15 + others of 2 cores)."""
    rows = []
    for (label, rate), pair in zip(rates.items(), bare_rates, strict=True):
        rows += [run(label, wall_s=100_000 / rate, thread=thread, process=0.7, brokers=1.15,
                     machine=1.85 + others), *rounds(label, *pair)]
    return bounds.table(pd.DataFrame(rows))


def test_every_setting_bound_by_the_client_thread_compares_labkit_not_the_settings():
    verdict = bounds.weigh(settings({"a": 100_000, "b": 50_000},
                                      [(300_000, 300_000), (290_000, 310_000)], thread=0.95))
    assert not verdict.meaningful and verdict.reason == "client thread"
    assert verdict.bounds == ["client thread"] and "sending thread" in verdict.words


def test_a_machine_shared_with_other_processes_compares_their_load_too():
    verdict = bounds.weigh(settings({"a": 100_000, "b": 50_000},
                                      [(300_000, 310_000), (150_000, 155_000)], others=0.3))
    assert verdict.bounds == ["machine"] and verdict.others == pytest.approx(0.3)
    assert (verdict.meaningful, verdict.reason) == (False, "neighbours")
    quiet = bounds.weigh(settings({"a": 100_000, "b": 50_000},
                                    [(300_000, 310_000), (150_000, 155_000)], others=0.1))
    assert quiet.reason == "settings"  # 0.1 of 2 cores is housekeeping, below the share


def test_differences_within_the_bare_spread_mean_nothing():
    verdict = bounds.weigh(settings({"a": 100_000, "b": 90_000},
                                      [(200_000, 300_000), (250_000, 260_000)]))
    assert verdict.differ == pytest.approx(0.1)
    assert verdict.spread == pytest.approx(1 / 3)  # measured from the larger, as differ is
    assert (verdict.meaningful, verdict.reason) == (False, "spread")
    assert (verdict.fastest, verdict.slowest) == ("a", "b")


def test_differences_beyond_the_bare_spread_are_the_settings():
    verdict = bounds.weigh(settings({"a": 100_000, "b": 50_000},
                                      [(300_000, 310_000), (150_000, 155_000)]))
    assert verdict.bounds == ["machine"]
    assert verdict.meaningful and verdict.reason == "settings"
    assert verdict.bare_differ == pytest.approx(0.5, abs=0.01)
    assert verdict.words.startswith("the settings differ by more")


def test_one_bare_round_per_setting_cannot_tell():
    verdict = bounds.weigh(settings({"a": 100_000, "b": 50_000}, [(300_000,), (150_000,)]))
    assert (verdict.meaningful, verdict.reason) == (False, "no spread")
    assert math.isnan(verdict.spread)


# -- on the real cluster ----------------------------------------------------------------------


def test_the_cluster_reports_the_cpu_of_every_node(cluster3):
    from labkit.cluster import ExternalCluster, LocalCluster
    from labkit.workloads.producer import run_producer

    before = cluster3.cpu_seconds()
    assert set(before) == {"broker 1", "broker 2", "broker 3", "controller"}
    assert all(seconds > 0 for seconds in before.values())  # they started: they used CPU
    run_producer(cluster3, {"acks": "all"}, messages=20_000, size=100)
    after = LocalCluster.attach(cluster3.state_file).cpu_seconds()  # from the state file too
    assert set(after) == set(before)
    assert sum(after.values()) > sum(before.values())
    assert ExternalCluster(cluster3.bootstrap_servers).cpu_seconds() == {}  # not measurable


def test_flat_out_records_every_side_of_every_run(cluster3):
    from labkit.experiments import ceiling

    results = ceiling.flat_out(cluster3, {"acks=1": {"acks": "1"}, "acks=all": {"acks": "all"}},
                               messages=4_000, size=100, stats_interval_ms=50,
                               bare_messages=2_000)
    assert [r.label for r in results] == ["acks=1", "acks=all"]
    runs = ceiling.runs_table(results)
    assert list(runs.kind) == ["labkit", "bare", "bare"] * 2
    assert set(bounds.RUN_COLUMNS) <= set(runs.columns)
    assert (runs.messages == [4_000, 2_000, 2_000] * 2).all()
    for column in ("wall_s", "thread_cpu_s", "process_cpu_s", "broker_cpu_s", "machine_cpu_s"):
        assert (runs[column] > 0).all(), column
    assert (runs.thread_wait_s >= 0).all() and (runs.thread_wait_s < runs.wall_s).all()
    # labkit waits for a statistics sample after its flush; a bare round shorter than the
    # interval may have none (its queue share is then NaN: no queue bound is claimed).
    assert (runs[runs.kind == "labkit"].queue_samples >= 1).all()
    assert (runs.queue_full_samples <= runs.queue_samples).all()
    assert all(r.run.delivered == 4_000 and r.bare_s > 0 for r in results)
    table = bounds.table(runs)
    assert set(table.bound) <= set(bounds.BOUNDS) and table.bare_rounds.tolist() == [2, 2]
    assert not [t for t in cluster3.admin().list_topics(timeout=10).topics
                if t.startswith("ceiling-")]  # its own topic is gone


# -- the experiment's measuring, without a broker ---------------------------------------------


def test_the_machine_busy_share_never_exceeds_the_cores():
    from labkit.experiments import ceiling

    before = ceiling.machine_cpu_seconds()
    assert before is not None and 0 <= before[0] <= before[1]
    assert ceiling._machine_used((10.0, 100.0), (13.0, 104.0), wall_s=2.0) == pytest.approx(
        3 / 4 * ceiling.machine_cores() * 2.0)
    assert math.isnan(ceiling._machine_used((1.0, 1.0), (1.0, 1.0), wall_s=1.0))


def test_the_sampler_interpolates_to_the_run_window():
    import time

    from labkit.experiments import ceiling

    class Ticking:  # half a core of "broker" CPU, on the perf_counter clock
        def cpu_seconds(self):
            return {"broker 1": 0.5 * time.perf_counter()}

    with ceiling.CpuSampler(Ticking(), interval=0.01) as sampler:
        start = time.perf_counter()
        time.sleep(0.2)
        end = time.perf_counter()
    machine, broker, waited = sampler.between(start + 0.05, end - 0.05)
    assert broker == pytest.approx(0.5 * (end - start - 0.1), rel=0.05)
    assert 0 <= machine <= ceiling.machine_cores() * (end - start)
    assert 0 <= waited <= end - start  # this thread slept: it hardly waited for a core

    class Elsewhere:
        def cpu_seconds(self):
            return {}

    with ceiling.CpuSampler(Elsewhere(), interval=0.01) as sampler:
        start = time.perf_counter()
        time.sleep(0.05)
    assert math.isnan(sampler.between(start, start + 0.01)[1])  # not measurable: NaN, not 0


@pytest.mark.parametrize(("arguments", "message"), [
    ({"bare_rounds": 0}, "bare_rounds=0 must be a positive integer"),
    ({"bare_messages": 0}, "bare_messages=0 must be a positive integer"),
    ({"configs": {"a": {"acks": "2"}}}, "producer config acks='2' is not allowed"),
])
def test_flat_out_refuses_bad_arguments_before_it_runs_anything(arguments, message):
    from labkit.experiments import ceiling

    given = {"configs": {"a": {"acks": "1"}}, "messages": 100, **arguments}
    with pytest.raises(ValueError, match=message):
        ceiling.flat_out(None, **given)  # no cluster needed: nothing runs
