"""Command line: ``python -m labkit {setup, cluster up|status|down, report, lab}``."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from labkit.cluster import (
    ClusterError,
    LocalCluster,
    class_archive,
    default_state_file,
    jars,
    wait_until,
)
from labkit.runner.profiles import PROFILES


def cluster_up(brokers: int, network: bool = False, security: str | None = None) -> int:
    """Start a detached cluster and record it in the state file (no-op if one runs).

    With ``network``, every connection passes the lab network (``LocalCluster(network=True)``);
    with ``security="sasl_ssl"``, clients must log in over TLS, and the ``export`` lines
    printed include ``KAFKA_CLIENT_CONFIG``, the client properties file in the cluster's
    data directory (removed by ``cluster down``).
    """
    path = default_state_file()
    cluster = LocalCluster.running(path)
    if cluster is not None:
        print(f"a lab cluster is already running: {cluster.describe()} (state: {path})")
        if cluster.security != security:
            print(f"error: it was started with --security {cluster.security or 'none'}; run "
                  f"`python -m labkit cluster down` first", file=sys.stderr)
            return 1
    else:
        cluster = LocalCluster(brokers=brokers, detached=True, network=network,
                               security=security).start()
        cluster.save_state(path)
        print(f"{cluster.describe()} is up; state in {path}")
    print(f"  export KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}  # for other tools")
    if cluster.client_config_file:
        print(f"  export KAFKA_CLIENT_CONFIG={cluster.client_config_file}  # TLS + SCRAM login")
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
        print(f"nothing to stop: {exc}")
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
        beside = f"  (alongside {', '.join(run.alongside)})" if run.alongside else ""
        print(f"{run.status:6} {run.seconds:7.1f} s  {run.name}{beside}  {run.error}")
    lines, status = verdict(rounds, outputs, strict=strict)
    print("\n".join(lines))
    return status


def _taken(port: int) -> bool:
    """Whether something on 127.0.0.1 holds ``port``."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _free_port(first: int = 8888, tries: int = 100) -> int:
    """The first port on 127.0.0.1 from ``first`` up that nothing listens on."""
    for port in range(first, first + tries):
        if not _taken(port):
            return port
    raise ValueError(f"no free port on 127.0.0.1 from {first} to {first + tries - 1}; "
                     f"pass --port")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _start_jupyter(notebook_dir: Path, port: int, token: str,
                   open_browser: bool) -> subprocess.Popen:
    """JupyterLab on ``notebook_dir`` at 127.0.0.1:``port``, in its own process group."""
    argv = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebook_dir}",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            "--ServerApp.log_level=WARN"]
    argv += [] if open_browser else ["--no-browser"]
    argv += ["--allow-root"] if os.geteuid() == 0 else []
    if shutil.which("setpriv"):
        argv = ["setpriv", "--pdeathsig", "TERM", *argv]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, process_group=0)


def _wait_for_jupyter(jupyter: subprocess.Popen, port: int, token: str) -> str:
    """Wait until JupyterLab answers ("ready") or exits ("exited")."""
    status = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                    headers={"Authorization": f"token {token}"})

    def answered() -> str:
        if jupyter.poll() is not None:
            return "exited"
        try:
            with urllib.request.urlopen(status, timeout=2):
                return "ready"
        except OSError:
            return ""

    return wait_until(answered, 120, "JupyterLab to answer", 0.5)


