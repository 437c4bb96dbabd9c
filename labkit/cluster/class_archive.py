"""A class-data sharing archive of Kafka's classes, so that every broker JVM starts cheaper.

A broker loads and verifies some 6,000 classes before it serves a client. The JVM can map
them, already parsed, from an archive (JDK class-data sharing, `-XX:SharedArchiveFile`).
``build()`` records one by starting a one-node cluster with ``-XX:ArchiveClassesAtExit`` and
shutting it down cleanly; ``python -m labkit setup`` calls it once per Kafka version and
``java``. ``flags()`` is what every node (and the storage format tool) is started with: the
archive if it is there, nothing otherwise. A JVM that cannot use the archive (another JDK
build, a damaged file) starts as it would without it (checked: ``java -version`` with a file
of random bytes as the archive runs and prints nothing about it).

Measured on a 2-core machine: a broker used 4.8 s of CPU to come up without the archive and
2.9 s with it (``bench/cluster_start_bench.py`` measures it again).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from labkit.cluster import jars
from labkit.cluster.base import ClusterError


def path(java: str) -> Path:
    """Return where the archive for ``java`` and the lab's Kafka version lives in the cache."""
    real = os.path.realpath(java)
    key = hashlib.sha256(f"{real} {os.stat(real).st_mtime_ns}".encode()).hexdigest()[:12]
    return jars.cache_dir() / f"kafka-{jars.KAFKA_VERSION}" / f"classes-{key}.jsa"


def flags(java: str) -> list[str]:
    """Return the JVM options that map the archive for ``java``, or none if it is not built."""
    archive = path(java)
    return [f"-XX:SharedArchiveFile={archive}"] if archive.is_file() else []


def build(java: str | None = None) -> Path:
    """Record the archive for ``java`` (default ``jars.find_java()``) if it is not there yet.

    Returns:
        The archive's path.

    Raises:
        ClusterError: the recording broker did not start, or exited without writing it.
    """
    from labkit.cluster.local import LocalCluster  # local.py imports this module

    java = java or jars.find_java()
    archive = path(java)
    if archive.is_file():
        return archive
    partial = archive.with_suffix(f".partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    with LocalCluster(brokers=1) as cluster:
        cluster.jvm_options = [f"-XX:ArchiveClassesAtExit={partial}"]
        cluster.start()
        cluster.shutdown(1)  # the JVM writes the archive as it exits
    if not partial.is_file():
        raise ClusterError(f"the broker exited without writing the class archive {partial}")
    partial.replace(archive)
    return archive
