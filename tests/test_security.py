"""A cluster that asks for credentials: the README's "own cluster" path, tested for real.

A 3-broker ``LocalCluster(security="sasl_ssl")`` (TLS from a throwaway CA, SCRAM-SHA-512)
stands in for a team's secured cluster: the report runner executes notebooks through
``KAFKA_BOOTSTRAP_SERVERS`` + ``KAFKA_CLIENT_CONFIG`` alone, the password must stay out of
everything it writes, and wrong credentials of each kind fail within seconds with their
cause named. ``cluster up --security sasl_ssl`` prints the two ``export`` lines, and
``cluster down`` removes every key and certificate.
"""

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

import labkit
from labkit.cluster import ClusterUnreachable, ExternalCluster, LocalCluster, read_client_config
from labkit.cluster.base import handshake_failure, refusal
from labkit.runner.report import run_report, verdict

SMOKE_NOTEBOOKS = "00,01,10"
HANG_BOUND = 15  # seconds: a bound on a hang, not a speed expectation


def own_cluster_env(monkeypatch, tmp_path, bootstrap: str, config_file: Path) -> None:
    """Point labkit at a cluster the way the README tells a team to, and at nothing else."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("KAFKA_CLIENT_CONFIG", str(config_file))
    monkeypatch.setenv("LABKIT_STATE_FILE", str(tmp_path / "no-cluster.json"))


@pytest.fixture(scope="module")
def secured_report(cluster3secured, tmp_path_factory):
    """Notebooks 00, 01 and 10 run by the report runner on the secured cluster, as on a
    team's own cluster (it attaches, starts nothing)."""
    outputs = tmp_path_factory.mktemp("secured-outputs")
    with pytest.MonkeyPatch.context() as monkeypatch:
        own_cluster_env(monkeypatch, tmp_path_factory.mktemp("secured-env"),
                        cluster3secured.bootstrap_servers, cluster3secured.client_config_file)
        rounds = run_report(profile="smoke", only=SMOKE_NOTEBOOKS, outputs=outputs,
                            progress=False)
    return rounds, outputs


def test_notebooks_run_on_a_secured_cluster_through_the_readme_path(secured_report):
    rounds, outputs = secured_report
    runs = rounds[0]
    assert [r.name[:2] for r in runs] == SMOKE_NOTEBOOKS.split(",")
    assert [(r.name, r.status, r.error) for r in runs if r.status != "ok"] == []
    lines, status = verdict(rounds, outputs, strict=True)
    assert status == 0, "\n".join(lines)
    assert all(r.checks for r in runs), "every notebook should check a finding"
    index = (outputs / "index.html").read_text()
    assert "external cluster" in index  # the runner attached; it started no cluster of its own


def test_the_password_stays_out_of_the_outputs(secured_report, cluster3secured):
    _, outputs = secured_report
    password = cluster3secured.security_config["sasl.password"].encode()
    files = [p for p in outputs.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".ipynb", ".html", ".jsonl", ".md"}
    leaked = [str(p.relative_to(outputs)) for p in files if password in p.read_bytes()]
    assert leaked == []


def the_right_settings(cluster: LocalCluster) -> dict[str, str]:
    return read_client_config(cluster.client_config_file)


def other_ca(tmp_path) -> str:
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


BAD_SETTINGS = {
    "wrong password": (lambda ok, tmp: {**ok, "sasl.password": "not-" + ok["sasl.password"]},
                       r"SASL authentication failed at .* \(wrong user or password\?\)"),
    "certificate of another CA": (lambda ok, tmp: {**ok, "ssl.ca.location": other_ca(tmp)},
                                  "TLS certificate verify failed at .*ssl.ca.location"),
    "no CA named": (lambda ok, tmp: {k: v for k, v in ok.items() if k != "ssl.ca.location"},
                    "TLS certificate verify failed at .*ssl.ca.location"),
    "plaintext client": (lambda ok, tmp: {"bootstrap.servers": ok["bootstrap.servers"]},
                         "closed the connection during the handshake: is security.protocol "
                         r"right\? \(this client speaks PLAINTEXT"),
}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_wrong_credentials_fail_within_seconds_naming_the_cause(case, cluster3secured,
                                                                tmp_path, monkeypatch):
    ok = the_right_settings(cluster3secured)
    make, cause = BAD_SETTINGS[case]
    config = tmp_path / "client.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in make(ok, tmp_path).items()))
    own_cluster_env(monkeypatch, tmp_path, cluster3secured.bootstrap_servers, config)
    start = time.monotonic()
    with pytest.raises(ClusterUnreachable, match=cause) as raised:
        labkit.connect()
    assert time.monotonic() - start < HANG_BOUND
    message = str(raised.value)
    assert cluster3secured.bootstrap_servers in message
    assert ok["sasl.password"] not in message and "\n" not in message


