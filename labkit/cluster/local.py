"""Real Apache Kafka on this machine: 1 or 3 KRaft nodes as local Java processes.

``LocalCluster`` runs 1 or 3 KRaft nodes (combined broker + controller, or 3 brokers and a
dedicated controller) on 127.0.0.1, from the jars ``labkit.cluster.jars`` resolves. It can
break them the ways real clusters break: SIGKILL, SIGSTOP / SIGCONT, restart on the same data
directory.

``connect()`` picks the cluster the lab uses: the external cluster if named, else the cluster
recorded in the state file by ``python -m labkit cluster up`` (or by the report runner), else a
fresh ``LocalCluster`` owned by the calling process.

Ownership rule: a JVM never outlives the process that started it (atexit, SIGTERM/SIGHUP
handlers and, where possible, the kernel's parent-death signal), except a cluster started
with ``detached=True`` (``cluster up``), whose life is recorded in its state file.
"""


from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from labkit.cluster import class_archive, jars
from labkit.cluster.base import (
    CONTROLLER_HEAP,
    CONTROLLER_ID,
    NODE_MARKER,
    SUPPORTED_BROKER_COUNTS,
    Cluster,
    ClusterError,
    ExternalCluster,
    FaultInjectionUnavailable,
    client_log,
    read_client_config,
    wait_until,
)
from labkit.cluster.network import Network
from labkit.cluster.security import (
    CLIENT_PROPERTIES,
    Credentials,
    broker_properties,
    check_security,
    make_credentials,
    write_client_properties,
)

_log = logging.getLogger(__name__)


@dataclass
class Node:
    """One KRaft node of a LocalCluster: a broker, a controller, or both (``roles``)."""

    id: int
    port: int
    controller_port: int
    dir: str
    argv: list[str] = field(default_factory=list)
    pid: int | None = None
    roles: str = "broker,controller"
    direct_port: int = 0  # where the broker listens, if clients reach it through a proxy
    controller_via: int = 0  # the proxy port in front of the controller (with a network)
    internal_port: int = 0  # the brokers' own PLAINTEXT listener, with security="sasl_ssl"

    @property
    def listen_port(self) -> int:
        """The port the node's broker listener binds (``port`` unless a proxy sits in front)."""
        return self.direct_port or self.port

    @property
    def config_file(self) -> Path:
        return Path(self.dir) / "server.properties"

    @property
    def log_dir(self) -> Path:
        return Path(self.dir) / "logs"

    @property
    def data_dir(self) -> Path:
        return Path(self.dir) / "data"

    @property
    def tmp_dir(self) -> Path:
        """java.io.tmpdir of the node's JVM: what it unpacks (lz4-java's library) goes with it."""
        return Path(self.dir) / "tmp"


JVM_OPTIONS_VARIABLE = "LABKIT_JVM_OPTIONS"


def extra_jvm_options() -> list[str]:
    """JVM options for every node the lab starts, from ``$LABKIT_JVM_OPTIONS`` (shell words).

    The tests set ``-XX:TieredStopAtLevel=1``: with the C1 compiler only, a 3-broker cluster
    starts in about 60 % of the time and CPU, and its brokers run slower, so it is not for a
    run whose numbers are read. The report names the options on its index page.

    Raises:
        ValueError: the variable is not shell words (an unclosed quote).
    """
    value = os.environ.get(JVM_OPTIONS_VARIABLE, "")
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"${JVM_OPTIONS_VARIABLE}={value!r} must be JVM options as shell "
                         f"words, e.g. '-XX:TieredStopAtLevel=1' ({exc})") from None


def default_state_file() -> Path:
    """Where ``cluster up`` records its cluster (``$LABKIT_STATE_FILE`` or in the cache)."""
    return Path(os.environ.get("LABKIT_STATE_FILE") or jars.cache_dir() / "cluster.json")


def _process_state(pid: int | None, marked: bool = True) -> str | None:
    """Return the /proc state letter of a labkit broker pid, or None if it is not one.

    With ``marked=False``, of any process with that pid (None if there is none).
    """
    if not pid:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if marked else b""
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if marked and NODE_MARKER.encode() not in cmdline:
        return None  # the pid was reused by something else
    return stat.rsplit(")", 1)[1].split()[0]


def _start_time(pid: int | None) -> str | None:
    """When process ``pid`` started (clock ticks after boot), or None if there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds process ``pid`` has used (all its threads), or None.

    From ``/proc/<pid>/stat`` fields 14 and 15 (utime, stime), in clock ticks.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _is_alive(pid: int | None) -> bool:
    return _process_state(pid) not in (None, "Z", "X")


def labkit_jvms() -> dict[int, str]:
    """Return ``{pid: node dir}`` for every labkit broker JVM running on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_alive(int(entry.name)):
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            found[int(entry.name)] = next(
                a[len(NODE_MARKER):] for a in args if a.startswith(NODE_MARKER)
            )
    return found


DATA_DIR_PREFIX = "labkit-kafka-"


