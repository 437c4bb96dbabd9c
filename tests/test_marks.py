"""The lab mark: how a message carries its run, msg_id and send time (pure, no broker)."""

import math

import pytest

from labkit.workloads import marks


class Message:
    """Just what ``mark_of`` asks of a confluent_kafka Message."""

    def __init__(self, value, headers=None):
        self._value, self._headers = value, headers

    def value(self):
        return self._value

    def headers(self):
        return self._headers


def test_a_mark_round_trips_and_leads_the_value():
    run_id = marks.new_run_id()
    kept = marks.mark_of(Message(marks.mark(run_id, 7, 1_700_000_000_123_456_789) + b"payload"))
    assert len(kept) == marks.MARK_SIZE == 24 and kept.startswith(b"lab\x01")
    assert marks.read(kept) == (run_id, 7, 1_700_000_000_123_456_789)
    assert marks.lab_ids(kept) == (run_id, 7, 1_700_000_000.123456789)


def test_headers_name_a_message_as_well():
    kept = marks.mark_of(Message(b"x", marks.headers("0badcafe", 42, 5_000_000_000)))
    assert marks.read(kept) == ("0badcafe", 42, 5_000_000_000)


@pytest.mark.parametrize("message", [
    Message(None), Message(b""), Message(b"lab\x01short"), Message(b"{\"json\": 1}"),
    Message(b"x", [("other", b"1")]),
])
def test_other_messages_are_not_lab_ones(message):
    kept = marks.mark_of(message)
    with pytest.raises(ValueError, match="not a lab message"):
        marks.read(kept)
    run_id, msg_id, sent = marks.lab_ids(kept)
    assert (run_id, msg_id) == ("", -1) and math.isnan(sent)


def test_decode_reads_many_marks_at_once_and_headers_one_by_one():
    runs = [marks.new_run_id() for _ in range(3)]
    kept = [marks.mark_of(Message(marks.mark(runs[i % 3], i, (100 + i) * 10**9) + b"."))
            for i in range(300)]
    kept += [marks.mark_of(Message(b"v", marks.headers(runs[0], 1000, 7 * 10**9))), None]
    frame = marks.decode(kept)
    assert list(frame.run_id[:300]) == [runs[i % 3] for i in range(300)]
    assert list(frame.msg_id[:300]) == list(range(300))
    assert list(frame.t_produced[:300]) == [100.0 + i for i in range(300)]
    assert tuple(frame.iloc[300]) == (runs[0], 1000, 7.0)
    assert frame.iloc[301].run_id == "" and frame.iloc[301].msg_id == -1
    assert marks.decode([]).empty


def test_a_run_id_must_be_eight_hex_digits():
    with pytest.raises(ValueError, match="run_id='run-1' must be 8 hex digits"):
        marks.head("run-1")


def test_marks_of_keeps_a_whole_batch_in_one_block_or_falls_back_per_message():
    from confluent_kafka import Message as KafkaMessage

    run_id = marks.new_run_id()
    marked = [KafkaMessage(topic="t", value=marks.mark(run_id, i, 10**18 + i) + b"x" * i)
              for i in range(20)]
    block = marks.marks_of(marked)
    assert isinstance(block, bytes) and len(block) == 20 * marks.MARK_SIZE
    assert marks.each(block) == [marks.mark_of(m) for m in marked]
    assert list(marks.decode(marks.each(block)).msg_id) == list(range(20))
    # A few messages are kept one by one (a NumPy call would cost more than it saves).
    assert marks.marks_of(marked[:3]) == [marks.mark_of(m) for m in marked[:3]]
    # One message without a mark (no value, a short one, headers, a foreign value): per message.
    for odd in (KafkaMessage(topic="t", value=None), KafkaMessage(topic="t", value=b"lab\x01"),
                KafkaMessage(topic="t", value=b"payload only", headers=marks.headers(run_id, 9, 5)),
                KafkaMessage(topic="t", value=b"z" * 30)):
        kept = marks.marks_of([*marked[:2], odd, *marked[2:]])
        assert kept == [marks.mark_of(m) for m in [*marked[:2], odd, *marked[2:]]]
        assert marks.each(kept) is kept
    assert marks.marks_of([]) == []


def test_decode_batches_reads_blocks_as_they_are_and_mixed_batches_per_mark():
    from confluent_kafka import Message as KafkaMessage

    runs = [marks.new_run_id() for _ in range(2)]
    batches = [[KafkaMessage(topic="t", value=marks.mark(runs[b], i, 10**18 + i) + b"x")
                for i in range(20 * b, 20 * b + 20)] for b in range(2)]
    blocks = [marks.marks_of(batch) for batch in batches]
    assert all(isinstance(b, bytes) for b in blocks)
    every = [m for batch in batches for m in batch]
    expected = marks.decode([marks.mark_of(m) for m in every])
    assert marks.decode_batches(blocks).equals(expected)
    assert list(expected.msg_id) == list(range(40)) and set(expected.run_id) == set(runs)
    # A batch kept per message (a foreign value in it) among blocks: same rows, in order.
    odd = KafkaMessage(topic="t", value=b"payload only")
    mixed = [blocks[0], marks.marks_of([odd, *batches[1]]), marks.marks_of(batches[0][:2])]
    rows = marks.decode_batches(mixed)
    assert list(rows.msg_id) == [*range(20), -1, *range(20, 40), 0, 1]
    assert rows.run_id[20] == "" and rows.run_id[21] == runs[1]
    assert marks.decode_batches([]).empty
