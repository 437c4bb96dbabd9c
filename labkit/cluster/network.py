"""A network for the embedded cluster: latency, bandwidth and partitions, in user space.

``LocalCluster(network=True)`` routes every connection through a lab-owned TCP proxy (its own
process, ``run_proxy`` on a JSON spec of its routes) that lives as long as the cluster: client
to broker, broker to broker (replication, transaction markers) and broker to controller. The
kernel here has no netem and no packet filter, and users on macOS or without root have
neither, so the proxy adds the network's faults itself, as rules on directed links:

- **delay**: bytes from ``src`` to ``dst`` are held ``ms`` (plus up to ``jitter_ms`` either
  way) before they are passed on; byte order within a connection is kept.
- **bandwidth**: bytes from ``src`` to ``dst`` leave no faster than ``mbit`` megabits a second
  (one queue per link, shared by its connections, as a real link's is).
- **partition** (``cut="drop"``): bytes stop flowing, as with a pulled cable. Open connections
  go silent and hang until the peers' own timeouts; new ones are accepted but never answered.
  Healed before the peers give up, the held bytes flow again, as TCP retransmits them.
  ``cut="reset"`` instead resets every connection of the link (RST), now and on every try.

Endpoints are broker ids (ints), ``"controller"``, and clients by their ``client.id`` (a
connection's first request names it), plus ``"clients"`` (every client) and ``"*"`` (every
endpoint). How the proxy knows who is talking:

- Every connection's first request carries, in its Kafka request header, the client id of
  whoever opened it. Brokers name their own connections: ``broker-<id>-fetcher-<n>`` for
  replication (``broker-<id>-...`` for other broker-to-broker requests), and towards the
  controller ``raft-client-<id>`` (the metadata quorum's fetches) and ``<id>`` (heartbeats
  and forwarded requests). Clients are known by their ``client.id``.
- The controller advertises the proxy's address on its listener, so that brokers that
  learn the quorum leader's endpoint from the quorum itself (KIP-853, after a fetch times
  out) reconnect through the proxy and not around it.

``Network`` is the handle a notebook or test drives: it talks to the proxy process through
a Unix socket in the cluster's data directory, so every process attached to a shared cluster
drives the same network.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import json
import os
import random
import re
import select
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CUTS = ("drop", "reset")
"""How ``partition`` cuts a link: bytes stop (``drop``), or every connection is reset."""

RULE_COLUMNS = ("src", "dst", "delay_ms", "jitter_ms", "mbit", "cut")
"""The columns of ``Network.links()``: one row per directed link with a rule.

src and dst (endpoint names: a broker id as text, ``controller``, a client id, ``clients`` or
``*``), delay_ms and jitter_ms (added one-way latency, 0 if none), mbit (the link's rate
limit, NaN if none), cut (``drop``, ``reset`` or None).
"""

CONNECTION_COLUMNS = ("src", "dst", "client_id", "opened", "bytes_up", "bytes_down", "state")
"""The columns of ``Network.connections()``: one row per connection through the proxy.

