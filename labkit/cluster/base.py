"""What every Kafka cluster offers the lab, local or external: clients' config, topics, leaders.

``Cluster`` holds the inspection methods (topics, partitions, leaders, ISRs, coordinators)
that work on any cluster; ``ExternalCluster`` is any cluster named by a bootstrap address
(``KAFKA_BOOTSTRAP_SERVERS``, plus an optional ``KAFKA_CLIENT_CONFIG`` properties file for
SASL/SSL), on which fault injection raises ``FaultInjectionUnavailable``. The local JVM
cluster is in ``labkit.cluster.local``. Here too: the one wait helper (``wait_until``), the
one retry of transient Kafka errors (``retrying``) and the topic-name rule.
"""


from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

SUPPORTED_BROKER_COUNTS = (1, 3)
CONTROLLER_ID = 0  # node id of the dedicated controller of a 3-broker LocalCluster
CONTROLLER_HEAP = "256m"
LAB_TOPICS = ("user-events", "order-events")
"""The lab's two topics: the producer experiments write both, the consumer group reads both."""
LAB_TOPIC_PARTITIONS = 6

NODE_MARKER = "-Dlabkit.node="
"""JVM flag that marks a broker started by labkit (used to find leftover JVMs)."""

_log = logging.getLogger(__name__)
# librdkafka's own log lines (connection refused while a broker is down, ...) go through
# Python logging under this name instead of straight to stderr.
client_log = logging.getLogger("labkit.librdkafka")

_T = TypeVar("_T")


class ClusterError(RuntimeError):
    """A cluster could not be started, reached or used; the message says why."""


class ClusterUnreachable(ClusterError):
    """No broker answered at the bootstrap address in time."""


class FaultInjectionUnavailable(ClusterError):
    """Fault injection was asked of a cluster this process cannot control."""


TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
"""Kafka's rule for topic names: 1 to 249 of ASCII letters, digits, '.', '_' and '-'."""


def check_topic_name(name: object) -> str:
    """Return ``name`` if Kafka accepts it as a topic name.

    Raises:
        ValueError: it is not a string of 1 to 249 ASCII letters, digits, '.', '_' or '-',
            or it is "." or "..".
    """
    if not isinstance(name, str) or not TOPIC_NAME.match(name) or name in (".", ".."):
        raise ValueError(f"topic name {name!r} is not allowed: use 1 to 249 ASCII letters, "
                         f"digits, '.', '_' or '-' (and not '.' or '..')")
    return name