def sweep_orphans() -> list[Path]:
    """Remove data directories left by clusters whose owner died by SIGKILL.

    A directory is an orphan when its owner process is gone and no broker JVM uses it.
    ``LocalCluster.start()`` calls this, so a killed notebook kernel's data does not pile up.

    Returns:
        The directories removed.
    """
    in_use = {str(Path(d).parent) for d in labkit_jvms().values()}
    removed = []
    for path in Path(tempfile.gettempdir()).glob(DATA_DIR_PREFIX + "*"):
        try:
            owner = int((path / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # not fully created yet, or not ours
        if str(path) in in_use or (owner and Path(f"/proc/{owner}").exists()):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _pick_ports(count: int, base_port: int | None) -> list[int]:
    """Pick ``count`` free TCP ports on 127.0.0.1 (from ``base_port`` upward if given)."""
    ports: list[int] = []
    held: list[socket.socket] = []
    try:
        candidate = base_port or 0
        while len(ports) < count:
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                sock.close()
                if not base_port:
                    raise
                candidate += 1
                if candidate > 65535:
                    raise ClusterError(f"no free ports on 127.0.0.1 from {base_port} up") from None
                continue
            held.append(sock)
            ports.append(sock.getsockname()[1])
            if base_port:
                candidate += 1
    finally:
        for sock in held:
            sock.close()
    return ports


def _cluster_id() -> str:
    # Kafka's Uuid.toString(): URL-safe base64 of 16 random bytes, no padding, no leading '-'.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


_OWNED: list[LocalCluster] = []
_handlers_installed = False


def _stop_owned() -> None:
    for cluster in list(_OWNED):
        with contextlib.suppress(Exception):
            cluster.stop()


def _on_signal(signum, frame):
    _stop_owned()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_cleanup() -> None:
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_owned)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) in (signal.SIG_DFL, None):
                signal.signal(signum, _on_signal)


def lab_defaults(brokers: int) -> dict[str, Any]:
    """The broker settings that shape what the experiments see, for a cluster of ``brokers``.

    Topic and internal-topic defaults, share-group floors, the rebalance delay, unclean
    election: every node of the embedded cluster gets them, and ``docker-compose.yml``
    mirrors them (a test checks it).
    """
    n = brokers
    min_isr = 2 if n >= 3 else 1
    return {
        "num.partitions": 3,
        "default.replication.factor": n,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": n,
        "offsets.topic.num.partitions": 10,
        "transaction.state.log.replication.factor": n,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 10,
        "share.coordinator.state.topic.replication.factor": n,
        "share.coordinator.state.topic.min.isr": min_isr,
        "share.coordinator.state.topic.num.partitions": 10,
        # Share groups (notebook 17): let a group set its record acquisition lock and
        # heartbeat to about a second (group configs share.record.lock.duration.ms and
        # share.heartbeat.interval.ms); the broker's floors are 15 s and 5 s by default.
        "group.share.min.record.lock.duration.ms": 1000,
        "group.share.min.heartbeat.interval.ms": 1000,
        "group.initial.rebalance.delay.ms": 0,
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "true",
    }