src (who opened it: a broker id as text, or the client id), dst (the broker id as text or
``controller``), client_id (from its first request; "" for broker-to-controller links,
which are known by their port), opened (UTC timestamp), bytes_up (src to dst) and bytes_down,
state (``open``, ``waiting``: accepted while its link is cut, ``closed``).
"""

# The client ids Kafka 4 brokers give their own connections: replication and other
# broker-to-broker requests (broker-<id>-fetcher-<n>, ...), the metadata quorum's fetches
# (raft-client-<id>), heartbeats and other requests to the controller (<id>).
_BROKER_CLIENT = re.compile(r"^(?:broker-(?P<a>\d+)-.*|raft-client-(?P<b>\d+)|(?P<c>\d+))$")
_SPECIAL = ("controller", "clients", "*")
_FIELDS = ("delay_ms", "jitter_ms", "mbit", "cut")
_CHUNK = 64 * 1024
_QUEUE_LIMIT = 1024 * 1024  # bytes held per direction before the proxy stops reading
TIMER_SLACK_S = 0.0001
"""A chunk due less than this many seconds from now goes on at once: a delay can come out
this much short (so a round trip over two delays, twice this)."""


class NetworkError(RuntimeError):
    """The network proxy is not running or did not answer."""


def endpoint_kind(name: str) -> str:
    """``broker``, ``controller`` or ``client`` for an endpoint name as the proxy uses it."""
    if name == "controller":
        return "controller"
    return "broker" if name.isdigit() else "client"


def _matches(pattern: str, name: str) -> bool:
    return pattern == name or pattern == "*" or (
        pattern == "clients" and endpoint_kind(name) == "client")


def effective(rules: dict[tuple[str, str], dict], src: str, dst: str) -> dict:
    """The rule that applies to bytes from ``src`` to ``dst``: every matching rule combined.

    Delays and jitters add up (a client delayed and a broker delayed: both), the lowest rate
    limit wins, and a reset beats a drop.
    """
    out: dict[str, Any] = {"delay_ms": 0.0, "jitter_ms": 0.0, "mbit": None, "cut": None}
    for (a, b), rule in rules.items():
        if _matches(a, src) and _matches(b, dst):
            out["delay_ms"] += rule.get("delay_ms") or 0.0
            out["jitter_ms"] += rule.get("jitter_ms") or 0.0
            if rule.get("mbit") and (out["mbit"] is None or rule["mbit"] < out["mbit"]):
                out["mbit"] = rule["mbit"]
            cut = rule.get("cut")
            if cut == "reset" or (cut == "drop" and out["cut"] is None):
                out["cut"] = cut
    return out


# -- the proxy process -------------------------------------------------------------------------


class _Reset(Exception):
    """The link was cut with a reset: abort the connection."""


def _abort(writer: asyncio.StreamWriter | None) -> None:
    """Close a connection with a TCP reset (linger 0), as a rejecting host would."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Connection:
    src: str
    dst: str
    client_id: str
    opened: float = field(default_factory=time.time)
    up: int = 0
    down: int = 0
    state: str = "waiting"
    writers: list = field(default_factory=list)

    def abort(self) -> None:
        for writer in self.writers:
            _abort(writer)
        self.state = "closed"


