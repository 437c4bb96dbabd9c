"""Child process of the bench's RSS section: peak resident memory of one producer process.

``python bench/rss_probe.py BOOTSTRAP TOPIC baseline`` imports labkit's producer, connects
to the cluster and creates a producer as ``run_producer`` does, and stops there.
``python bench/rss_probe.py BOOTSTRAP TOPIC N`` does the same and then runs ``run_producer``
for N x 100-byte records to TOPIC (acks=1, unlimited rate), which builds the run's
``records`` DataFrame. Either way it prints one JSON line: its peak RSS in bytes and the records
delivered.

It runs in a fresh process so that nothing the bench itself holds counts. The peak is
``VmHWM`` from ``/proc/self/status``, the high-water mark of this program's own memory.
``getrusage``'s ``ru_maxrss`` is not used where /proc exists: Linux carries it across
``execve``, so it starts at the RSS of the forked copy of the (large) bench process.
"""

from __future__ import annotations

import json
import resource
import sys


def vm_hwm() -> int:
    """This process's peak resident set size in bytes, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/status") as status:
            for row in status:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main(bootstrap: str, topic: str, what: str) -> None:
    from confluent_kafka import Producer

    from labkit.cluster import ExternalCluster
    from labkit.workloads.producer import run_producer

    cluster = ExternalCluster(bootstrap)
    delivered = 0
    if what == "baseline":
        producer = Producer(cluster.client_config(acks="1"))
        producer.flush(10)
    else:
        run = run_producer(cluster, {"acks": "1"}, messages=int(what), size=100,
                           topics=[topic], payload="random")
        delivered = run.delivered
        if len(run.records) != int(what):  # the records DataFrame must exist, whole
            raise RuntimeError(f"run_producer recorded {len(run.records)} of {what} records")
    peak = vm_hwm() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB
    print(json.dumps({"peak_rss": peak, "delivered": delivered}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