def lab(brokers: int, notebook_dir: Path, port: int | None, open_browser: bool,
        network: bool = False) -> int:
    """Run JupyterLab on the notebooks beside a shared cluster until Ctrl-C, then stop both.

    Uses the cluster named by ``$KAFKA_BOOTSTRAP_SERVERS`` or recorded by ``cluster up`` if
    there is one (and leaves it running); otherwise starts one (behind the lab network with
    ``network``, so the network notebooks use it instead of starting their own), records it
    where the notebooks' ``labkit.connect()`` finds it, and stops it on exit. JupyterLab runs in its
    own process group, so Ctrl-C reaches this process only: it stops JupyterLab (and its
    kernels) without JupyterLab's "Shutdown this server?" prompt, then the cluster. SIGTERM
    and SIGHUP do the same; if this process is killed outright, JupyterLab gets SIGTERM and
    the brokers SIGKILL from the kernel (``setpriv --pdeathsig``).

    Returns:
        The exit status: 0 once stopped, 1 if JupyterLab did not start.
    """
    if not notebook_dir.is_dir():
        raise ValueError(f"--notebook-dir {notebook_dir} is not a directory")
    # Before the cluster installs its own; SIGINT too, which a shell's `cmd &` leaves ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    cluster = None if external else LocalCluster.running()
    owned = not external and cluster is None
    if owned:
        # refuses a bad count before anything starts
        cluster = LocalCluster(brokers=brokers, network=network)
    jupyter = None
    try:
        if owned:
            print(f"starting a {brokers}-broker Kafka cluster...", flush=True)
            cluster.start()
            cluster.save_state(default_state_file())
        where = f"Kafka at {external}" if external else cluster.describe()
        if not owned:
            print(f"the notebooks use the running {where}; it stays up after JupyterLab")
        token = secrets.token_urlsafe(24)
        # A port found free may be taken before JupyterLab binds it (another lab starting
        # at the same moment): then try the next free one, unless the port was asked for.
        tries = 1 if port else 3
        for attempt in range(tries):
            chosen = port or _free_port()
            jupyter = _start_jupyter(notebook_dir, chosen, token, open_browser)
            if _wait_for_jupyter(jupyter, chosen, token) == "ready":
                break
            if attempt == tries - 1 or not _taken(chosen):
                print(f"error: JupyterLab exited with status {jupyter.returncode} before it "
                      f"answered (its log is above)", file=sys.stderr)
                return 1
            print(f"port {chosen} was taken meanwhile; trying another", flush=True)
        port = chosen
        print(f"\n{where} is up. JupyterLab on {notebook_dir}:\n\n"
              f"    http://127.0.0.1:{port}/lab?token={token}\n\n"
              f"Ctrl-C stops JupyterLab" + (" and the cluster." if owned else "."), flush=True)
        jupyter.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        started = ["JupyterLab"] * (jupyter is not None) + ["the cluster"] * owned
        print(f"stopping {' and '.join(started)}...", flush=True)
        if jupyter is not None and jupyter.poll() is None:
            jupyter.terminate()  # JupyterLab's clean stop: it shuts its kernels down first
            try:
                jupyter.wait(30)
            except subprocess.TimeoutExpired:
                jupyter.kill()
                jupyter.wait()
        if owned:
            cluster.stop()
        print("stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="resolve Kafka's jars from Maven Central into the cache, and "
                                 "record the class archive the brokers start from")
    cluster = sub.add_parser("cluster", help="a detached local cluster shared by a series")
    cluster.add_argument("action", choices=["up", "status", "down"])
    cluster.add_argument("--brokers", type=int, default=3, help="1 or 3 (default 3)")
    cluster.add_argument("--network", action="store_true",
                         help="route every connection through the lab network (delay, "
                              "bandwidth, partitions: notebooks 06 and 25)")
    cluster.add_argument("--security", choices=["sasl_ssl"], default=None,
                         help="clients log in with SCRAM-SHA-512 over TLS (a throwaway CA); "
                              "prints the KAFKA_CLIENT_CONFIG to use")
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
    lab_cmd = sub.add_parser("lab", help="JupyterLab on the notebooks with a shared cluster; "
                                         "Ctrl-C stops both")
    lab_cmd.add_argument("--brokers", type=int, default=3,
                         help="1 or 3 (default 3), if no cluster is running yet")
    lab_cmd.add_argument("--notebook-dir", type=Path, metavar="DIR",
                         default=Path(__file__).resolve().parents[2] / "notebooks",
                         help="where JupyterLab opens (default: the lab's notebooks/)")
    lab_cmd.add_argument("--port", type=int, default=None,
                         help="JupyterLab's port (default: the first free one from 8888)")
    lab_cmd.add_argument("--no-browser", action="store_true",
                         help="only print the URL (headless machines, tests)")
    lab_cmd.add_argument("--network", action="store_true",
                         help="start the cluster behind the lab network, for the notebooks "
                              "that delay or cut links (they start their own otherwise)")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            print(f"Kafka {jars.KAFKA_VERSION} jars in {jars.ensure_jars(quiet=False)}")
            print(f"class archive (brokers start with less CPU) in {class_archive.build()}")
            return 0
        if args.command == "cluster":
            return {"up": lambda: cluster_up(args.brokers, args.network, args.security),
                    "status": cluster_status, "down": cluster_down}[args.action]()
        if args.command == "lab":
            return lab(args.brokers, args.notebook_dir.resolve(), args.port,
                       not args.no_browser, args.network)
        return report(args.profile, args.only, args.repeat, args.strict, args.outputs)
    except (ValueError, ClusterError, jars.MissingTool) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

