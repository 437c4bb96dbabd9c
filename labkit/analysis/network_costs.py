"""What a network costs a producer: round trips, requests, bytes on the wire.

Pure pandas on recorded producer runs and on the lab network's connection table; nothing
here talks to Kafka. A *run* is a ``labkit.workloads.producer.ProducerRun`` or anything with
its attributes ``records``, ``stats`` (librdkafka statistics, one dict per sample),
``config``, ``workload`` (``rate``), ``sent``, ``delivered``, ``failed`` and ``wall_s``.
*Connections* are rows of ``Network.connections()`` (``labkit.cluster.network``:
src, dst, client_id, opened, bytes_up, bytes_down, state) with one more column, ``read``
(UTC timestamp): when they were read, so every byte they count had passed by then.

The bounds here follow from the lab network's rules, so they hold on a busy machine too:

- a delay of ``d`` ms on a link holds every byte at least ``d`` ms, less the proxy's timer
  slack (it passes a byte on once less than the slack is left to wait). With ``acks=all``
  the leader answers only once every in-sync follower has fetched the message: the fetch
  response carrying it crosses to a follower (``d``) and the follower's next fetch, which
  says it has it, crosses back (``d``), so no ``acks=all`` delivery can take less than
  ``2 * (d - slack)`` (``round_trip_floor``);
- a rate limit of ``mbit`` on a link passes a chunk only once its transmission time at that
  rate has gone by, counted from the first byte read, so a link carries at most
  ``mbit / 8`` MB per second from its first connection's opening (``link_bounds``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis import client_stats, metrics

ACKS_ALL = ("all", "-1")
"""The spellings of ``acks=all``."""

DELAY_COLUMNS = ("acks", "offered_per_s", "sent", "delivered", "failed", "msgs_per_s",
                 "share_of_offered", "min_ms", "p50_ms", "p99_ms", "max_ms",
                 "produce_requests", "msgs_per_request", "requests_per_s_per_broker",
                 "settled_s")
"""The columns of ``delay_table``."""

LINK_COLUMNS = ("offered_per_s", "sent", "delivered", "failed", "msgs_per_s",
                "share_of_offered", "offered_mbit_per_s", "payload_mbit_per_s",
                "wire_mbit_per_s", "capacity_mbit", "link_use", "wire_bytes",
                "wire_bytes_per_msg", "client_bytes_per_msg", "p50_ms", "p99_ms", "max_ms")
"""The columns of ``link_table``."""


def produce_requests(stats: list[dict]) -> pd.Series:
    """Produce requests the client sent to each broker, from its last statistics sample.

    librdkafka counts requests per broker and type (``brokers[*].req.Produce``); one
    produce request carries the batches of one partition.

    Args:
        stats: a run's librdkafka statistics (``run_producer(stats_interval_ms=...)``).

    Returns:
        Requests by broker id (int), brokers that got none left out; empty without stats.
    """
    last = client_stats.broker_windows(stats[-1:]).set_index("broker").produce_requests
    return last[last > 0].sort_index().astype("int64").rename("produce_requests")


def _delivered(records: pd.DataFrame) -> pd.DataFrame:
    return records[(records.error == "") & records.latency_ms.notna()]


def _rates(run: Any) -> dict[str, float]:
    offered = run.workload.get("rate") or np.nan
    wall = run.wall_s or np.nan
    msgs_per_s = run.delivered / wall
    return {"offered_per_s": float(offered), "sent": run.sent, "delivered": run.delivered,
            "failed": run.failed, "msgs_per_s": msgs_per_s,
            "share_of_offered": msgs_per_s / offered}


def delay_table(runs: dict[tuple[float, str], Any], warmup_s: float | None = None,
                settled_s: dict[tuple[float, str], float] | None = None) -> pd.DataFrame:
    """One row per (delay, setting): throughput, latency and produce requests.

    Args:
        runs: (one-way delay in ms, setting name) -> its run.
        warmup_s: warm-up left out of the percentiles (None: ``metrics.default_warmup``).
            ``min_ms`` counts every delivered message, the first ones too.
        settled_s: (delay, setting) -> seconds from the run's flush until the log held its
            messages (``labkit.experiments.network_latency.Measured.settled_s``), if known.

    Returns:
        Indexed by (delay_ms, setting) in the order given; ``DELAY_COLUMNS``: acks (the
        setting's, "" if it sets none), offered_per_s (the workload's rate), sent,
        delivered, failed, msgs_per_s (delivered over the run's wall time, flush included),
        share_of_offered, min_ms, p50_ms, p99_ms, max_ms (delivery latency),
        produce_requests, msgs_per_request and requests_per_s_per_broker (over the wall
        time, per broker that got requests; NaN without statistics), settled_s (NaN if
        not given).
    """
    rows = []
    for (delay, setting), run in runs.items():
        pct = metrics.latency_percentiles(run.records, warmup_s=warmup_s)
        done = _delivered(run.records)
        requests = produce_requests(run.stats)
        total = int(requests.sum()) if len(requests) else np.nan
        rows.append({
            "delay_ms": float(delay), "setting": setting,
            "acks": str(run.config.get("acks", "")), **_rates(run),
            "min_ms": float(done.latency_ms.min()) if len(done) else np.nan,
            "p50_ms": pct["p50"], "p99_ms": pct["p99"], "max_ms": pct["max"],
            "produce_requests": total, "msgs_per_request": run.delivered / total,
            "requests_per_s_per_broker": total / (run.wall_s or np.nan) / max(len(requests), 1),
            "settled_s": (settled_s or {}).get((delay, setting), np.nan),
        })
    return pd.DataFrame(rows).set_index(["delay_ms", "setting"])[list(DELAY_COLUMNS)]


def round_trip_floor(table: pd.DataFrame, slack_ms: float) -> pd.DataFrame:
    """The ``acks=all`` rows of a delay table against the follower round trip they must pay.

    Args:
        table: ``delay_table``.
        slack_ms: how much sooner than its delay the network may pass a byte on.

    Returns:
        One row per ``acks=all`` setting and delay above 0 (index as ``table``): min_ms
        (its fastest delivery), floor_ms (``2 * (delay - slack_ms)``, at least 0) and holds
        (``min_ms >= floor_ms``; False for a run with no delivery at all).
    """
    delays = table.index.get_level_values("delay_ms")
    rows = table[table.acks.isin(ACKS_ALL) & (delays > 0)]
    floor = 2 * np.maximum(rows.index.get_level_values("delay_ms") - slack_ms, 0.0)
    return pd.DataFrame({"min_ms": rows.min_ms, "floor_ms": floor,
                         "holds": rows.min_ms.to_numpy() >= floor}, index=rows.index)


def request_bounds(runs: dict[tuple[float, str], Any],
                   connections: dict[tuple[float, str], pd.DataFrame],
                   slack_ms: float) -> pd.DataFrame:
    """Each ``acks=all`` run's produce requests per broker against what the delay allows.

    A broker reads a connection's next request only once it has answered the one before
    (Kafka's protocol guide: "only a single in-flight request per connection"), and under
    a delay of ``d`` ms every ``acks=all`` answer waits at least ``2 * (d - slack_ms)``
    (``round_trip_floor``). So over a run's wall time each of its connections to a broker
    completes at most ``wall_s / (2 * (d - slack_ms))`` produce requests, however many the
    client has queued.

    Args:
        runs: (delay in ms, setting name) -> its run (with statistics).
        connections: the same keys -> the run's connections (``dst``: the broker id as text).
        slack_ms: how much sooner than its delay the network may pass a byte on.

    Returns:
        One row per ``acks=all`` run with a delay above the slack and broker it sent produce
        requests to, indexed (delay_ms, setting, broker): requests, connections (the
        client's to that broker, idle ones too), wall_s, ceiling (``connections * wall_s /
        (2 * (d - slack_ms) / 1000)``), used (requests over ceiling) and within
        (``requests <= ceiling``).
    """
    rows = []
    for (delay, setting), run in runs.items():
        acks = str(run.config.get("acks", ""))
        if acks not in ACKS_ALL or delay <= slack_ms:
            continue
        opened = connections[(delay, setting)].dst.astype(str).value_counts()
        for broker, requests in produce_requests(run.stats).items():
            count = int(opened.get(str(broker), 0))
            ceiling = count * run.wall_s / (2 * (delay - slack_ms) / 1000)
            rows.append({"delay_ms": float(delay), "setting": setting, "broker": int(broker),
                         "requests": int(requests), "connections": count,
                         "wall_s": run.wall_s, "ceiling": ceiling})
    out = pd.DataFrame(rows, columns=["delay_ms", "setting", "broker", "requests",
                                      "connections", "wall_s", "ceiling"])
    out["used"] = out.requests / out.ceiling
    out["within"] = out.requests <= out.ceiling
    return out.set_index(["delay_ms", "setting", "broker"])


def wire_bytes(connections: pd.DataFrame) -> pd.Series:
    """Bytes a client sent through the network, per broker (index: dst), from its connections."""
    return connections.groupby("dst").bytes_up.sum().rename("bytes_up")


def _client_bytes(stats: list[dict]) -> float:
    """Bytes librdkafka says it sent to brokers (``tx_bytes`` of the last sample), or NaN."""
    return float(stats[-1].get("tx_bytes", np.nan)) if stats else np.nan


def link_table(runs: dict[str, Any], connections: dict[str, pd.DataFrame],
               link_mbit: float, warmup_s: float | None = None) -> pd.DataFrame:
    """One row per run over a rate-limited client link: what got through, and at what cost.

    Args:
        runs: name (e.g. the codec) -> run.
        connections: name -> that run's connections (its client.id's rows).
        link_mbit: the rate limit of each client<->broker link, each way (Mbit/s).
        warmup_s: warm-up left out of the percentiles (None: ``metrics.default_warmup``).

    Returns:
        Indexed by name; ``LINK_COLUMNS``: offered_per_s, sent, delivered, failed,
        msgs_per_s and share_of_offered (as ``delay_table``); offered_mbit_per_s (the value
        bytes offered per second: rate times value size); payload_mbit_per_s (value bytes
        delivered per second of the run's wall time); wire_mbit_per_s (bytes the
        network carried from the client, every request and header included, per second of
        wall time); capacity_mbit (``link_mbit`` times the brokers the client sent to);
        link_use (wire over capacity); wire_bytes, wire_bytes_per_msg (per delivered
        message); client_bytes_per_msg (what librdkafka counted sending, the same quantity
        from the other end of the link); p50_ms, p99_ms, max_ms.
    """
    rows = {}
    for name, run in runs.items():
        per_broker = wire_bytes(connections[name])
        sent = float(per_broker.sum())
        wall = run.wall_s or np.nan
        delivered = max(run.delivered, 1)
        payload = float(run.records.loc[run.records.error == "", "size"].sum())
        pct = metrics.latency_percentiles(run.records, warmup_s=warmup_s)
        capacity = link_mbit * len(per_broker)
        rows[name] = {
            **_rates(run),
            "offered_mbit_per_s": (run.workload.get("rate") or np.nan)
            * run.workload.get("size", np.nan) * 8 / 1e6,
            "payload_mbit_per_s": payload * 8 / wall / 1e6,
            "wire_mbit_per_s": sent * 8 / wall / 1e6, "capacity_mbit": capacity,
            "link_use": sent * 8 / wall / 1e6 / capacity if capacity else np.nan,
            "wire_bytes": sent, "wire_bytes_per_msg": sent / delivered,
            "client_bytes_per_msg": _client_bytes(run.stats) / delivered,
            "p50_ms": pct["p50"], "p99_ms": pct["p99"], "max_ms": pct["max"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")[list(LINK_COLUMNS)]


def link_bounds(connections: dict[str, pd.DataFrame], link_mbit: float,
                slack_s: float = 0.0) -> pd.DataFrame:
    """Each client<->broker link's bytes against what its rate limit lets through.

    Args:
        connections: name -> a run's connections, with their ``read`` time.
        link_mbit: the rate limit of each link (Mbit/s).
        slack_s: how much sooner than its time the network may pass a chunk on.

    Returns:
        One row per (name, dst): bytes_up (from the client to that broker), span_s (from the
        link's first connection opening to the reading), allowed_bytes
        (``link_mbit / 8 * 1e6 * (span_s + slack_s)``) and within (``bytes_up <=
        allowed_bytes``).
    """
    frames = []
    for name, conns in connections.items():
        per_link = conns.groupby("dst").agg(bytes_up=("bytes_up", "sum"),
                                            opened=("opened", "min"), read=("read", "max"))
        span = (per_link.read - per_link.opened).dt.total_seconds()
        allowed = link_mbit * 1e6 / 8 * (span + slack_s)
        frames.append(pd.DataFrame({"name": name, "dst": per_link.index,
                                    "bytes_up": per_link.bytes_up.to_numpy(),
                                    "span_s": span.to_numpy(),
                                    "allowed_bytes": allowed.to_numpy()}))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["name", "dst", "bytes_up", "span_s", "allowed_bytes"])
    out["within"] = out.bytes_up <= out.allowed_bytes
    return out.set_index(["name", "dst"])