class LocalCluster(Cluster):
    """1 or 3 real Kafka brokers on 127.0.0.1 in KRaft mode, as local JVMs. A context manager.

    One broker is a single combined broker + controller node. Three brokers get a fourth
    JVM, a dedicated controller (node id 0, the quorum's only voter), as production
    clusters separate them: any two brokers can then be down while the controller still
    fences them, shrinks ISRs and elects leaders. (With three combined nodes, losing two
    would lose the controller quorum and freeze the metadata.) ``nodes`` holds the brokers
    only; the controller is ``controller`` and is not a fault target.

    Args:
        brokers: broker count, 1 or 3. Internal topics get replication factor = brokers;
            with 3 brokers, min.insync.replicas is 2 (1 with a single broker).
        base_port: first port to try (ports in use are skipped); default: any free ports.
        heap: JVM heap per node (``-Xmx``/``-Xms``).
        start_timeout: seconds for the whole cluster to come up.
        detached: run the JVMs in their own session so they outlive this process
            (``cluster up``); they are then stopped only by ``stop()`` / ``cluster down``.
        broker_config: extra broker properties, applied to every node.
        network: route every connection (client to broker, broker to broker, broker to
            controller) through the lab's proxy process, so ``network`` can add delay,
            limit bandwidth and cut links (``labkit.cluster.network``). Off by default:
            the proxy copies every byte in Python, which costs CPU a flat-out run would
            otherwise spend on Kafka.
        security: None (clients speak PLAINTEXT) or ``"sasl_ssl"``: clients must speak
            TLS and log in with SCRAM-SHA-512, as on a production cluster. The cluster
            makes a throwaway CA and a certificate for 127.0.0.1 / localhost (PEM
            files, ``labkit.cluster.security``) and a user ``lab`` with a random
            password, created in the metadata when the storage is formatted. Each
            broker's ``port`` is then its SASL_SSL listener; the brokers replicate
            over a PLAINTEXT listener of their own (``Node.internal_port``) and the
            controller listener stays PLAINTEXT, so only what clients see changes.
            (Those two take anyone on 127.0.0.1 who finds their ports: a lab's
            shortcut, not a production layout.) Not with ``network``.
            ``security_config`` holds the client settings, so every client made from
            this handle logs in, and ``client_config_file`` (``client.properties`` in
            the data directory, mode 0600) holds them too, with ``bootstrap.servers``,
            for ``KAFKA_CLIENT_CONFIG``. ``stop()`` removes the keys, certificates and
            properties with the data directory.

    Raises:
        ValueError: an unsupported broker count or security mode, or security together
            with the lab network.
    """

    local = True

    def __init__(self, brokers: int = 3, base_port: int | None = None, heap: str = "320m",
                 start_timeout: float = 120, detached: bool = False,
                 broker_config: dict[str, Any] | None = None, network: bool = False,
                 security: str | None = None):
        if brokers not in SUPPORTED_BROKER_COUNTS:
            raise ValueError(
                f"LocalCluster(brokers={brokers!r}) is not supported; brokers must be one of "
                f"{', '.join(map(str, SUPPORTED_BROKER_COUNTS))}"
            )
        if check_security(security) and network:
            # The proxy reads the Kafka protocol to tell links apart, which TLS hides.
            raise ValueError(f"LocalCluster(security={security!r}, network=True) is not "
                             f"supported: the lab network cannot see inside TLS connections, "
                             f"so use one or the other")
        super().__init__("")
        self.broker_count = brokers
        self.base_port = base_port
        self.heap = heap
        self.start_timeout = start_timeout
        self.detached = detached
        self.broker_config = dict(broker_config or {})
        self.with_network = network
        self.security = security
        # Added to every node's JVM (class_archive.build replaces them while it records).
        self.jvm_options: list[str] = extra_jvm_options()
        self.credentials: Credentials | None = None
        self.client_config_file: Path | None = None
        self.network_pid: int | None = None
        self.network_control: str | None = None
        self._network_proc: subprocess.Popen | None = None
        self.data_dir: Path | None = None
        self.state_file: Path | None = None
        self.nodes: dict[int, Node] = {}
        self.controller: Node | None = None
        self._procs: dict[int, subprocess.Popen] = {}
        self._owned = True
        self._started = False

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """Return a librdkafka config dict for this cluster plus ``overrides``.

        Raises:
            ClusterError: the cluster was never started (it has no address yet).
        """
        if not self.bootstrap_servers:
            raise ClusterError(
                f"this LocalCluster(brokers={self.broker_count}) is not started: call start() "
                f"first, e.g. `with LocalCluster(brokers={self.broker_count}) as cluster: "
                f"cluster.start()`"
            )
        return super().client_config(**overrides)

    # -- configuration ----------------------------------------------------------------------

    def _all_nodes(self) -> list[Node]:
        """The controller (if dedicated) first, then the brokers."""
        return ([self.controller] if self.controller else []) + list(self.nodes.values())

    def _properties(self, node: Node) -> dict[str, Any]:
        n = self.broker_count
        # A broker reaches the controller through the proxy, if there is one; the controller
        # itself through its own listener.
        via = node.controller_via if node.roles == "broker" else 0
        voters = ",".join(f"{x.id}@127.0.0.1:{via or x.controller_port}"
                          for x in self._all_nodes() if "controller" in x.roles)
        controller = {"listeners": f"CONTROLLER://127.0.0.1:{node.controller_port}"}
        if node.controller_via:
            # KRaft tells the brokers where its leader is (KIP-853): the proxy's address, or
            # they would reconnect around it after the first timeout.
            controller["advertised.listeners"] = f"CONTROLLER://127.0.0.1:{node.controller_via}"
        listeners = {
            "broker": {"listeners": f"PLAINTEXT://127.0.0.1:{node.listen_port}",
                       "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
                       "inter.broker.listener.name": "PLAINTEXT"},
            "controller": controller,
            "broker,controller": {
                "listeners": f"PLAINTEXT://127.0.0.1:{node.listen_port},CONTROLLER://127.0.0.1:"
                             f"{node.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
                "inter.broker.listener.name": "PLAINTEXT"},
        }[node.roles]
        # The defaults are set on every node: in KRaft the controller applies them.
        props = {
            "process.roles": node.roles,
            "node.id": node.id,
            "controller.quorum.voters": voters,
            **listeners,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.data_dir,
            **lab_defaults(n),
            # A lab-sized footprint: few threads, a small log-cleaner buffer.
            "num.network.threads": 2,
            "num.io.threads": 4,
            "background.threads": 4,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 4 * 1024 * 1024,
        }
        if self.security and "broker" in node.roles:
            props.update(self._secured_listeners(node))
        props.update(self.broker_config)
        return props

    def _secured_listeners(self, node: Node) -> dict[str, Any]:
        """A broker's listeners with ``security="sasl_ssl"`` (see the class docstring).

        Clients get SASL_SSL on ``port``; brokers replicate over PLAINTEXT on
        ``internal_port``; a combined node keeps its PLAINTEXT controller listener.
        """
        controller = f",CONTROLLER://127.0.0.1:{node.controller_port}" \
            if "controller" in node.roles else ""
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{node.listen_port},"
                         f"INTERNAL://127.0.0.1:{node.internal_port}{controller}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{node.port},"
                                    f"INTERNAL://127.0.0.1:{node.internal_port}",
            "inter.broker.listener.name": "INTERNAL",
            "listener.security.protocol.map":
                "SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            **broker_properties(self.credentials, "SASL_SSL"),
        }

    def _write_node_files(self, node: Node, java: str, cp: str) -> None:
        node.log_dir.mkdir(parents=True, exist_ok=True)
        node.data_dir.mkdir(parents=True, exist_ok=True)
        node.tmp_dir.mkdir(parents=True, exist_ok=True)
        node.config_file.write_text(
            "".join(f"{k}={v}\n" for k, v in self._properties(node).items())
        )
        heap = CONTROLLER_HEAP if node.roles == "controller" else self.heap
        node.argv = [
            java, f"-Xms{heap}", f"-Xmx{heap}", *class_archive.flags(java), *self.jvm_options,
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:MaxMetaspaceSize=192m",
            "-XX:ReservedCodeCacheSize=96m", "-XX:MaxDirectMemorySize=256m",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={jars.LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={node.log_dir}", f"-Djava.io.tmpdir={node.tmp_dir}",
            f"{NODE_MARKER}{node.dir}",
            "-cp", cp, "kafka.Kafka", str(node.config_file),
        ]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        """Start every node; return once all are registered and a topic can be written.

        Raises:
            jars.MissingTool: Java or Maven is missing.
            ClusterError: a node did not come up in time (with its last log lines).
        """
        if self._started:
            return self
        java = jars.find_java()
        cp = jars.classpath()
        if not self.detached:
            _install_cleanup()
            _OWNED.append(self)
        sweep_orphans()
        self.data_dir = Path(tempfile.mkdtemp(prefix=DATA_DIR_PREFIX))
        # 0 = no owner (a detached cluster lives as long as its JVMs do).
        (self.data_dir / "owner.pid").write_text("0" if self.detached else str(os.getpid()))
        try:
            if self.security:
                self.credentials = make_credentials(self.data_dir)
                self.security_config = self.credentials.client_config()
            for attempt in range(3):
                try:
                    self._start_once(java, cp)
                    break
                except _PortTaken:
                    self._kill_all()
                    if attempt == 2:
                        raise ClusterError("brokers kept finding their ports taken") from None
            self._started = True
        except BaseException:
            self.stop()
            raise
        return self

    def _start_once(self, java: str, cp: str) -> None:
        n = self.broker_count
        dedicated = n > 1
        # Per broker: its port and controller port; with a network, also the port it really
        # listens on (clients use the proxy's), and one proxy port in front of the controller;
        # with security, its internal listener's port.
        extra = (n + dedicated) if self.with_network else n if self.security else 0
        ports = _pick_ports(2 * n + dedicated + extra, self.base_port)
        spare = iter(ports[2 * n + dedicated:])
        self.nodes = {}
        self.controller = None
        for i in range(1, n + 1):
            node_dir = self.data_dir / f"broker-{i}"
            shutil.rmtree(node_dir, ignore_errors=True)
            self.nodes[i] = Node(i, ports[2 * i - 2], ports[2 * i - 1], str(node_dir),
                                 roles="broker" if dedicated else "broker,controller")
            if self.with_network:
                self.nodes[i].direct_port = next(spare)
            if self.security:
                self.nodes[i].internal_port = next(spare)
        if dedicated:
            node_dir = self.data_dir / "controller"
            shutil.rmtree(node_dir, ignore_errors=True)
            self.controller = Node(CONTROLLER_ID, 0, ports[2 * n], str(node_dir),
                                   roles="controller")
            if self.with_network:
                self.controller.controller_via = next(spare)
                for node in self.nodes.values():
                    node.controller_via = self.controller.controller_via
        for node in self._all_nodes():
            self._write_node_files(node, java, cp)
        self.bootstrap_servers = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes.values())
        self._admin = None
        if self.security:
            self.client_config_file = write_client_properties(
                self.data_dir / CLIENT_PROPERTIES, self.bootstrap_servers, self.credentials)
        self._format(java, cp)
        if self.with_network:
            self._start_network()
        for node in self._all_nodes():
            self._spawn(node)
        self._await_ready()

    def _start_network(self) -> None:
        """Start the proxy process every connection passes (``labkit.cluster.network``)."""
        routes = [{"listen": node.port, "dst": node.id, "upstream": node.direct_port}
                  for node in self.nodes.values()]
        if self.controller is not None:
            routes.append({"listen": self.controller.controller_via, "dst": "controller",
                           "upstream": self.controller.controller_port})
        control = self.data_dir / "network.sock"
        spec = self.data_dir / "network.json"
        spec.write_text(json.dumps({"control": str(control), "routes": routes}, indent=1))
        argv = [sys.executable, "-c", _PROXY_MAIN, str(spec)]
        if not self.detached and threading.current_thread() is threading.main_thread() \
                and shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", *argv]
        with open(self.data_dir / "network.log", "ab") as out:
            self._network_proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.network_pid = self._network_proc.pid
        self.network_control = str(control)

        def answers() -> bool:
            if self._network_proc.poll() is not None:
                log = (self.data_dir / "network.log").read_text(errors="replace")
                if "address already in use" in log.lower():
                    raise _PortTaken()
                raise ClusterError(f"the network proxy exited during start-up:\n{log[-2000:]}")
            return self.network.answers()

        wait_until(answers, 15, "the network proxy to answer", interval=0.05)

    @property
    def network(self) -> Network:
        """The lab network every connection of this cluster passes (``network=True``).

        Raises:
            FaultInjectionUnavailable: the cluster was started without one.
        """
        if not self.network_control:
            raise FaultInjectionUnavailable(
                f"this cluster ({self.describe()}) has no lab network: start it with "
                "LocalCluster(brokers=3, network=True), or `python -m labkit cluster up "
                "--network`, or ask connect(network=True) for one")
        return Network(self.network_control, list(self.nodes))

    def _format(self, java: str, cp: str) -> None:
        cluster_id = _cluster_id()
        # The SCRAM user goes into the bootstrap metadata, which the controller applies
        # before any broker serves a client (a short-lived command line is the only place
        # the password passes besides client.properties).
        scram = ["--add-scram", self.credentials.scram_argument()] if self.security else []
        archive = class_archive.flags(java)
        procs = {
            node.id: subprocess.Popen(
                [java, "-Xmx128m", "-XX:TieredStopAtLevel=1", *archive, "-Dlog4j2.level=WARN",
                 f"-Dlog4j2.configurationFile={jars.LOG4J_CONFIG}",
                 f"-Dkafka.logs.dir={node.log_dir}", "-cp", cp, "kafka.tools.StorageTool",
                 "format", "-t", cluster_id, "-c", str(node.config_file), *scram],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for node in self._all_nodes()
        }
        for node_id, proc in procs.items():
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise ClusterError(f"formatting {_name(node_id)}'s storage failed:\n{out[-2000:]}")

    def _spawn(self, node: Node) -> None:
        argv = node.argv
        detached = self.detached or not self._owned
        # The kernel kills the JVM if the thread that started it dies, even by SIGKILL,
        # which atexit cannot cover. Only safe from the main thread (it is per thread).
        if not detached and threading.current_thread() is threading.main_thread() \
                and shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", *argv]
        with open(node.log_dir / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=node.dir,
            )
        node.pid = proc.pid
        self._procs[node.id] = proc
        if self.state_file:
            self._update_state()

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        expected = set(self.nodes)
        registered: set[int] = set()

        def all_registered() -> bool:
            nonlocal registered
            for node in self._all_nodes():
                if not self._alive(node):
                    tail = self.log_tail(node.id, 30)
                    if "Address already in use" in tail:
                        raise _PortTaken()
                    extra = f" (with the extra JVM options {' '.join(self.jvm_options)!r})" \
                        if self.jvm_options else ""
                    raise ClusterError(
                        f"{_name(node.id)} exited during start-up{extra}:\n"
                        f"{self._errors(node.id)}")
            registered = set(self.admin().list_topics(timeout=2).brokers)
            return registered >= expected

        def unregistered(_last) -> ClusterError:
            missing = sorted(expected - registered)
            tails = "\n".join(f"--- broker {b} ---\n{self._errors(b)}" for b in missing)
            return ClusterError(
                f"brokers {missing} did not register within {self.start_timeout:g} s:\n{tails}"
            )

        wait_until(all_registered, self.start_timeout, "every broker to register", 0.3,
                   passes=lambda exc: isinstance(exc, KafkaException), on_timeout=unregistered)
        self._probe_write(deadline)

    def _probe_write(self, deadline: float) -> None:
        """Create a topic spanning every broker and write to it with acks=all."""
        topic = "__labkit_ready"
        remaining = max(5.0, deadline - time.monotonic())
        self.create_topic(topic, partitions=self.broker_count,
                          replication_factor=self.broker_count, timeout=remaining)
        errors: list[Any] = []
        producer = Producer(self.client_config(**{"acks": "all", "logger": client_log}))
        for p in range(self.broker_count):
            producer.produce(topic, b"ready", partition=p,
                             on_delivery=lambda err, msg: err and errors.append(err))
        left = producer.flush(remaining)
        if left or errors:
            raise ClusterError(f"cluster started but a test write failed: {errors or left}")
        self.delete_topic(topic)

    def stop(self) -> None:
        """Kill every node, remove the data directory and the state file. Idempotent."""
        self._refresh_pids()
        self._kill_all()
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.state_file:
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
        self._started = False
        self._admin = None
        with contextlib.suppress(ValueError):
            _OWNED.remove(self)

    def _kill_all(self) -> None:
        for node in self._all_nodes():
            self._signal(node, signal.SIGKILL)
        for node in self._all_nodes():
            self._reap(node, timeout=10)
        self._stop_network()

    def _stop_network(self) -> None:
        pid, self.network_pid, self.network_control = self.network_pid, None, None
        if self._network_proc is not None and self._network_proc.pid == pid:
            self._network_proc.kill()
            self._network_proc.wait(10)
        elif pid and _is_proxy(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _is_proxy(pid), 10, "the network proxy to exit",
                       interval=0.05)
        self._network_proc = None

    def close(self) -> None:
        """Stop the cluster if this handle started it; otherwise just let go of it."""
        if self._owned:
            self.stop()
        self._admin = None

    # -- faults ----------------------------------------------------------------------------

    def _node(self, broker_id: int) -> Node:
        if broker_id not in self.nodes:
            raise ValueError(
                f"no broker {broker_id!r} in this cluster; brokers are {sorted(self.nodes)}"
            )
        self._refresh_pids()
        return self.nodes[broker_id]

    def _refresh_pids(self) -> None:
        """Take the pids from the state file, if there is one.

        Another process sharing this cluster (a notebook kernel) may have restarted a
        broker since this handle last looked.
        """
        if self.state_file is not None and self.state_file.exists():
            with contextlib.suppress(OSError, ValueError, KeyError):
                self._load_pids()

    def _signal(self, node: Node, signum: int) -> None:
        if self._alive(node):
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signum)

    def _reap(self, node: Node, timeout: float) -> None:
        proc = self._procs.get(node.id)
        if proc is not None and proc.pid == node.pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        else:
            # Not our child: wait until the kernel has torn it down. A dying JVM loses its
            # command line (so _is_alive already says no) well before its last thread exits.
            start = _start_time(node.pid)
            wait_until(lambda: _start_time(node.pid) != start or _process_state(
                node.pid, marked=False) in (None, "Z", "X"), timeout,
                f"broker {node.id} to exit", interval=0.05)

    def _alive(self, node: Node) -> bool:
        proc = self._procs.get(node.id)
        if proc is not None and proc.pid == node.pid:
            return proc.poll() is None  # our child: no /proc race right after fork
        return _is_alive(node.pid)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each running node's JVM has used so far, by node name.

        Keys are ``"broker 1"``, ``"broker 2"``, ... and ``"controller"`` (the dedicated
        controller of a 3-broker cluster); a node that is down is left out. Works on a
        handle attached to a detached cluster too (the pids come from its state file). The
        difference of two readings is what the cluster used in between; a node restarted
        in between counts from 0 again.

        Returns:
            Node name -> user + system CPU seconds of its process (a paused node keeps
            its count).
        """
        self._refresh_pids()
        found = {}
        for node in self._all_nodes():
            seconds = _cpu_seconds(node.pid) if self._alive(node) else None
            if seconds is not None:
                found["controller" if node is self.controller else f"broker {node.id}"] = seconds
        return found

    def is_running(self, broker_id: int) -> bool:
        """True if the broker's JVM exists (paused counts as running)."""
        return self._alive(self._node(broker_id))

    def is_paused(self, broker_id: int) -> bool:
        """True if the broker's JVM is stopped by SIGSTOP."""
        return _process_state(self._node(broker_id).pid) == "T"

    def kill(self, broker_id: int) -> None:
        """SIGKILL a broker's JVM, as a crash or an OOM-killer would, and wait for it to die."""
        node = self._node(broker_id)
        self._signal(node, signal.SIGKILL)
        self._reap(node, timeout=10)

    def pause(self, broker_id: int) -> None:
        """SIGSTOP a broker: it keeps its sockets but stops answering (a GC pause, a VM stall)."""
        node = self._node(broker_id)
        if not self._alive(node):
            raise ClusterError(f"broker {broker_id} is not running; cannot pause it")
        os.kill(node.pid, signal.SIGSTOP)
        wait_until(lambda: self.is_paused(broker_id), 5, f"broker {broker_id} to stop",
                   interval=0.01)

    def resume(self, broker_id: int) -> None:
        """SIGCONT a paused broker."""
        node = self._node(broker_id)
        if not self._alive(node):
            raise ClusterError(f"broker {broker_id} is not running; cannot resume it")
        os.kill(node.pid, signal.SIGCONT)

    def shutdown(self, broker_id: int) -> None:
        """Stop a broker cleanly, as for maintenance, and leave it down until ``restart``.

        SIGTERM starts a controlled shutdown: the controller moves the broker's leaderships
        away and drops it from every ISR before it exits (killed if that takes over 30 s).
        The controller keeps its registration until the session times out, so a restart
        right after registers only then. A broker that is not running is left as it is.
        """
        node = self._node(broker_id)
        if not self._alive(node):
            return
        self.resume(broker_id)
        self._signal(node, signal.SIGTERM)
        try:
            self._reap(node, timeout=30)
        except TimeoutError:
            self.kill(broker_id)
        if self._alive(node):  # our child: _reap gave up silently after 30 s
            self.kill(broker_id)

    def restart(self, broker_id: int, timeout: float = 60) -> None:
        """Restart a broker on its data directory and wait until it is registered again.

        A running broker is shut down cleanly first (SIGTERM: controlled shutdown moves its
        leaderships away), killed if that takes over 30 s; a killed one is just started.
        """
        node = self._node(broker_id)
        self.shutdown(broker_id)
        self._spawn(node)
        # The controller may still list the old incarnation (until its session times out),
        # so ask the new process itself: a KRaft broker serves requests once unfenced.
        wait_until(lambda: self._answers(node), timeout,
                   f"broker {broker_id} to serve requests again")

    def _answers(self, node: Node) -> bool:
        if not self._alive(node):
            raise ClusterError(f"broker {node.id} exited:\n{self._errors(node.id)}")
        direct = AdminClient({**self.security_config, "logger": client_log,
                              "bootstrap.servers": f"127.0.0.1:{node.listen_port}"})
        try:
            return node.id in direct.list_topics(timeout=2).brokers
        except KafkaException:
            return False

    def _log_node(self, node_id: int) -> Node:
        if self.controller is not None and node_id == self.controller.id:
            return self.controller
        return self._node(node_id)

    def log_tail(self, broker_id: int, lines: int = 20) -> str:
        """Return the last ``lines`` lines of a node's server.log (and JVM output).

        ``broker_id`` may also be ``CONTROLLER_ID``, the dedicated controller.
        """
        node = self._log_node(broker_id)
        parts = []
        for name in ("server.log", "stdout.log"):
            path = node.log_dir / name
            if path.exists() and path.stat().st_size:
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append("\n".join(text))
        return "\n".join(parts) or f"(broker {broker_id} has written no log yet)"

    def _errors(self, broker_id: int, lines: int = 15) -> str:
        """The ERROR/FATAL lines of a broker's log (with their stack traces' first lines)."""
        node = self._log_node(broker_id)
        found = []
        for name in ("server.log", "stdout.log"):
            path = node.log_dir / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()
                found += [ln for ln in text if re.search(
                    r"\b(ERROR|FATAL)\b|Exception|Error:|Unrecognized|Improperly specified", ln)]
        return "\n".join(found[-lines:]) or self.log_tail(broker_id, lines)

    def describe(self) -> str:
        """One line saying what this cluster is."""
        controller = " and a dedicated controller" if self.controller else ""
        network = " behind the lab network" if self.network_control else ""
        security = " (SASL_SSL, SCRAM-SHA-512)" if self.security else ""
        return f"local {self.broker_count}-broker Kafka {jars.KAFKA_VERSION}{controller} at " \
               f"{self.bootstrap_servers}{security}{network}"

    # -- sharing with other processes -------------------------------------------------------

    def save_state(self, path: str | os.PathLike | None = None) -> Path:
        """Record ports, pids and directories so other processes can ``attach``."""
        self.state_file = Path(path) if path else default_state_file()
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self._update_state()
        return self.state_file

    def _state(self) -> dict[str, Any]:
        return {
            "kafka_version": jars.KAFKA_VERSION,
            "brokers": self.broker_count,
            "bootstrap_servers": self.bootstrap_servers,
            "data_dir": str(self.data_dir),
            "detached": self.detached,
            "owner_pid": os.getpid(),
            "nodes": [asdict(n) for n in self.nodes.values()],
            "controller": asdict(self.controller) if self.controller else None,
            "network": {"pid": self.network_pid, "control": self.network_control}
            if self.network_control else None,
            # The path, not the password: attach() reads the settings from the file.
            "security": {"mode": self.security, "client_config": str(self.client_config_file)}
            if self.security else None,
        }

    def _update_state(self) -> None:
        with _locked(self.state_file):
            if self.state_file.exists() and not self._owned:
                # Keep the owner's record; change only the pids this process changed.
                state = json.loads(self.state_file.read_text())
                for entry in state["nodes"]:
                    entry["pid"] = self.nodes[entry["id"]].pid
            else:
                state = self._state()
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2))
            tmp.replace(self.state_file)

    def _load_pids(self) -> None:
        state = json.loads(self.state_file.read_text())
        for entry in state["nodes"]:
            self.nodes[entry["id"]].pid = entry["pid"]

    @classmethod
    def attach(cls, state_file: str | os.PathLike | None = None) -> LocalCluster:
        """Return a handle to the running cluster recorded in ``state_file``.

        The handle can break and restart nodes; ``close()`` leaves the cluster running.

        Raises:
            ClusterError: no state file, or none of its brokers is running.
        """
        path = Path(state_file) if state_file else default_state_file()
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise ClusterError(f"no lab cluster is recorded in {path}: none was started with "
                               "`python -m labkit cluster up`, or it was stopped") from None
        except (OSError, ValueError) as exc:
            raise ClusterError(f"no running lab cluster recorded in {path} ({exc})") from None
        cluster = cls(brokers=state["brokers"], detached=state["detached"])
        cluster._owned = False
        cluster._started = True
        cluster.state_file = path
        cluster.data_dir = Path(state["data_dir"])
        cluster.bootstrap_servers = state["bootstrap_servers"]
        cluster.nodes = {e["id"]: Node(**e) for e in state["nodes"]}
        if state.get("controller"):
            cluster.controller = Node(**state["controller"])
        if state.get("network"):
            cluster.with_network = True
            cluster.network_pid = state["network"]["pid"]
            cluster.network_control = state["network"]["control"]
        if not any(_is_alive(n.pid) for n in cluster.nodes.values()):
            raise ClusterError(f"the cluster recorded in {path} is not running (stale state)")
        if state.get("security"):
            cluster.security = state["security"]["mode"]
            cluster.client_config_file = Path(state["security"]["client_config"])
            try:
                settings = read_client_config(cluster.client_config_file)
            except ValueError as exc:
                raise ClusterError(f"the secured cluster recorded in {path} lost its client "
                                   f"settings ({exc})") from None
            settings.pop("bootstrap.servers", None)
            cluster.security_config = settings
        return cluster

    @classmethod
    def running(cls, state_file: str | os.PathLike | None = None) -> LocalCluster | None:
        """The running cluster recorded in ``state_file`` (see ``attach``), or None."""
        try:
            return cls.attach(state_file)
        except ClusterError:
            return None

    def status(self) -> pd.DataFrame:
        """One row per node: id, roles, port, pid, state (running / paused / down), log file."""
        self._refresh_pids()
        rows = []
        for node in self._all_nodes():
            state = _process_state(node.pid)
            rows.append({
                "broker": node.id, "roles": node.roles, "port": node.port,
                "controller_port": node.controller_port,
                "pid": node.pid,
                "state": "down" if state in (None, "Z", "X") else
                         "paused" if state == "T" else "running",
                "log": str(node.log_dir / "server.log"),
            })
        return pd.DataFrame(rows)


