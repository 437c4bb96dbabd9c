"""``make bench``: every bench section in turn, then one table of the targets (issues 12, 13).

Sections (each starts and stops its own local cluster, and can run alone):
``producer_bench.py`` (throughput against the bare loop and ProducerPerformance, peak RSS,
delivery latency), ``consumer_bench.py`` (a 3-member group against three bare consumers and
ConsumerPerformance), ``e2e_bench.py`` (end-to-end latency against EndToEndLatency on
three brokers), ``network_bench.py`` (what the lab network's proxy costs) and
``cluster_start_bench.py`` (what the class archive saves when a cluster starts).

Targets are printed, met or missed, never asserted; the exit status is 1 only when a section
failed to measure (an error, not a missed target).

Run: ``make bench BENCH_ARGS="..."`` or ``python bench/run_all.py --help``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback

import cluster_start_bench
import consumer_bench
import e2e_bench
import network_bench
import producer_bench
from targets import Target, summary

SECTIONS = {"producer": producer_bench, "consumer": consumer_bench, "e2e": e2e_bench,
            "network": network_bench, "start": cluster_start_bench}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=None,
                        help="records per producer and consumer measurement (the sections' "
                             "default: 1000000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="interleaved rounds of every section (their default: 3)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile run_producer (producer_bench.py --profile)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"which sections, comma-separated (default {','.join(SECTIONS)})")
    for name in SECTIONS:
        parser.add_argument(f"--{name}-args", default="",
                            help=f"more arguments for {name}_bench.py, one string "
                                 f"(see its --help)")
    args = parser.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"--sections {args.sections!r}: no section {', '.join(sorted(unknown))}; "
                     f"use some of {', '.join(SECTIONS)}")
    return args


def section_argv(name: str, args: argparse.Namespace) -> list[str]:
    """The command line one section gets."""
    argv = []
    if args.records is not None and name not in ("e2e", "network", "start"):  # their own counts
        argv += ["--records", str(args.records)]
    if args.repeat is not None:
        argv += ["--repeat", str(args.repeat)]
    if args.profile and name == "producer":
        argv.append("--profile")
    return argv + shlex.split(getattr(args, f"{name}_args"))


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections, print the targets' table; 1 if a section failed."""
    args = parse_args(argv)
    found: list[Target] = []
    failed = False
    for name in args.sections.split(","):
        section_args = section_argv(name, args)
        print(f"\n######## {name}_bench.py {shlex.join(section_args)}", flush=True)
        t0 = time.monotonic()
        try:
            found += SECTIONS[name].main(section_args)
        except Exception:  # noqa: BLE001 - one failed section must not hide the others
            traceback.print_exc()
            found.append(Target(f"{name}: the section itself", "error", "runs", None))
            failed = True
        print(f"######## {name}_bench.py took {time.monotonic() - t0:.0f} s", flush=True)
    print("\n======== Issue 12's targets (medians of interleaved rounds; printed, never "
          "asserted) ========")
    print(summary(found))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
