"""The cluster part: real Kafka brokers, local or external, and what breaks and heals them.

``base`` (any cluster: topics, leaders, ISRs, the wait helper), ``local`` (KRaft JVMs on this
machine, ``connect``), ``jars`` (Kafka from Maven Central), ``class_archive`` (the class-data
archive the JVMs start from), ``faults`` (kill, pause, restart, watch), ``leadership``
(preferred-leader elections), ``preparation`` (restore a shared cluster), ``network`` (delay,
bandwidth and partitions between clients, brokers and controller), ``security`` (a secured
cluster's credentials). The names most code needs are importable from here.
"""

from labkit.cluster.base import (
    CONTROLLER_ID,
    LAB_TOPICS,
    Cluster,
    ClusterError,
    ClusterUnreachable,
    ExternalCluster,
    FaultInjectionUnavailable,
    check_topic_name,
    client_log,
    read_client_config,
    retrying,
    unique_name,
    wait_until,
)
from labkit.cluster.local import (
    LocalCluster,
    connect,
    default_state_file,
    lab_defaults,
    labkit_jvms,
    labkit_proxies,
    sweep_orphans,
)

__all__ = [
    "CONTROLLER_ID", "LAB_TOPICS", "Cluster", "ClusterError", "ClusterUnreachable",
    "ExternalCluster", "FaultInjectionUnavailable", "LocalCluster", "check_topic_name",
    "client_log", "connect", "default_state_file", "lab_defaults", "labkit_jvms",
    "labkit_proxies", "read_client_config", "retrying", "sweep_orphans", "unique_name",
    "wait_until",
]
