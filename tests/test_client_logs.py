"""librdkafka debug log capture: parsing and windows on hand-made files (no broker), and a
real producer against the session's single broker writing eos and msg lines."""

import pytest

from labkit.analysis import logs
from labkit.cluster import unique_name
from labkit.workloads.producer import run_producer

CLIENT, BROKER = "[rdkafka#producer-1]", "[thrd:127.0.0.1:9092/1]:"
LINES = f"""\
100.000000 DEBUG IDEMPSTATE {CLIENT} [thrd:main]: Idempotent producer state change Init -> Assigned
100.500000 DEBUG PRODUCE {CLIENT} {BROKER} t [0]: Produce MessageSet with 3 message(s)
continued text of the line above
101.000000 DEBUG MSGSET {CLIENT} {BROKER} t [0]: MessageSet with 3 message(s) delivered
103.000000 WARNING REQTMOUT {CLIENT} {BROKER} Timed out ProduceRequest
"""


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "client.log"
    path.write_text(LINES)
    return logs.read_log(path, zero_wall=100.5)


def test_read_log_splits_each_line_and_puts_it_on_the_given_clock(log):
    assert list(log.columns) == list(logs.LOG_COLUMNS)
    assert log.t.tolist() == [-0.5, 0.0, 0.0, 0.5, 2.5]
    assert log.facility.tolist() == ["IDEMPSTATE", "PRODUCE", "", "MSGSET", "REQTMOUT"]
    assert log.thread.iloc[1] == "127.0.0.1:9092/1" and log.client.iloc[0] == "rdkafka#producer-1"
    assert log.text.iloc[2] == "continued text of the line above"
    assert log.level.iloc[-1] == "WARNING"


def test_around_keeps_the_lines_in_the_window_of_any_moment(log):
    near = logs.lines_around(log, [0.0, float("nan")], before_s=0.6, after_s=0.1)
    assert near.facility.tolist() == ["IDEMPSTATE", "PRODUCE", ""]
    assert near.from_nearest_s.tolist() == [-0.5, 0.0, 0.0]
    both = logs.lines_around(log, [2.4, 0.0], before_s=0.0, after_s=0.5)
    assert both.facility.tolist() == ["PRODUCE", "", "MSGSET", "REQTMOUT"]
    only = logs.lines_around(log, [0.0, 2.5], 5, 5, facilities={"REQTMOUT", "MSGSET"})
    assert only.facility.tolist() == ["MSGSET", "REQTMOUT"]
    assert logs.lines_around(log, [0.0], 5, 5, contains="timed out").facility.tolist() == [
        "REQTMOUT"]
    nearest = logs.lines_around(log, [0.5], 5, 5, limit=2)
    assert nearest.facility.tolist() == ["PRODUCE", "MSGSET"]  # back in time order
    assert logs.lines_around(log, [], 1, 1).empty


def test_around_refuses_a_negative_window(log):
    with pytest.raises(ValueError, match="before_s=-1 and after_s=0 must be >= 0"):
        logs.lines_around(log, [0.0], before_s=-1, after_s=0)


def test_a_producer_captures_its_debug_log_only_when_asked(cluster1, tmp_path):
    topic = unique_name("client-log")
    cluster1.create_topic(topic, partitions=2)
    config = {"enable.idempotence": True, "linger.ms": 5}
    plain = run_producer(cluster1, config, messages=50, topics=[topic])
    assert plain.client_log_file is None
    path = tmp_path / "producer.log"
    run = run_producer(cluster1, config, messages=200, rate=400, topics=[topic],
                       client_log_file=path)
    assert run.delivered == 200 and run.client_log_file == str(path)
    log = logs.read_log(path, zero_wall=run.started_wall)
    facilities = set(log.facility)
    assert "IDEMPSTATE" in facilities  # eos: the idempotent producer's state machine
    assert {"PRODUCE", "MSGSET"} <= facilities  # msg: every batch sent and delivered
    assert log.wall.is_monotonic_increasing
    # The lines sit on the run's clock: the batches between the first send and the last ack.
    batches = log[log.facility == "MSGSET"]
    assert batches.t.min() >= run.records.t_send.min() - 0.5
    assert batches.t.max() <= run.records.t_delivered.max() + 0.5
    delivered = logs.lines_around(log, [run.records.t_delivered.max()], 1, 1,
                                   facilities={"MSGSET"}, contains="delivered")
    assert len(delivered) >= 1
    cluster1.delete_topic(topic)


def test_setting_in_effect_is_the_configs_value_or_librdkafkas_default():
    from labkit.workloads.producer import setting_in_effect

    assert setting_in_effect({}, "socket.timeout.ms") == "60000"
    assert setting_in_effect({"socket.timeout.ms": 3000}, "socket.timeout.ms") == "3000"
    assert setting_in_effect({"enable.idempotence": True}, "enable.idempotence") == "true"
    assert setting_in_effect({}, "message.timeout.ms") == "300000"  # a topic-level property
    with pytest.raises(ValueError, match="no configuration property 'socket.timeout'"):
        setting_in_effect({}, "socket.timeout")
