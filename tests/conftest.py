"""Test fixtures: real Kafka clusters started by the test session, and a JVM leak check.

Tests never share the user's clusters: the session points ``LABKIT_STATE_FILE`` at a
temporary file and clears ``KAFKA_BOOTSTRAP_SERVERS`` (tests of the external path set it
themselves).
"""

import os

import pytest

from labkit.cluster import LocalCluster, labkit_jvms


@pytest.fixture(scope="session", autouse=True)
def no_jvm_left_behind(tmp_path_factory):
    """Fail the session if a broker JVM started during it is still running at the end."""
    before = set(labkit_jvms())
    saved = {k: os.environ.pop(k, None) for k in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_CLIENT_CONFIG")}
    os.environ["LABKIT_STATE_FILE"] = str(tmp_path_factory.mktemp("state") / "cluster.json")
    yield
    leftover = {pid: d for pid, d in labkit_jvms().items() if pid not in before}
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value
    assert not leftover, f"broker JVMs left running after the tests: {leftover}"


@pytest.fixture(scope="session")
def cluster3(no_jvm_left_behind):
    """A 3-broker cluster for the session, recorded in the session's state file so that
    ``labkit.connect()`` and the report runner (and its notebook kernels) attach to it."""
    with LocalCluster(brokers=3) as cluster:
        cluster.start()
        cluster.save_state(os.environ["LABKIT_STATE_FILE"])
        yield cluster


@pytest.fixture(scope="module")
def cluster1(no_jvm_left_behind):
    """A single-broker cluster, not recorded anywhere."""
    with LocalCluster(brokers=1) as cluster:
        yield cluster.start()
