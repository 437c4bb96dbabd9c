"""labkit: run real Kafka clusters, producers and consumer groups; record, measure and plot.

Importing labkit has no side effects: no cluster starts, no plotting style or logging is set.
"""

import logging

from labkit.cluster import (
    LAB_TOPICS,
    Cluster,
    ClusterError,
    ClusterUnreachable,
    ExternalCluster,
    FaultInjectionUnavailable,
    LocalCluster,
    connect,
)

__all__ = [
    "LAB_TOPICS", "Cluster", "ClusterError", "ClusterUnreachable", "ExternalCluster",
    "FaultInjectionUnavailable", "LocalCluster", "connect",
]
__version__ = "0.1.0"

# A library's own logger gets a NullHandler so that librdkafka's chatter (routed to
# "labkit.librdkafka") is silent unless the application configures logging.
logging.getLogger("labkit").addHandler(logging.NullHandler())