class Proxy:
    """The proxy process's state: routes, rules, open connections, per-link queues."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.rules: dict[tuple[str, str], dict] = {}
        self.connections: list[_Connection] = []
        self.busy_until: dict[tuple[str, str], float] = collections.defaultdict(float)
        self.changed = asyncio.Event()

    # rules ------------------------------------------------------------------------------------

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()
        for conn in list(self.connections):
            if conn.state != "closed" and "reset" in (
                    effective(self.rules, conn.src, conn.dst)["cut"],
                    effective(self.rules, conn.dst, conn.src)["cut"]):
                conn.abort()

    def put(self, rules: list[dict]) -> None:
        for rule in rules:
            key = (str(rule["src"]), str(rule["dst"]))
            merged = {**self.rules.get(key, {}),
                      **{k: rule[k] for k in _FIELDS if k in rule}}
            merged = {k: v for k, v in merged.items() if v not in (None, 0, 0.0)}
            if merged:
                self.rules[key] = merged
            else:
                self.rules.pop(key, None)
        self._notify()

    def heal(self, a: str | None, b: str | None) -> None:
        for key in list(self.rules):
            if a is None or (b is None and a in key) or set(key) == {a, b} or key == (a, b):
                del self.rules[key]
        self._notify()

    def state(self) -> dict:
        self.connections = [c for c in self.connections
                            if c.state != "closed" or time.time() - c.opened < 600]
        return {
            "rules": [{"src": a, "dst": b, **rule} for (a, b), rule in self.rules.items()],
            "connections": [{"src": c.src, "dst": c.dst, "client_id": c.client_id,
                             "opened": c.opened, "bytes_up": c.up, "bytes_down": c.down,
                             "state": c.state} for c in self.connections],
        }

    async def _open(self, src: str, dst: str) -> dict:
        """Wait while the link from src to dst is cut by a drop; raise _Reset if reset."""
        while True:
            rule = effective(self.rules, src, dst)
            if rule["cut"] == "reset":
                raise _Reset()
            if rule["cut"] is None:
                return rule
            await self.changed.wait()

    # connections ------------------------------------------------------------------------------

    async def serve_route(self, route: dict) -> asyncio.Server:
        async def accept(reader, writer):
            with contextlib.suppress(asyncio.CancelledError):  # the proxy is stopping
                await self._handle(route, reader, writer)
        return await asyncio.start_server(accept, "127.0.0.1", route["listen"],
                                          reuse_address=True)

    async def _handle(self, route: dict, reader, writer) -> None:
        dst, first, client_id = str(route["dst"]), b"", ""
        src = route.get("src")
        conn = None
        try:
            first, client_id = await _first_request(reader)
            if src is None:  # the first request names who is talking
                match = _BROKER_CLIENT.match(client_id)
                src = (match["a"] or match["b"] or match["c"]) if match else (
                    client_id or "rdkafka")
            src = str(src)
            conn = _Connection(src, dst, client_id, writers=[writer])
            self.connections.append(conn)
            await self._open(src, dst)  # a new connection over a cut link: never answered
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", route["upstream"])
            except OSError:
                _abort(writer)  # the broker is down: refused, as it would be without us
                conn.state = "closed"
                return
            conn.writers.append(up_writer)
            conn.state = "open"
            pipes = [asyncio.ensure_future(self._pipe(conn, reader, up_writer, src, dst, first,
                                                      "up")),
                     asyncio.ensure_future(self._pipe(conn, up_reader, writer, dst, src, b"",
                                                      "down"))]
            try:
                finished, _ = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except (_Reset, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            if conn is not None:
                conn.abort()
            else:
                _abort(writer)

    async def _pipe(self, conn: _Connection, reader, writer, src: str, dst: str,
                    first: bytes, direction: str) -> None:
        """Carry bytes one way under the link's rules, in order, until EOF or an error."""
        loop = asyncio.get_running_loop()
        queue: collections.deque = collections.deque()
        ready, room = asyncio.Event(), asyncio.Event()
        held = 0
        done = False

        async def send() -> None:
            nonlocal held
            while True:
                while not queue:
                    if done:
                        with contextlib.suppress(OSError):
                            if writer.can_write_eof():
                                writer.write_eof()
                        return
                    ready.clear()
                    await ready.wait()
                at, data = queue[0]
                wait = at - loop.time()
                if wait > TIMER_SLACK_S:
                    await asyncio.sleep(wait)
                await self._open(src, dst)  # a cut stops what is already on its way too
                queue.popleft()
                writer.write(data)
                await writer.drain()
                held -= len(data)
                setattr(conn, direction, getattr(conn, direction) + len(data))
                room.set()

        sender = asyncio.ensure_future(send())
        last_at = 0.0
        ended = False  # the reader saw EOF: what is queued still goes out, then EOF
        try:
            while True:
                await self._open(src, dst)
                data = first or await reader.read(_CHUNK)
                first = b""
                if not data:
                    ended = True
                    break
                now = loop.time()
                rule = effective(self.rules, src, dst)
                at = now
                if rule["mbit"]:
                    start = max(self.busy_until[(src, dst)], now)
                    at = self.busy_until[(src, dst)] = start + len(data) * 8 / (rule["mbit"] * 1e6)
                delay = rule["delay_ms"]
                if rule["jitter_ms"]:
                    delay += random.uniform(-rule["jitter_ms"], rule["jitter_ms"])
                at = last_at = max(last_at, at + max(0.0, delay) / 1000)
                queue.append((at, data))
                held += len(data)
                ready.set()
                while held > _QUEUE_LIMIT and not sender.done():
                    room.clear()
                    await room.wait()
                if sender.done():
                    break
        finally:
            done = True
            ready.set()
            if not ended:
                sender.cancel()
        await sender  # re-raises the sender's error, so the connection is torn down

    # control ---------------------------------------------------------------------------------

    async def control(self, reader, writer) -> None:
        try:
            request = json.loads(await reader.readline())
            op = request.get("op")
            if op == "put":
                self.put(request["rules"])
            elif op == "heal":
                self.heal(request.get("a"), request.get("b"))
            elif op != "state":
                raise ValueError(f"unknown op {op!r}")
            reply = {"ok": True, **self.state()}
        except Exception as exc:  # noqa: BLE001 - the caller gets the message
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        writer.write(json.dumps(reply).encode() + b"\n")
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()


