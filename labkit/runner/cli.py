"""Command line: ``python -m labkit {setup, cluster up|status|down, report}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labkit.cluster import ClusterError, LocalCluster, default_state_file, jars
from labkit.runner.profiles import PROFILES


def cluster_up(brokers: int) -> int:
    """Start a detached cluster and record it in the state file (no-op if one runs)."""
    path = default_state_file()
    running = LocalCluster.running(path)
    if running is not None:
        print(f"a lab cluster is already running: {running.describe()} (state: {path})")
        return 0
    cluster = LocalCluster(brokers=brokers, detached=True).start()
    cluster.save_state(path)
    print(f"{cluster.describe()} is up; state in {path}")
    print(f"  export KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}  # for other tools")
    print("  python -m labkit cluster down  # to stop it")
    return 0


def cluster_status() -> int:
    """Print the recorded cluster's brokers; exit 1 if none is running."""
    path = default_state_file()
    try:
        cluster = LocalCluster.attach(path)
    except ClusterError as exc:
        print(exc)
        return 1
    print(f"{cluster.describe()} (state: {path})")
    print(cluster.status().to_string(index=False))
    return 0


def cluster_down() -> int:
    """Stop the recorded cluster and remove its data and state file."""
    path = default_state_file()
    try:
        cluster = LocalCluster.attach(path)
    except ClusterError as exc:
        path.unlink(missing_ok=True)
        print(exc)
        return 0
    cluster.stop()
    print(f"stopped {cluster.describe()}")
    return 0


def report(profile: str, only: str | None, repeat: int, strict: bool,
           outputs: Path | None) -> int:
    """Run the notebooks; exit 1 if a notebook failed, or with ``strict`` a finding broke."""
    from labkit.runner.report import ROOT, run_report, verdict

    outputs = outputs or ROOT / "outputs"
    rounds = run_report(profile=profile, only=only, repeat=repeat, outputs=outputs)
    for run in rounds[-1]:
        print(f"{run.status:6} {run.seconds:7.1f} s  {run.name}  {run.error}")
    lines, status = verdict(rounds, outputs, strict=strict)
    print("\n".join(lines))
    return status


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="resolve Kafka's jars from Maven Central into the cache")
    cluster = sub.add_parser("cluster", help="a detached local cluster shared by a series")
    cluster.add_argument("action", choices=["up", "status", "down"])
    cluster.add_argument("--brokers", type=int, default=3, help="1 or 3 (default 3)")
    rep = sub.add_parser("report", help="execute the notebooks and write outputs/")
    rep.add_argument("--profile", choices=PROFILES, default="standard")
    rep.add_argument("--only", metavar="NN[,NN]",
                     help="run only the notebooks with these numbers, e.g. 21 or 20,21")
    rep.add_argument("--repeat", type=int, default=1, metavar="N",
                     help="run the series N times and write outputs/stability.md")
    rep.add_argument("--strict", action="store_true",
                     help="exit 1 also when a checked finding does not hold")
    rep.add_argument("--outputs", type=Path, default=None, metavar="DIR",
                     help="where to write the report (default outputs/)")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            print(f"Kafka {jars.KAFKA_VERSION} jars in {jars.ensure_jars(quiet=False)}")
            return 0
        if args.command == "cluster":
            return {"up": lambda: cluster_up(args.brokers), "status": cluster_status,
                    "down": cluster_down}[args.action]()
        return report(args.profile, args.only, args.repeat, args.strict, args.outputs)
    except (ValueError, ClusterError, jars.MissingTool) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

