"""What the class archive (``labkit.cluster.class_archive``) saves when a cluster starts.

Every round starts a 3-broker ``LocalCluster`` (three brokers, a controller, and the storage
format tool run once per node before them) twice, in turn: once from the class archive that
``labkit setup`` records, once without it. Each start is measured as the wall time of
``start()`` and the CPU seconds every JVM used up to then (the format tool's, and each node's
until the cluster serves a write).

Printed, never asserted: medians of ``--repeat`` interleaved rounds, and the ratios with/without.

Run: ``make bench`` (section ``start``) or ``python bench/cluster_start_bench.py --help``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from unittest import mock

from targets import Target, line, positive_int, summary

from labkit import LocalCluster
from labkit.cluster import class_archive


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=positive_int, default=3,
                        help="interleaved rounds (default 3)")
    return parser.parse_args(argv)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_once(archive: bool) -> tuple[float, float]:
    """Start and stop one 3-broker cluster; return (wall s of start(), JVM CPU s up to then)."""
    flags = class_archive.flags if archive else (lambda java: [])
    with mock.patch.object(class_archive, "flags", flags), LocalCluster(brokers=3) as cluster:
        cpu_before, t0 = _children_cpu(), time.perf_counter()
        cluster.start()
        wall = time.perf_counter() - t0
        cpu = _children_cpu() - cpu_before + sum(cluster.cpu_seconds().values())
    return wall, cpu


def main(argv: list[str] | None = None) -> list[Target]:
    """Measure, print the rounds and the targets; return the targets."""
    args = parse_args(argv)
    archive = class_archive.build()
    print(f"class archive: {archive}")
    rounds: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for i in range(args.repeat):
        for use in (True, False) if i % 2 == 0 else (False, True):
            wall, cpu = start_once(use)
            rounds[use].append((wall, cpu))
            print(f"round {i + 1}, {'with' if use else 'without'} the archive: start {wall:.1f} s, "
                  f"JVM CPU {cpu:.1f} s", flush=True)
    wall = {use: statistics.median(w for w, _ in r) for use, r in rounds.items()}
    cpu = {use: statistics.median(c for _, c in r) for use, r in rounds.items()}
    targets = [
        Target("cluster start: JVM CPU with the class archive / without",
               f"{cpu[True] / cpu[False]:.2f} ({cpu[True]:.1f} s / {cpu[False]:.1f} s)", "< 1",
               cpu[True] < cpu[False]),
        Target("cluster start: wall time with the class archive / without",
               f"{wall[True] / wall[False]:.2f} ({wall[True]:.1f} s / {wall[False]:.1f} s)", "< 1",
               wall[True] < wall[False]),
    ]
    for target in targets:
        print(line(target))
    return targets


if __name__ == "__main__":
    print(summary(main()))