def test_the_right_credentials_reach_the_secured_cluster(cluster3secured, tmp_path,
                                                         monkeypatch):
    own_cluster_env(monkeypatch, tmp_path, cluster3secured.bootstrap_servers,
                    cluster3secured.client_config_file)
    external = labkit.connect()
    assert isinstance(external, ExternalCluster)
    assert external.brokers == [1, 2, 3]
    assert external.client_config()["security.protocol"] == "SASL_SSL"


def test_the_secured_cluster_keeps_its_files_private(cluster3secured):
    data_dir = cluster3secured.data_dir
    config = cluster3secured.client_config_file
    assert config == data_dir / "client.properties"
    for private in (config, data_dir / "broker.pem"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    settings = read_client_config(config)
    assert settings["bootstrap.servers"] == cluster3secured.bootstrap_servers
    assert settings["sasl.mechanism"] == "SCRAM-SHA-512"
    assert Path(settings["ssl.ca.location"]).parent == data_dir
    password = settings["sasl.password"].encode()
    # Kafka's own configs and logs never hold it (its JAAS config names no password).
    nodes = [cluster3secured.controller, *cluster3secured.nodes.values()]
    files = [n.config_file for n in nodes] + [f for n in nodes for f in n.log_dir.iterdir()]
    assert [str(f) for f in files if password in f.read_bytes()] == []


def run_labkit(*args, env):
    return subprocess.run([sys.executable, "-m", "labkit", *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.broker
def test_cluster_up_with_security_prints_exports_and_down_removes_the_files(tmp_path):
    state = tmp_path / "cluster.json"
    env = {**os.environ, "LABKIT_STATE_FILE": str(state)}
    config = None
    up = run_labkit("cluster", "up", "--brokers", "1", "--security", "sasl_ssl", env=env)
    try:
        assert up.returncode == 0, up.stderr
        exports = dict(re.findall(r"^\s*export (\w+)=(\S+)", up.stdout, re.M))
        assert set(exports) == {"KAFKA_BOOTSTRAP_SERVERS", "KAFKA_CLIENT_CONFIG"}, up.stdout
        config = Path(exports["KAFKA_CLIENT_CONFIG"])
        password = read_client_config(config)["sasl.password"]
        assert password not in up.stdout + up.stderr
        assert password not in state.read_text()  # the state file names the file instead
        # Another process attaches through the state file and logs in with what it names.
        attached = LocalCluster.attach(state)
        assert attached.security_config["sasl.password"] == password
        assert attached.brokers == [1]
        external = ExternalCluster(exports["KAFKA_BOOTSTRAP_SERVERS"], read_client_config(config))
        assert external.brokers == [1]
    finally:
        down = run_labkit("cluster", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert config is not None and not config.parent.exists() and not state.exists()


def test_security_is_validated_before_anything_starts():
    with pytest.raises(ValueError, match=r"security='tls'.*None, 'sasl_ssl'"):
        LocalCluster(brokers=1, security="tls")
    with pytest.raises(ValueError, match="network=True.*use one or the other"):
        LocalCluster(brokers=3, network=True, security="sasl_ssl")


# librdkafka's own words, as the probe records them (error_cb and log lines).
WRONG_PASSWORD = ("sasl_ssl://127.0.0.1:9092/bootstrap: SASL authentication error: Authentication "
                  "failed during authentication due to invalid credentials with SASL mechanism "
                  "SCRAM-SHA-512 (after 395ms in state AUTH_REQ)")
UNTRUSTED = ("sasl_ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: error:0A000086:SSL "
             "routines::certificate verify failed: broker certificate could not be verified, "
             "verify that ssl.ca.location is correctly configured (after 9ms in state "
             "SSL_HANDSHAKE)")
DROPPED = ("127.0.0.1:9092/bootstrap: Disconnected: connection closed by peer: receive 0 after "
           "POLLIN (after 7ms in state APIVERSION_QUERY)")
MECHANISM = ("sasl_ssl://127.0.0.1:9092/bootstrap: SASL PLAIN mechanism handshake failed: "
             "Broker: Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512 "
             "(after 301ms in state AUTH_HANDSHAKE)")


def test_causes_are_read_from_what_librdkafka_said():
    user = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "lab", "sasl.password": "s3cret"}
    where = "127.0.0.1:9092"
    said = refusal([WRONG_PASSWORD], user, where)
    assert said.startswith("SASL authentication failed at '127.0.0.1:9092' (wrong user or "
                           "password?): the broker refused user 'lab' with SCRAM-SHA-512")
    assert "s3cret" not in said
    assert refusal([UNTRUSTED], user, where).startswith("TLS certificate verify failed at")
    plain = {**user, "sasl.mechanism": "PLAIN"}
    assert refusal([MECHANISM], plain, where).endswith(
        "does not offer sasl.mechanism=PLAIN (it offers SCRAM-SHA-512)")
    assert refusal([DROPPED], {}, where) == ""  # not final: a broker may be restarting
    assert "is security.protocol right? (this client speaks PLAINTEXT" in handshake_failure(
        [DROPPED], {}, where)
    assert handshake_failure(["Connect to ipv4#127.0.0.1:9092 failed: Connection refused"],
                             {}, where) == ""
