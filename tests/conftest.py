"""Test fixtures: real Kafka clusters started by the test session, and a JVM leak check.

Two tiers: a test that uses a cluster fixture (or is marked ``broker`` or ``notebooks``) is
in the broker tier; every other test is pure and may not start a JVM, which
``pytest -m "not broker"`` runs in seconds.

Tests never share the user's clusters: the session points ``LABKIT_STATE_FILE`` at a
temporary file and clears ``KAFKA_BOOTSTRAP_SERVERS`` (tests of the external path set it
themselves).
"""

import functools
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from labkit.cluster import LocalCluster, labkit_jvms, labkit_proxies
from labkit.cluster.faults import heal
from labkit.runner.report import needs_network

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_FIXTURES = {"cluster1", "cluster3", "cluster3net", "cluster3secured"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses a cluster fixture, or runs notebooks, as a broker test."""
    for item in items:
        if CLUSTER_FIXTURES & set(item.fixturenames) or item.get_closest_marker("notebooks"):
            item.add_marker(pytest.mark.broker)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """How ``make test``'s pytest-xdist workers share the tests.

    Each worker starts its own session clusters. A test file is one unit (its module
    fixtures start once), except that each notebook's smoke run is a unit of its own (they
    are most of the time) and every test of the lab network's cluster, in whatever file,
    is one unit, so only one worker starts that cluster. (pytest-xdist 3.8's own
    ``--dist loadgroup`` cannot do this under pytest 9.2: it writes the group into
    ``item._nodeid``, which pytest 9.2's ``nodeid`` no longer reads, so no group is seen.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return Units(config, log)


@functools.cache
def _unit(nodeid: str) -> str:
    """The scheduling unit of the test ``nodeid`` (see ``pytest_xdist_make_scheduler``)."""
    file, _, name = nodeid.partition("::")
    if file == "tests/test_notebooks.py":
        stem = re.search(r"\[(\d\d_\w+)\]$", name)
        notebook = ROOT / "notebooks" / f"{stem.group(1) if stem else ''}.ipynb"
        if not notebook.is_file():
            return file
        # its labkit.connect(network=True) attaches to the session's cluster3net
        return "network" if needs_network(notebook) else nodeid
    return "network" if "cluster3net" in (ROOT / file).read_text() else file


@pytest.fixture(autouse=True)
def pure_tests_start_no_cluster(request, monkeypatch):
    """A test outside the broker tier that starts a cluster is mis-filed: say so."""
    if request.node.get_closest_marker("broker"):
        return

    def refuse(self):
        raise AssertionError(f"{request.node.name} starts a Kafka cluster: mark it "
                             f"@pytest.mark.broker or use a cluster fixture")

    monkeypatch.setattr(LocalCluster, "start", refuse)


@pytest.fixture(scope="session", autouse=True)
def no_jvm_left_behind():
    """Fail the session if a broker JVM, network proxy or data directory it created outlives it.

    Every cluster of the session (in this process or in subprocesses) keeps its data in a
    session temp dir, so what is left behind is told apart from other clusters on the machine.
    """
    session_tmp = tempfile.mkdtemp(prefix="labkit-tests-")
    saved_tmp = tempfile.tempdir
    tempfile.tempdir = session_tmp
    saved = {k: os.environ.pop(k, None)
             for k in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_CLIENT_CONFIG", "TMPDIR",
                       "LABKIT_STATE_FILE", "LABKIT_NETWORK_STATE_FILE", "LABKIT_JVM_OPTIONS")}
    os.environ["TMPDIR"] = session_tmp
    # The C1 compiler only: every cluster of the session (notebooks', subprocesses' too) starts
    # with about 60 % of the time and CPU. The tests read no broker's speed.
    os.environ["LABKIT_JVM_OPTIONS"] = "-XX:TieredStopAtLevel=1"
    os.environ["LABKIT_STATE_FILE"] = os.path.join(session_tmp, "cluster.json")
    os.environ["LABKIT_NETWORK_STATE_FILE"] = os.path.join(session_tmp, "cluster-network.json")
    yield
    leftover = {pid: d for pid, d in labkit_jvms().items() if d.startswith(session_tmp)}
    proxies = {pid: d for pid, d in labkit_proxies().items() if d.startswith(session_tmp)}
    dirs = sorted(p.name for p in Path(session_tmp).glob("labkit-kafka-*"))
    tempfile.tempdir = saved_tmp
    for key, value in saved.items():
        os.environ.pop(key, None)
        if value is not None:
            os.environ[key] = value
    shutil.rmtree(session_tmp, ignore_errors=True)
    assert not leftover, f"broker JVMs left running after the tests: {leftover}"
    assert not proxies, f"network proxies left running after the tests: {proxies}"
    assert not dirs, f"cluster data directories left behind: {dirs}"


@pytest.fixture(scope="session")
def cluster3(no_jvm_left_behind):
    """A 3-broker cluster for the session, recorded in the session's state file so that
    ``labkit.connect()`` and the report runner (and its notebook kernels) attach to it."""
    with LocalCluster(brokers=3) as cluster:
        cluster.start()
        cluster.save_state(os.environ["LABKIT_STATE_FILE"])
        yield cluster


@pytest.fixture(scope="session")
def cluster3net(no_jvm_left_behind):
    """A 3-broker cluster behind the lab network (``LocalCluster(network=True)``), recorded
    in ``$LABKIT_NETWORK_STATE_FILE`` so that ``labkit.connect(network=True)`` in the
    notebooks attaches to it instead of starting one each."""
    with LocalCluster(brokers=3, network=True) as cluster:
        cluster.start()
        cluster.save_state(os.environ["LABKIT_NETWORK_STATE_FILE"])
        yield cluster


@pytest.fixture(scope="module")
def cluster3secured(no_jvm_left_behind):
    """A 3-broker cluster whose clients must log in over TLS (``security="sasl_ssl"``), for
    one test module and stopped after it; not recorded anywhere: tests reach it as a team's
    own cluster, through ``KAFKA_BOOTSTRAP_SERVERS`` and its ``client_config_file``."""
    with LocalCluster(brokers=3, security="sasl_ssl") as cluster:
        yield cluster.start()


@pytest.fixture(scope="session")
def cluster1(no_jvm_left_behind):
    """A single-broker cluster, not recorded anywhere."""
    with LocalCluster(brokers=1) as cluster:
        yield cluster.start()


@pytest.fixture(autouse=True)
def cluster3_whole_after_each_test(request):
    """After a test that used the session's 3-broker cluster, bring back any broker it left
    down or paused (say, because it failed midway), so the next test starts on a whole
    cluster rather than failing for another test's reason."""
    yield
    for name in ("cluster3", "cluster3net"):
        if name in request.fixturenames:
            heal(request.getfixturevalue(name), timeout=120)
