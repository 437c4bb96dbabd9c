"""The experiment part: the multi-step scenarios a notebook runs.

Each wires a cluster, workloads and faults into one scripted run and returns records:
``ceiling`` (flat-out runs beside the bare loop's ceiling, every side's CPU measured),
``scenarios`` (membership changes during a live stream), ``assignment`` (one scenario played by
several groups), ``commits`` (a member killed or stalled per commit mode), ``side_effects`` (a
consumer crash mid-batch), ``durability`` (a leader crash per producer config), ``replication``
(min.insync.replicas, unclean leader election, a leader cut off by the lab network),
``broker_pause`` (the group coordinator frozen under producers and a group),
``network_latency`` (producer settings under a delay between brokers and over a slow link),
``client_partition`` (a producer or a group member cut off by the lab network),
``message_size`` (throughput per message size, and every size limit hit just below and above),
``backpressure`` (a producer faster than its link: a full queue, three ways to live with it, and
message timeouts while a partition has no leader),
``client_internals`` (producer runs with librdkafka's statistics on, per linger.ms and acks and
through a burst, for the delivery latency in parts),
``consumer_lag`` (a slow group falling behind and catching up, its lag recorded from the
client's statistics, the committed offsets and the positions).
No math and no plots here.
"""
