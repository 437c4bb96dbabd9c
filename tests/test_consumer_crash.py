"""A consumer with a SQLite side effect crashes mid-batch: counting logic without a broker,
and each strategy's real behaviour against the session's 3-broker cluster."""

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from confluent_kafka import Producer

from labkit.analysis.accounting import tally
from labkit.analysis.consumer_faults import around_crash, side_effect_outcomes
from labkit.cluster import unique_name
from labkit.experiments.side_effects import STRATEGIES, CrashRun, crash_each, crash_point
from labkit.viz import plots
from labkit.workloads.producer import run_producer

# -- pure logic -------------------------------------------------------------------------------


def test_tally_counts_duplicates_losses_and_foreign_rows():
    counts = tally(range(5), [0, 1, 1, 1, 3, 99])
    assert counts == {"expected": 5, "found": 5, "distinct": 3, "duplicates": 2,
                      "duplicated_ids": 1, "lost": 2, "foreign": 1}
    assert set(tally([], []).values()) == {0}


def test_crash_point_falls_inside_the_batch_holding_the_message():
    assert crash_point(processed=0, batch=100, crash_after=250) is None
    assert crash_point(processed=200, batch=100, crash_after=250) == 50
    assert crash_point(processed=200, batch=100, crash_after=250, within=0.2) == 20
    # Never at either edge of the batch: one message done, one left, at least.
    assert crash_point(processed=200, batch=100, crash_after=250, within=0.001) == 1
    assert crash_point(processed=200, batch=100, crash_after=250, within=0.999) == 99
    assert crash_point(processed=200, batch=2, crash_after=200) == 1
    # A batch of one message cannot be crashed in mid-batch: the next one is.
    assert crash_point(processed=250, batch=1, crash_after=250) is None
    assert crash_point(processed=251, batch=10, crash_after=250) == 5


def _run(strategy: str, received: pd.DataFrame, effect_ids: list[int], **extra) -> CrashRun:
    crash = received[~received.processed].batch.iloc[0]
    batch = received[received.batch == crash]
    fields = {"strategy": strategy, "group_id": "g", "crash_batch": int(crash),
              "batch_messages": len(batch), "before_crash": int(batch.processed.sum()),
              "received": received,
              "effects": pd.DataFrame({"run_id": "r", "msg_id": effect_ids}),
              "uncommitted": None, "output_topic": "", "open_after_crash": 0,
              "open_after_restart": 0, "seconds": 0.0}
    return CrashRun(**{**fields, **extra})


class _Produced:
    """The two fields of a ProducerRun the tables read."""

    run_id = "r"
    records = pd.DataFrame({"msg_id": range(8), "partition": [0, 0, 0, 0, 1, 1, 1, 1],
                            "offset": [0, 1, 2, 3, 0, 1, 2, 3], "error": [""] * 8})


# The crashing worker got messages 0-3 from partition 0 in batches of two and crashed after
# the first message of its second batch; 4-7 only the replacement received.
_RECEIVED = pd.DataFrame({"batch": [1, 1, 2, 2], "partition": [0] * 4, "offset": [0, 1, 2, 3],
                          "msg_id": [0, 1, 2, 3], "processed": [True, True, True, False]})


def test_predictions_follow_the_order_of_commit_and_side_effect():
    runs = {s: _run(s, _RECEIVED, []) for s in STRATEGIES}
    assert runs["at-most-once"].predicted() == {"duplicates": 0, "lost": 1}
    assert runs["at-least-once"].predicted() == {"duplicates": 1, "lost": 0}
    assert runs["exactly-once-sqlite"].predicted() == {"duplicates": 0, "lost": 0}
    assert runs["exactly-once-kafka"].predicted() == {"duplicates": 0, "lost": 0}


