"""labkit.analysis.message_size on hand-made records (pure: no broker)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from labkit.analysis import message_size as sizing
from labkit.experiments.message_size import CONSUMER_PROBE_COLUMNS, PROBE_COLUMNS


def _run(label, size, delivered, wall_s, txmsgs, tx_bytes, retries=0):
    records = pd.DataFrame({"msg_id": np.arange(delivered), "size": size, "error": "",
                            "latency_ms": 1.0, "t_send": np.linspace(0, wall_s, delivered),
                            "t_delivered": np.linspace(0, wall_s, delivered) + 0.001})
    stats = [{"txmsgs": txmsgs, "tx_bytes": tx_bytes, "txmsg_bytes": delivered * size,
              "brokers": {"b1": {"nodeid": 1, "txretries": retries, "req_timeouts": 0,
                                 "txbytes": tx_bytes, "tx": 3},
                          "boot": {"nodeid": -1, "txretries": 5}},
              "topics": {"t": {"batchcnt": {"cnt": 2, "sum": delivered}, "batchsize": {}}}}]
    return SimpleNamespace(label=label, records=records, stats=stats, wall_s=wall_s,
                           delivered=delivered, sent=delivered, failed=0, unreported=0,
                           buffer_errors=0, workload={"size": size}, throughput=delivered / wall_s)


def test_size_table_gives_rates_and_wire_overhead_per_size():
    runs = [_run("100 B", 100, 1000, 0.5, 1000, 110_000),
            _run("1 KiB", 1024, 100, 0.25, 100, 103_400)]
    table = sizing.size_table(runs)
    assert list(table.index) == [100, 1024]
    assert table.loc[100, "msgs_per_s"] == 2000 and table.loc[1024, "msgs_per_s"] == 400
    assert table.loc[100, "mb_per_s"] == 100 * 1000 / 0.5 / 1e6
    assert table.loc[100, "overhead_bytes_per_msg"] == 10
    assert table.loc[1024, "overhead_bytes_per_msg"] == 1034 - 1024
    assert table.loc[100, "batch_msgs_avg"] == 500


def test_stats_against_records_shows_where_librdkafka_counted_more():
    runs = [_run("a", 100, 1000, 1, 1000, 1), _run("b", 100, 1000, 1, 1012, 1, retries=2)]
    table = sizing.stats_against_records(runs)
    assert table.loc["a", "extra_txmsgs"] == 0 and table.loc["b", "extra_txmsgs"] == 12
    assert table.loc["b", "retries"] == 2  # the bootstrap pseudo-broker is left out
    assert table.loc["a", "value_bytes"] == table.loc["a", "stats_txmsg_bytes"] == 100_000


def _probes():
    rows = [
        ("producer", "producer message.max.bytes=1,000,000", 1_000_000, "producer (librdkafka)",
         "defaults", "search", 500_000, 0, "t1", "acknowledged", "", "", 3.0),
        ("producer", "producer message.max.bytes=1,000,000", 1_000_000, "producer (librdkafka)",
         "defaults", "just below", 999_964, 1, "t1", "acknowledged", "", "", 3.0),
        ("producer", "producer message.max.bytes=1,000,000", 1_000_000, "producer (librdkafka)",
         "defaults", "just above", 999_965, 2, "t1", "refused by produce()",
         "MSG_SIZE_TOO_LARGE", "Unable to produce message", np.nan),
    ] + [("batch", "topic max.message.bytes=65,536", 65536, "broker", "linger.ms=100",
          "default batching", 39321, 3 + i, "t2", "failed in the delivery report",
          "MSG_SIZE_TOO_LARGE", "Broker: Message size too large", 5.0) for i in range(3)]
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


def _read_back(ids):
    return pd.DataFrame({"topic": [t for t, _ in ids], "msg_id": [m for _, m in ids]})


def test_read_back_mismatches_find_acknowledged_but_missing_and_refused_but_present():
    probes = _probes()
    assert sizing.read_back_mismatches(probes, _read_back([("t1", 0), ("t1", 1)])).empty
    odd = sizing.read_back_mismatches(probes, _read_back([("t1", 0), ("t1", 2)]))
    assert list(odd.msg_id) == [1, 2]
    # The same msg_id in another topic is another message.
    elsewhere = _read_back([("t1", 0), ("t2", 1)])
    assert list(sizing.read_back_mismatches(probes, elsewhere).msg_id) == [1]


def test_limit_table_leaves_the_search_out_and_folds_a_batch_into_one_row():
    table = sizing.limit_table(_probes(), _read_back([("t1", 0), ("t1", 1)]))
    assert list(table.probe) == ["just below", "just above", "default batching"]
    below, above, batch = (table.iloc[i] for i in range(3))
    assert below["in topic"] == "yes" and above["in topic"] == "no"
    assert above["how the application learns"] == "produce() raised KafkaException"
    assert above["size"] == "999,965 B" and above.error == "MSG_SIZE_TOO_LARGE"
    assert batch["size"] == "3 x 39,321 B" and batch["in topic"] == "0 of 3"
    assert batch["how the application learns"] == "3 x delivery report with an error"


def test_limit_table_words_the_consumer_outcomes():
    base = {"step": "consumer", "limit_bytes": 65536, "read_s": np.nan, "error": "", "text": "",
            "callback_errors": 0, "poll_errors": 0}
    reads = pd.DataFrame([
        {**base, "case": "a", "limit": "x=65,536", "config": "x=65,536", "probe": "just below",
         "value_bytes": 64512, "outcome": "read", "read_s": 0.25},
        {**base, "case": "a", "limit": "x=65,536", "config": "x=65,536", "probe": "just above",
         "value_bytes": 66560, "outcome": "not read", "error": "_BAD_MSG",
         "callback_errors": 4, "poll_errors": 1},
        {**base, "case": "b", "limit": "y=65,536", "config": "y=65,536", "probe": "just below",
         "value_bytes": 64512, "outcome": "consumer refused", "error": "_INVALID_ARG"},
        {**base, "case": "b", "limit": "y=65,536", "config": "y=65,536", "probe": "just above",
         "value_bytes": 66560, "outcome": "consumer refused", "error": "_INVALID_ARG"},
    ], columns=CONSUMER_PROBE_COLUMNS)
    table = sizing.limit_table(_probes().iloc[:0], _read_back([]), reads, stall_s=5)
    assert len(table) == 3  # the refused consumer is one row
    learned = list(table["how the application learns"])
    assert learned[0] == "poll() returned it after 0.25 s"
    assert learned[1] == ("poll() returned nothing for 5 s (a stall); errors: 4 from the error "
                          "callback, 1 from poll()")
    assert learned[2] == "Consumer() raised KafkaException"
    assert table.probe.iloc[2] == "none: no consumer"
    assert list(sizing.consumer_case(reads, "a").index) == ["just below", "just above"]


def test_fared_says_how_many_passed_and_why_the_others_did_not():
    probes = _probes()
    assert sizing.fared(probes[probes.probe == "default batching"]) == (
        "0 of 3 acknowledged, 3 refused (MSG_SIZE_TOO_LARGE)")
    assert sizing.fared(probes.iloc[:2]) == "2 of 2 acknowledged"
    assert list(sizing.probe(probes, "producer", "just above").msg_id) == [2]