def unique_name(prefix: str) -> str:
    """A topic or group name no earlier run used, e.g. ``delivery-3f9a1c2e``."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


TRANSIENT_ERRORS = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._NOENT,
                    KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE,
                    KafkaError.NOT_LEADER_FOR_PARTITION)
"""Errors that pass by themselves besides those librdkafka flags retriable (an admin
request's per-partition errors carry no such flag): a coordinator moving or loading, and a
topic created a moment ago whose leaders the client (``_NOENT``, "No leaders found") or the
leader itself (``UNKNOWN_TOPIC_OR_PART``) does not know yet, or a leadership moving."""


def retrying(call: Callable[[], _T], timeout: float, interval: float = 0.2) -> _T:
    """Return ``call()``, called again while its ``KafkaException`` may pass.

    That is one of ``TRANSIENT_ERRORS``, or any error librdkafka calls retriable.

    Raises:
        KafkaException: another error, or a transient one still there after ``timeout`` s.
    """
    def transient(exc: Exception) -> bool:
        if not isinstance(exc, KafkaException):
            return False
        err = exc.args[0]
        return err.retriable() or err.code() in TRANSIENT_ERRORS

    return wait_until(lambda: [call()], timeout, "a transient error to pass", interval,
                      passes=transient, on_timeout=lambda last: last)[0]


def wait_until(check: Callable[[], _T], timeout: float, what: str, interval: float = 0.2, *,
               passes: Callable[[Exception], bool] | None = None,
               on_timeout: Callable[[Exception | None], Exception] | None = None) -> _T:
    """Call ``check`` until it returns a truthy value and return that value.

    The one deadline loop of labkit: every wait with a time limit goes through it.

    Args:
        check: called repeatedly (at least once); a falsy value or an exception that
            ``passes`` means "not yet".
        timeout: seconds before giving up.
        what: the awaited condition, for the error message.
        interval: seconds between calls.
        passes: which exceptions of ``check`` mean "not yet"; the others propagate at once.
            Default: every ``Exception``.
        on_timeout: builds the exception raised when time is up, from the last exception
            that passed (None if none did). Default: a ``TimeoutError`` naming ``what``.

    Raises:
        TimeoutError: the condition did not hold within ``timeout`` seconds (or what
            ``on_timeout`` returns).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            if passes is not None and not passes(exc):
                raise
            last_error = exc
        if time.monotonic() >= deadline:
            if on_timeout is not None:
                raise on_timeout(last_error)
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        if interval:
            time.sleep(interval)


class Cluster:
    """What every cluster offers: clients' config, topics, leaders and ISRs.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        client_config: extra librdkafka settings every client needs (security, SASL, SSL).
    """

    local = False

    def __init__(self, bootstrap_servers: str, client_config: dict[str, str] | None = None):
        self.bootstrap_servers = bootstrap_servers
        self.security_config = dict(client_config or {})
        self._admin: AdminClient | None = None

    # -- clients ---------------------------------------------------------------------------

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """Return a librdkafka config dict for this cluster plus ``overrides``.

        Keys use librdkafka's dotted names; pass them as a dict when they contain dots, e.g.
        ``cluster.client_config(**{"acks": "all", "linger.ms": 5})``.
        """
        return {"bootstrap.servers": self.bootstrap_servers, **self.security_config, **overrides}

    def admin(self, fresh: bool = False) -> AdminClient:
        """Return this handle's AdminClient (created on first use).

        Args:
            fresh: a new client instead, not kept: its metadata cache starts empty.
        """
        if self._admin is None or fresh:
            # Asking about a topic must never create it (auto.create.topics.enable is on).
            admin = AdminClient(self.client_config(
                logger=client_log, **{"allow.auto.create.topics": False}))
            if fresh:
                return admin
            self._admin = admin
        return self._admin

    # -- inspection ------------------------------------------------------------------------

    @property
    def brokers(self) -> list[int]:
        """Ids of the brokers currently registered (alive) in the cluster, sorted."""
        return sorted(self.admin().list_topics(timeout=10).brokers)

    def create_topic(
        self,
        name: str,
        partitions: int = 3,
        replication_factor: int | None = None,
        config: dict[str, str] | None = None,
        timeout: float = 30,
        replica_assignment: list[list[int]] | None = None,
    ) -> None:
        """Create a topic (or keep it if it exists) and wait until every partition has a leader.

        Args:
            name: topic name.
            partitions: partition count.
            replication_factor: replicas per partition; default min(3, brokers).
            config: topic configs, e.g. ``{"min.insync.replicas": "2"}``.
            timeout: seconds to wait for creation and leaders.
            replica_assignment: the brokers of each partition, preferred leader first, e.g.
                ``[[1, 2]]``; it sets the partition count and replication factor, so
                ``partitions`` and ``replication_factor`` must then agree with it.

        Raises:
            ValueError: the broker refused the topic (bad name, RF above the broker count, ...).
        """
        check_topic_name(name)
        if replica_assignment is not None:
            sizes = {len(r) for r in replica_assignment}
            if len(replica_assignment) != partitions or len(sizes) != 1 or (
                    replication_factor not in (None, *sizes)):
                raise ValueError(
                    f"replica_assignment={replica_assignment!r} must list {partitions} "
                    f"partition(s) of equally many brokers (replication_factor="
                    f"{replication_factor!r})"
                )
            rf = sizes.pop()
            # confluent-kafka wants the partition count here, and no replication factor.
            new = NewTopic(name, num_partitions=partitions, replica_assignment=replica_assignment,
                           config=dict(config or {}))
        else:
            rf = replication_factor or min(3, len(self.brokers))
            new = NewTopic(name, partitions, rf, config=dict(config or {}))
        future = self.admin().create_topics([new], operation_timeout=timeout)[name]
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            err = exc.args[0]
            if err.name() != "TOPIC_ALREADY_EXISTS":
                raise ValueError(
                    f"cannot create topic {name!r} (partitions={partitions}, "
                    f"replication_factor={rf}): {err.str()}"
                ) from None
        wait_until(
            lambda: all(p.leader >= 0
                        for p in self.topic_metadata(name, settle=0).partitions.values()),
            timeout,
            f"a leader for every partition of {name}",
        )

    def create_lab_topics(self, partitions: int = LAB_TOPIC_PARTITIONS) -> tuple[str, ...]:
        """Create the lab's two topics (``LAB_TOPICS``) if missing and return their names."""
        for topic in LAB_TOPICS:
            self.create_topic(topic, partitions)
        return LAB_TOPICS

    def fresh_lab_topics(self, partitions: int = LAB_TOPIC_PARTITIONS) -> list[str]:
        """Create new, empty topics shaped like the lab's two (unique names) and return them.

        For experiments that must start from a clean slate, e.g. a consumer group reading
        from the beginning.
        """
        names = [unique_name(topic) for topic in LAB_TOPICS]
        for name in names:
            self.create_topic(name, partitions)
        return names

    def delete_topic(self, name: str, timeout: float = 30) -> None:
        """Delete a topic and wait until it is gone."""
        self.admin().delete_topics([name], operation_timeout=timeout)[name].result(timeout)
        wait_until(
            lambda: name not in self.admin().list_topics(timeout=5).topics,
            timeout,
            f"topic {name} to disappear",
        )

    def topic_metadata(self, topic: str, settle: float = 3.0):
        """Fresh metadata of one topic (a librdkafka TopicMetadata).

        A broker may not know a topic created a moment ago; it is asked again for up to
        ``settle`` seconds before the topic is declared unknown.

        Raises:
            ValueError: the topic does not exist.
        """
        found = [None]

        def known():
            found[0] = self.admin().list_topics(topic, timeout=10).topics.get(topic)
            return found[0] is not None and found[0].error is None and found[0]

        def unknown(_last) -> ValueError:
            reason = found[0].error.str() if found[0] is not None else "not in metadata"
            return ValueError(f"unknown topic {topic!r}: {reason}")

        return wait_until(known, settle, f"topic {topic}", 0.1, passes=lambda _exc: False,
                          on_timeout=unknown)

    def _partition(self, topic: str, partition: int):
        parts = self.topic_metadata(topic).partitions
        if partition not in parts:
            raise ValueError(
                f"topic {topic!r} has no partition {partition}; it has 0..{len(parts) - 1}"
            )
        return parts[partition]

    def leader(self, topic: str, partition: int) -> int:
        """Return the broker id leading ``topic``/``partition`` (-1 while it has none)."""
        return self._partition(topic, partition).leader

    def isr(self, topic: str, partition: int) -> list[int]:
        """Return the in-sync replica ids of ``topic``/``partition``, sorted."""
        return sorted(self._partition(topic, partition).isrs)

    def replicas(self, topic: str, partition: int) -> list[int]:
        """Return the assigned replica ids of ``topic``/``partition``, in assignment order."""
        return list(self._partition(topic, partition).replicas)

    def partitions(self, topics: tuple[str, ...] | list[str] = LAB_TOPICS) -> pd.DataFrame:
        """Return one row per partition of ``topics``.

        Columns: topic, partition, leader (-1 = none), replicas (list), isr (list, sorted),
        under_replicated (bool: ISR smaller than the replica set).
        """
        rows = []
        for topic in topics:
            meta = self.topic_metadata(topic)
            for p in sorted(meta.partitions.values(), key=lambda p: p.id):
                rows.append({
                    "topic": topic, "partition": p.id, "leader": p.leader,
                    "replicas": list(p.replicas), "isr": sorted(p.isrs),
                    "under_replicated": len(p.isrs) < len(p.replicas),
                })
        return pd.DataFrame(rows)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each node's process has used so far, by node name.

        Not measurable on a cluster the lab did not start (its brokers run elsewhere, out
        of this machine's sight): this returns an empty dict, and a reader of two calls
        finds no broker CPU rather than a made-up zero. ``LocalCluster`` overrides it.

        Returns:
            ``{}``.
        """
        return {}

    # -- faults (local clusters only) -------------------------------------------------------

    def _no_faults(self, action: str):
        raise FaultInjectionUnavailable(
            f"{action} is not available on an external cluster ({self.bootstrap_servers}): "
            "labkit can only break brokers it runs itself (unset KAFKA_BOOTSTRAP_SERVERS to use "
            "the local cluster)"
        )

    def kill(self, broker_id: int) -> None:
        """SIGKILL a broker (local clusters only)."""
        self._no_faults("kill()")

    def pause(self, broker_id: int) -> None:
        """SIGSTOP a broker (local clusters only)."""
        self._no_faults("pause()")

    def resume(self, broker_id: int) -> None:
        """SIGCONT a paused broker (local clusters only)."""
        self._no_faults("resume()")

    def shutdown(self, broker_id: int) -> None:
        """Stop a broker cleanly and leave it down (local clusters only)."""
        self._no_faults("shutdown()")

    def restart(self, broker_id: int) -> None:
        """Restart a broker on the same data directory (local clusters only)."""
        self._no_faults("restart()")

    def log_tail(self, broker_id: int, lines: int = 20) -> str:
        """Return the last lines of a broker's log (local clusters only)."""
        self._no_faults("log_tail()")

    @property
    def network(self):
        """The network between clients, brokers and controller (``LocalCluster(network=True)``).

        Raises:
            FaultInjectionUnavailable: this cluster has no lab network.
        """
        self._no_faults("network")

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Release this handle. Stops the cluster only if this handle started it."""
        self._admin = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def describe(self) -> str:
        """One line saying what this cluster is."""
        return f"external cluster at {self.bootstrap_servers}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.bootstrap_servers}>"


class ExternalCluster(Cluster):
    """A cluster labkit does not run: inspect and use it, but no fault injection.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        client_config: extra librdkafka settings (e.g. from ``read_client_config``).
        timeout: seconds to wait for a broker to answer before raising.

    Raises:
        ClusterUnreachable: no broker answered within ``timeout`` seconds, or one refused the
            client's credentials (the message names the cause, see ``refusal``).
        ValueError: the client config has a key or value librdkafka rejects.
    """

    def __init__(self, bootstrap_servers: str, client_config: dict[str, str] | None = None,
                 timeout: float = 6):
        super().__init__(bootstrap_servers, client_config)
        self._probe(timeout)

    def _probe(self, timeout: float) -> None:
        """Ask for metadata until a broker answers, a broker refuses us, or time is up.

        librdkafka reports why a connection failed only in its error callback and log, not
        in the exception ``list_topics`` raises ("Broker transport failure"), so the probe
        records both and names the cause. A refusal (bad credentials, an untrusted
        certificate) ends the probe at once: it does not pass by itself.
        """
        said = _ClientRecord()
        try:
            admin = AdminClient(self.client_config(
                logger=said, error_cb=said.error, **{"allow.auto.create.topics": False}))
        except KafkaException as exc:
            raise ValueError(f"bad client config for {self.bootstrap_servers}: "
                             f"{exc.args[0].str()}") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
                return
            except KafkaException:
                pass
            admin.poll(0.1)  # serves the error callback; and paces a list_topics that fails fast
            cause = refusal(said.lines, self.security_config, self.bootstrap_servers)
            if cause:
                raise ClusterUnreachable(cause)
            if time.monotonic() >= deadline:
                break
        raise ClusterUnreachable(
            handshake_failure(said.lines, self.security_config, self.bootstrap_servers) or
            f"no Kafka broker answered at {self.bootstrap_servers!r} within {timeout:g} s; check "
            "KAFKA_BOOTSTRAP_SERVERS (and KAFKA_CLIENT_CONFIG for SASL/SSL), or unset it to "
            "use the lab's local cluster"
        )


class _ClientRecord:
    """A librdkafka ``logger`` and ``error_cb`` that keeps what the client said.

    Log lines go on to ``client_log`` as well.
    """

    def __init__(self):
        self.lines: list[str] = []

    def log(self, level: int, msg: str, *args: Any) -> None:
        client_log.log(level, msg, *args)
        self.lines.append(msg % args if args else msg)

    def error(self, err: KafkaError) -> None:
        self.lines.append(err.str())


def refusal(lines: list[str], config: dict[str, str], address: str) -> str:
    """Why brokers refused a client, from its librdkafka error and log lines ("" if not).

    A refusal is final: wrong SASL credentials, a SASL mechanism the broker does not offer,
    or a broker certificate the client does not trust. The sentence never holds a password.

    Args:
        lines: what the client's ``error_cb`` and ``logger`` received.
        config: the client's security settings (for the user and mechanism named).
        address: the bootstrap servers, named in the sentence.
    """
    text = "\n".join(lines)
    mechanism = config.get("sasl.mechanism", config.get("sasl.mechanisms", "GSSAPI"))
    if "invalid credentials" in text or "SASL authentication error" in text:
        return (f"SASL authentication failed at {address!r} (wrong user or password?): the "
                f"broker refused user {config.get('sasl.username', '')!r} with {mechanism}; "
                f"check sasl.username and sasl.password in KAFKA_CLIENT_CONFIG")
    offered = re.search(r"broker's supported mechanisms: ([\w, -]*)", text)
    if "Unsupported SASL mechanism" in text:
        return (f"SASL authentication failed at {address!r}: the broker does not offer "
                f"sasl.mechanism={mechanism}"
                + (f" (it offers {offered.group(1).strip()})" if offered else ""))
    if "certificate verify failed" in text:
        return (f"TLS certificate verify failed at {address!r}: the broker's certificate is "
                f"not signed by a CA this client trusts; point ssl.ca.location in "
                f"KAFKA_CLIENT_CONFIG at the CA that signed it")
    return ""


def handshake_failure(lines: list[str], config: dict[str, str], address: str) -> str:
    """The cause of brokers dropping a client mid-handshake ("" if they did not).

    A client whose ``security.protocol`` differs from the listener's gets its connection
    closed (a plaintext client of a TLS listener) or a failed TLS handshake (a TLS client of
    a plaintext listener); librdkafka then only says "disconnected". Unlike a ``refusal``
    this may also be a broker shutting down, so the probe waits its time before saying so.

    Args:
        lines: what the client's ``error_cb`` and ``logger`` received.
        config: the client's security settings.
        address: the bootstrap servers, named in the sentence.
    """
    text = "\n".join(lines)
    protocol = config.get("security.protocol", "PLAINTEXT").upper()
    if re.search(r"closed by peer.*in state (APIVERSION_QUERY|UP|AUTH)"
                 r"|Disconnected while requesting ApiVersion|SSL handshake failed", text):
        return (f"the broker at {address!r} closed the connection during the handshake: is "
                f"security.protocol right? (this client speaks {protocol}; set the listener's "
                f"protocol in KAFKA_CLIENT_CONFIG)")
    return ""


def read_client_config(path: str | os.PathLike) -> dict[str, str]:
    """Read a Java-style ``key=value`` properties file of librdkafka client settings.

    Blank lines and lines starting with ``#`` or ``!`` are ignored.

    Raises:
        ValueError: the file is missing or a line is not ``key=value``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"KAFKA_CLIENT_CONFIG names {path}, which is not a file")
    config = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected key=value, got {raw!r}")
        config[key.strip()] = value.strip()
    return config