def test_outcomes_count_each_view_against_the_input():
    committed = pd.DataFrame({"run_id": "r", "msg_id": range(8)})
    uncommitted = pd.DataFrame({"run_id": ["r"] * 9 + ["other"], "msg_id": [*range(8), 2, 2]})
    runs = {
        "at-least-once": _run("at-least-once", _RECEIVED, [0, 1, 2, 2, 3, 4, 5, 6, 7]),
        "at-most-once": _run("at-most-once", _RECEIVED, [0, 1, 2, 4, 5, 6, 7]),
        "exactly-once-kafka": _run("exactly-once-kafka", _RECEIVED, [], effects=committed,
                                   uncommitted=uncommitted),
    }
    table = side_effect_outcomes(runs, _Produced)
    assert list(table.index) == ["at-least-once", "at-most-once", "exactly-once-kafka",
                                 "exactly-once-kafka, read_uncommitted"]
    assert table.loc["at-least-once", ["duplicates", "lost", "found"]].tolist() == [1, 0, 9]
    assert table.loc["at-most-once", ["duplicates", "lost"]].tolist() == [0, 1]
    assert table.loc["exactly-once-kafka", ["duplicates", "lost"]].tolist() == [0, 0]
    # The other run's row in the output is not counted.
    row = table.loc["exactly-once-kafka, read_uncommitted"]
    assert (row.duplicates, row.predicted_duplicates, row.side_effect) == (
        1, 1, "output topic, read_uncommitted")
    assert (table.duplicates == table.predicted_duplicates).all()
    assert (table.lost == table.predicted_lost).all()


def test_around_crash_lines_messages_up_on_the_crash():
    uncommitted = pd.DataFrame({"run_id": "r", "msg_id": [0, 1, 2, 2, 3, 4, 5, 6, 7]})
    runs = {"at-most-once": _run("at-most-once", _RECEIVED, [0, 1, 2, 4, 5, 6, 7]),
            "exactly-once-kafka": _run("exactly-once-kafka", _RECEIVED, range(8),
                                       uncommitted=uncommitted)}
    strips = around_crash(runs, _Produced)
    assert list(strips) == ["at-most-once", "exactly-once-kafka",
                            "exactly-once-kafka, read_uncommitted"]
    strip = strips["at-most-once"]
    assert strip.msg_id.tolist() == list(range(8))
    assert strip.position.tolist() == list(range(-3, 5))
    assert strip.copies.tolist() == [1, 1, 1, 0, 1, 1, 1, 1]
    assert strip.stage.tolist() == ["before", "before", "crash batch, processed",
                                    "crash batch, not processed"] + ["after"] * 4
    assert strips["exactly-once-kafka"].copies.tolist() == [1] * 8
    assert strips["exactly-once-kafka, read_uncommitted"].copies.tolist() == [1, 1, 2] + [1] * 5