async def _first_request(reader) -> tuple[bytes, str]:
    """Read a connection's first Kafka request header; return its bytes and client id.

    Every request header from v1 on has the client id as a 2-byte-length string after the
    api key, api version and correlation id: ``size:int32 key:int16 version:int16
    correlation:int32 client_id_len:int16 client_id``.
    """
    head = await reader.readexactly(14)
    (length,) = struct.unpack(">h", head[12:14])
    if length <= 0:
        return head, ""
    name = await reader.readexactly(length)
    return head + name, name.decode(errors="replace")


async def _serve(spec: dict) -> None:
    proxy = Proxy(spec)
    servers = [await proxy.serve_route(route) for route in spec["routes"]]
    control = Path(spec["control"])
    control.unlink(missing_ok=True)
    servers.append(await asyncio.start_unix_server(proxy.control, path=str(control)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    for conn in proxy.connections:
        conn.abort()


class _FineEpollSelector(selectors.EpollSelector):
    """epoll woken on time to tens of microseconds, by a timerfd armed for each wait.

    ``epoll_wait`` counts its timeout in whole milliseconds, rounded up, so asyncio's timers
    fire up to 1 ms late (0.4 ms at the median, measured here): every delayed chunk, twice
    per round trip. A timerfd in the same epoll wakes it at the exact time instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._timer = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if self._timer < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._selector.register(self._timer, select.EPOLLIN)

    def select(self, timeout: float | None = None):
        if timeout is not None and timeout > 0:
            seconds, fraction = divmod(timeout, 1)
            when = _ITimerSpec(_TimeSpec(0, 0), _TimeSpec(int(seconds), int(fraction * 1e9) or 1))
            self._libc.timerfd_settime(self._timer, 0, ctypes.byref(when), None)
        ready = super().select(timeout)  # the timerfd is no registered key: never in ready
        with contextlib.suppress(BlockingIOError):
            os.read(self._timer, 8)  # fired or not: level-triggered, so clear it
        return ready

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._timer)
        super().close()


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


_CLOCK_MONOTONIC, _TFD_NONBLOCK, _TFD_CLOEXEC = 1, 0o4000, 0o2000000


def _event_loop() -> asyncio.AbstractEventLoop:
    """The proxy's loop: with fine timers on Linux, the platform's default elsewhere."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            return asyncio.SelectorEventLoop(_FineEpollSelector())
    return asyncio.new_event_loop()


def run_proxy(spec_file: str | Path) -> int:
    """Run the proxy described by a JSON spec file until SIGTERM (the proxy process's body).

    The spec: ``{"control": <unix socket path>, "routes": [{"listen": port, "dst": broker id
    or "controller", "upstream": port, "src": broker id (known by the port) or absent}]}``.
    """
    with asyncio.Runner(loop_factory=_event_loop) as runner:
        runner.run(_serve(json.loads(Path(spec_file).read_text())))
    return 0


# -- the handle notebooks and tests drive ------------------------------------------------------


def _name(endpoint: int | str) -> str:
    return str(endpoint)


class Network:
    """Drive the network of a ``LocalCluster(network=True)`` (see the module docstring).

    Args:
        control: the proxy's control socket.
        brokers: the cluster's broker ids, to check endpoints against.

    Every method raises ``ValueError`` for an endpoint or value that is not allowed, before
    anything changes, and ``NetworkError`` if the proxy process does not answer.
    """

    def __init__(self, control: str | Path, brokers: list[int]):
        self.control = Path(control)
        self.brokers = sorted(brokers)

    # checks -------------------------------------------------------------------------------

    def _endpoint(self, value: Any, what: str = "endpoint") -> str:
        if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
            raise ValueError(self._allowed(what, value))
        if isinstance(value, int):
            if value not in self.brokers:
                raise ValueError(self._allowed(what, value))
            return str(value)
        if value.isdigit() and int(value) not in self.brokers:
            raise ValueError(self._allowed(what, value))
        return value

    def _allowed(self, what: str, value: Any) -> str:
        return (f"{what}={value!r} is not a network endpoint; use a broker id "
                f"({', '.join(map(str, self.brokers))}), 'controller', a client's client.id, "
                "'clients' (every client) or '*' (everyone)")

    @staticmethod
    def _number(name: str, value: Any, low: float, high: float, inclusive_low=True) -> float:
        ok = not isinstance(value, bool) and isinstance(value, int | float) and (
            (low <= value if inclusive_low else low < value) and value <= high)
        if not ok:
            bound = ">=" if inclusive_low else ">"
            raise ValueError(f"{name}={value!r} is not allowed; it must be a number {bound} "
                             f"{low:g} and <= {high:g}")
        return float(value)

    def _pairs(self, a, b, one_way: bool) -> list[tuple[str, str]]:
        a, b = self._endpoint(a, "src"), self._endpoint(b, "dst")
        if a == b:
            raise ValueError(f"src and dst are both {a!r}; a link joins two endpoints")
        return [(a, b)] if one_way else [(a, b), (b, a)]

    # actions ------------------------------------------------------------------------------

    def delay(self, src: int | str, dst: int | str, ms: float, jitter_ms: float = 0,
              one_way: bool = False) -> None:
        """Hold bytes between ``src`` and ``dst`` for ``ms`` ± ``jitter_ms`` each way.

        Each direction gets the delay, so a round trip between them takes ``2 * ms`` more
        (``one_way=True``: only bytes from ``src`` to ``dst``). 0 removes the delay.
        """
        ms = self._number("ms", ms, 0, 60_000)
        jitter_ms = self._number("jitter_ms", jitter_ms, 0, ms)
        self._put([{"src": a, "dst": b, "delay_ms": ms, "jitter_ms": jitter_ms}
                   for a, b in self._pairs(src, dst, one_way)])

    def bandwidth(self, src: int | str, dst: int | str, mbit: float | None,
                  one_way: bool = False) -> None:
        """Limit the link between ``src`` and ``dst`` to ``mbit`` megabits a second each way.

        None removes the limit.
        """
        if mbit is not None:
            mbit = self._number("mbit", mbit, 0, 100_000, inclusive_low=False)
        self._put([{"src": a, "dst": b, "mbit": mbit}
                   for a, b in self._pairs(src, dst, one_way)])

    def partition(self, a: int | str, b: int | str, one_way: bool = False,
                  cut: str = "drop") -> None:
        """Cut the link between ``a`` and ``b`` (``one_way``: only bytes from a to b).

        ``cut="drop"``: bytes stop as with a pulled cable; ``"reset"``: connections are reset.
        """
        if cut not in CUTS:
            raise ValueError(f"cut={cut!r} is not allowed; use one of {', '.join(CUTS)}")
        self._put([{"src": x, "dst": y, "cut": cut} for x, y in self._pairs(a, b, one_way)])

    def isolate(self, node: int | str, from_: str | list = "everyone", cut: str = "drop") -> None:
        """Cut ``node`` off from ``from_``, both ways.

        Args:
            node: a broker id or ``"controller"``.
            from_: ``"everyone"``; ``"controller"``; ``"brokers"`` (the other brokers);
                ``"cluster"`` (the controller and the other brokers, so clients still reach
                it); or a list of endpoints.
            cut: ``"drop"`` or ``"reset"``, as for ``partition``.
        """
        name = self._endpoint(node, "node")
        if endpoint_kind(name) == "client" or name in ("clients", "*"):
            raise ValueError(f"node={node!r}: isolate takes a broker id or 'controller'; "
                             "cut a client off with partition(client_id, ...)")
        if cut not in CUTS:
            raise ValueError(f"cut={cut!r} is not allowed; use one of {', '.join(CUTS)}")
        others = [str(b) for b in self.brokers if str(b) != name]
        groups = {"everyone": ["*"], "controller": ["controller"], "brokers": others,
                  "cluster": ["controller", *others] if name != "controller" else others}
        if isinstance(from_, str):
            if from_ not in groups:
                raise ValueError(f"from_={from_!r} is not allowed; use one of "
                                 f"{', '.join(groups)} or a list of endpoints")
            peers = groups[from_]
        else:
            peers = [self._endpoint(p, "from_") for p in from_]
        peers = [p for p in peers if p != name]
        if not peers:
            raise ValueError(f"from_={from_!r} leaves nothing to cut {name!r} off from")
        self._put([rule for p in peers for rule in (
            {"src": name, "dst": p, "cut": cut}, {"src": p, "dst": name, "cut": cut})])

    def heal(self, a: int | str | None = None, b: int | str | None = None) -> None:
        """Remove rules: all of them, every rule naming ``a``, or those between ``a`` and ``b``."""
        if a is None and b is not None:
            raise ValueError("heal(b=...) needs a: heal(a, b) heals the link between them")
        self._ask({"op": "heal", "a": None if a is None else self._endpoint(a, "a"),
                   "b": None if b is None else self._endpoint(b, "b")})

    # state --------------------------------------------------------------------------------

    def links(self) -> pd.DataFrame:
        """The rules in force, one row per directed link (``RULE_COLUMNS``)."""
        rows = self._ask({"op": "state"})["rules"]
        frame = pd.DataFrame(rows, columns=list(RULE_COLUMNS))
        return frame.assign(delay_ms=frame.delay_ms.fillna(0.0),
                            jitter_ms=frame.jitter_ms.fillna(0.0),
                            mbit=frame.mbit.astype(float))

    def connections(self) -> pd.DataFrame:
        """The connections through the proxy, one row each (``CONNECTION_COLUMNS``)."""
        rows = self._ask({"op": "state"})["connections"]
        frame = pd.DataFrame(rows, columns=list(CONNECTION_COLUMNS))
        frame["opened"] = pd.to_datetime(frame.opened, unit="s", utc=True)
        return frame

    def answers(self) -> bool:
        """True if the proxy process answers on its control socket."""
        try:
            self._ask({"op": "state"}, timeout=1)
        except NetworkError:
            return False
        return True

    def _put(self, rules: list[dict]) -> None:
        self._ask({"op": "put", "rules": rules})

    def _ask(self, request: dict, timeout: float = 5) -> dict:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.control))
                sock.sendall(json.dumps(request).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        break
                    data += chunk
        except OSError as exc:
            raise NetworkError(f"the network proxy at {self.control} did not answer ({exc}); "
                               "is the cluster still running?") from None
        reply = json.loads(data or b"{}")
        if not reply.get("ok"):
            raise NetworkError(f"the network proxy refused {request['op']}: "
                               f"{reply.get('error', 'no answer')}")
        return reply


if __name__ == "__main__":
    sys.exit(run_proxy(sys.argv[1]))