def _name(node_id: int) -> str:
    return "the controller" if node_id == CONTROLLER_ID else f"broker {node_id}"


# `python -m labkit.cluster.network` would import the module twice (the package imports it).
_PROXY_MAIN = ("import sys; from labkit.cluster.network import run_proxy; "
               "sys.exit(run_proxy(sys.argv[1]))")


class _PortTaken(Exception):
    pass


def _is_proxy(pid: int | None) -> bool:
    """True if ``pid`` is a running labkit network proxy."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"labkit.cluster.network" in cmdline and _process_state(pid, marked=False) not in (
        None, "Z", "X")


def labkit_proxies() -> dict[int, str]:
    """Return ``{pid: spec file}`` for every labkit network proxy running on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_proxy(int(entry.name)):
            with contextlib.suppress(OSError):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")[-2].decode()
    return found


@contextlib.contextmanager
def _locked(path: Path):
    lock_path = path.with_suffix(".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def connect(bootstrap_servers: str = "", brokers: int = 3, network: bool = False) -> Cluster:
    """Return the cluster the lab should use.

    In order: the external cluster named by ``bootstrap_servers`` or
    ``$KAFKA_BOOTSTRAP_SERVERS`` (with ``$KAFKA_CLIENT_CONFIG`` settings); the local cluster
    recorded in the state file (``cluster up`` or the report runner); else a new
    ``LocalCluster(brokers)`` owned by this process and stopped when it exits.

    Args:
        bootstrap_servers: an explicit address; "" means "decide as above".
        brokers: broker count if a local cluster has to be started.
        network: the experiment needs the lab network (``LocalCluster(network=True)``): a
            recorded cluster without one is passed over for the one recorded in
            ``$LABKIT_NETWORK_STATE_FILE`` (if set and running), else a cluster with a
            network is started. An external cluster is returned as it is; its ``network``
            says it has none.

    Raises:
        ClusterUnreachable: the external cluster did not answer within seconds.
    """
    address = bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    state_files = [default_state_file()]
    if network and os.environ.get("LABKIT_NETWORK_STATE_FILE"):
        state_files.append(Path(os.environ["LABKIT_NETWORK_STATE_FILE"]))
    for state_file in state_files:
        if not state_file.exists():
            continue
        try:
            local = LocalCluster.attach(state_file)
        except ClusterError as exc:
            _log.warning("ignoring %s", exc)
            continue
        wanted = not network or local.network_control
        if wanted and (not address or address == local.bootstrap_servers):
            return local
    if address:
        config_file = os.environ.get("KAFKA_CLIENT_CONFIG")
        config = read_client_config(config_file) if config_file else None
        return ExternalCluster(address, config)
    return LocalCluster(brokers=brokers, network=network).start()