def test_plot_draws_one_strip_per_label():
    import matplotlib

    matplotlib.use("Agg")
    runs = {"a": _run("at-most-once", _RECEIVED, [0, 1, 2, 4, 5, 6, 7]),
            "b": _run("at-least-once", _RECEIVED, [0, 1, 2, 2, 3, 4, 5, 6, 7])}
    fig = plots.rows_around_crash(around_crash(runs, _Produced), around=2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("kwargs, message", [
    ({"strategies": ["at-most-once", "exactly-twice"]},
     "strategy 'exactly-twice' is not known; use some of at-most-once, at-least-once"),
    ({"strategies": []}, "no strategy given; use some of"),
    ({"strategies": ["at-least-once", "at-least-once"]}, "'at-least-once' is given twice"),
    ({"crash_at": 1.0}, "crash_at=1.0 must be a share of the input strictly between 0 and 1"),
    ({"within": 0}, "within=0 must be a share of the crash batch"),
    ({"batch_size": 1}, "batch_size=1 must be an integer >= 2"),
])
def test_bad_arguments_are_refused_before_anything_starts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        crash_each(None, "no-such-topic", **kwargs)  # no cluster needed to refuse them


# -- against the real broker --------------------------------------------------------------------


@pytest.fixture(scope="module")
def crashed(cluster3):
    """Every strategy over the same 1,000 messages, each crashed mid-batch once."""
    topic = unique_name("crash-input")
    cluster3.create_topic(topic, 3)
    produced = run_producer(cluster3, {"acks": "all"}, messages=1000, keys="uniform",
                            topics=[topic])
    before = set(Path(tempfile.gettempdir()).glob("labkit-side-effects-*"))
    runs = crash_each(cluster3, topic, crash_at=0.4, within=0.3, batch_size=50)
    left = set(Path(tempfile.gettempdir()).glob("labkit-side-effects-*")) - before
    yield runs, produced, side_effect_outcomes(runs, produced), left
    cluster3.delete_topic(topic)
    cluster3.delete_topic(runs["exactly-once-kafka"].output_topic)


def test_every_worker_crashed_mid_batch_and_left_no_database_behind(crashed):
    runs, produced, table, left = crashed
    assert list(runs) == list(STRATEGIES)
    for run in runs.values():
        assert 0 < run.before_crash < run.batch_messages
        # The crash came in the batch holding message 400 of 1,000.
        # (Or in the next one, after a batch of a single message.)
        done = (run.received.batch < run.crash_batch).sum()
        sizes = run.received.groupby("batch").size()
        assert done <= 400 < done + run.batch_messages or sizes.get(run.crash_batch - 1) == 1
    assert (table.expected == produced.delivered).all()
    assert not left


def test_at_most_once_loses_the_rest_of_the_batch_and_never_duplicates(crashed):
    _, _, table, _ = crashed
    row = table.loc["at-most-once"]
    assert row.duplicates == 0
    assert row.lost == row.batch_messages - row.before_crash > 0


def test_at_least_once_redoes_the_processed_part_and_never_loses(crashed):
    _, _, table, _ = crashed
    row = table.loc["at-least-once"]
    assert row.lost == 0
    assert row.duplicates == row.before_crash > 0


def test_offsets_in_the_same_sqlite_transaction_are_exactly_once(crashed):
    _, _, table, _ = crashed
    row = table.loc["exactly-once-sqlite"]
    assert (row.duplicates, row.lost, row.found) == (0, 0, row.expected)


def test_transactional_output_is_exactly_once_for_read_committed_readers(crashed):
    runs, _, table, _ = crashed
    row = table.loc["exactly-once-kafka"]
    assert (row.duplicates, row.lost, row.found) == (0, 0, row.expected)
    # The zombie's records are in the log, in the transaction the replacement aborted.
    raw = table.loc["exactly-once-kafka, read_uncommitted"]
    assert raw.duplicates == row.before_crash and raw.lost == 0
    run = runs["exactly-once-kafka"]
    assert run.open_after_crash == run.before_crash
    assert run.open_after_restart == 0


def test_a_topic_without_lab_marks_is_refused(cluster3):
    topic = unique_name("crash-foreign")
    cluster3.create_topic(topic, 1)
    producer = Producer(cluster3.client_config())
    for i in range(3):
        producer.produce(topic, b"x", str(i).encode())
    assert producer.flush(10) == 0
    with pytest.raises(ValueError, match=r"offset 0 carries no lab mark"):
        crash_each(cluster3, topic, strategies=["at-least-once"], timeout=30)
    cluster3.delete_topic(topic)


def test_an_empty_topic_is_refused(cluster3):
    topic = unique_name("crash-empty")
    cluster3.create_topic(topic, 1)
    with pytest.raises(ValueError, match="holds 0 message"):
        crash_each(cluster3, topic)
    cluster3.delete_topic(topic)


def test_duplicates_and_losses_write_every_count_zeros_too():
    import matplotlib

    matplotlib.use("Agg")
    table = pd.DataFrame({"duplicates": [0, 3], "lost": [2, 0]}, index=["a", "b"])
    fig = plots.duplicates_and_losses(table, "t")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["0 duplicates", "0 lost", "2 lost",
                                                       "3 duplicates"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    matplotlib.pyplot.close(fig)
