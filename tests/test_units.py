"""Pure logic, no broker: profiles, client config files, tool discovery."""

import pytest

from labkit.cluster import jars, read_client_config
from labkit.runner.profiles import choose


def test_profile_choice_and_bad_profile():
    assert choose("smoke", smoke=1, standard=2, full=3) == 1
    assert choose("full", smoke=1, standard=2, full=3) == 3
    with pytest.raises(ValueError, match="'quick'.*smoke, standard, full"):
        choose("quick", smoke=1, standard=2, full=3)


def test_client_config_file(tmp_path):
    path = tmp_path / "c.properties"
    path.write_text("# SASL\n! a comment\n\nsecurity.protocol = SASL_SSL\nsasl.mechanism=PLAIN\n")
    assert read_client_config(path) == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN"}
    path.write_text("security.protocol SASL_SSL\n")
    with pytest.raises(ValueError, match="c.properties:1: expected key=value"):
        read_client_config(path)
    with pytest.raises(ValueError, match="not a file"):
        read_client_config(tmp_path / "missing.properties")


def test_missing_maven_or_java_says_what_to_install(monkeypatch, tmp_path):
    with pytest.raises(jars.MissingTool, match="install Maven"):
        jars.find_maven(path=str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(jars.MissingTool, match="install OpenJDK 17"):
        jars.find_java(path=str(tmp_path))


def test_old_java_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(jars.MissingTool, match="is Java 11.*Java 17 or newer"):
        jars.find_java()


def test_a_cluster_that_was_never_started_says_so_at_once():
    from labkit.cluster import ClusterError, LocalCluster

    with LocalCluster(brokers=3) as cluster:
        with pytest.raises(ClusterError, match=r"not started: call start\(\)"):
            cluster.create_topic("t")


def test_retrying_waits_out_transient_kafka_errors_only():
    from confluent_kafka import KafkaError, KafkaException

    from labkit.cluster import retrying

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise KafkaException(KafkaError(KafkaError._NOENT, "No leaders found"))
        return "answer"

    assert retrying(flaky, timeout=5, interval=0.01) == "answer" and len(calls) == 3

    def refused():
        calls.append(1)
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    calls.clear()
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        retrying(refused, timeout=5, interval=0.01)
    assert len(calls) == 1
