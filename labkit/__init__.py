"""labkit: run real Kafka clusters, producers and consumer groups; record, measure and plot.

The package is laid out by part (see the README's layout table): ``cluster`` (brokers, faults),
``workloads`` (producers, readers, groups), ``experiments`` (multi-step scenarios),
``analysis`` (pure pandas), ``viz`` (plots, widgets) and ``runner`` (report, findings, CLI).
Data flows one way: cluster -> workloads -> records -> analysis -> viz and findings.

Importing labkit has no side effects: no cluster starts, no plotting style or logging is set,
and not even the Kafka client is imported until a cluster name below is first used, so
``labkit.analysis`` works where ``confluent_kafka`` is not installed.
"""

import importlib
import logging

__all__ = [
    "LAB_TOPICS", "Cluster", "ClusterError", "ClusterUnreachable", "ExternalCluster",
    "FaultInjectionUnavailable", "LocalCluster", "connect",
]
__version__ = "0.1.0"

# A library's own logger gets a NullHandler so that librdkafka's chatter (routed to
# "labkit.librdkafka") is silent unless the application configures logging.
logging.getLogger("labkit").addHandler(logging.NullHandler())


def __getattr__(name: str):
    """``labkit.connect``, ``labkit.LocalCluster``, ...: imported on first use."""
    if name in __all__:
        return getattr(importlib.import_module("labkit.cluster"), name)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
