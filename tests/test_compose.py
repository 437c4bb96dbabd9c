"""docker-compose.yml stays true to the embedded cluster: the same topology, the same
defaults, the ports the README names, and a Kafka version that is the embedded one or that
the README names as different. (No Docker engine runs here: the file is read, not run.)"""

import re
from pathlib import Path

import yaml

from labkit.cluster import jars, lab_defaults

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
README = (ROOT / "README.md").read_text()
BROKERS = {"kafka-1": 1, "kafka-2": 2, "kafka-3": 3}


def properties(service: str) -> dict[str, str]:
    """The broker properties a cp-kafka service's KAFKA_* variables set (a.b -> KAFKA_A_B)."""
    env = COMPOSE["services"][service]["environment"]
    return {key[6:].lower().replace("_", "."): str(value) for key, value in env.items()
            if key.startswith("KAFKA_") and key not in ("KAFKA_HEAP_OPTS",)}


def test_three_brokers_and_one_dedicated_controller():
    assert set(COMPOSE["services"]) == {"controller", *BROKERS}
    controller = properties("controller")
    assert controller["process.roles"] == "controller" and controller["node.id"] == "0"
    for service, node_id in BROKERS.items():
        props = properties(service)
        assert props["process.roles"] == "broker", service
        assert props["node.id"] == str(node_id), service
        assert props["controller.quorum.voters"] == "0@controller:9093", service


def test_the_ports_are_the_ones_the_readme_exports():
    exported = re.search(r"export KAFKA_BOOTSTRAP_SERVERS=(localhost:\d+(?:,localhost:\d+)*)",
                         README[README.index("### With Docker"):]).group(1)
    published = []
    for service in BROKERS:
        (mapping,) = COMPOSE["services"][service]["ports"]
        host, port, inside = mapping.split(":")
        assert host == "127.0.0.1" and port == inside, mapping
        assert f"EXTERNAL://localhost:{port}" in properties(service)["advertised.listeners"]
        published.append(f"localhost:{port}")
    assert exported.split(",") == published


def test_every_lab_default_is_set_alike():
    for service in ["controller", *BROKERS]:
        props = properties(service)
        differ = {key: (props.get(key), str(value)) for key, value in lab_defaults(3).items()
                  if props.get(key) != str(value)}
        assert not differ, f"{service}: (compose, embedded) {differ}"


def test_the_kafka_version_is_the_embedded_one_or_the_readme_says_which_differs():
    images = {s["image"] for s in COMPOSE["services"].values()}
    (image,) = images
    tag = re.fullmatch(r"confluentinc/cp-kafka:(\d+)\.(\d+)\.\d+", image)
    assert tag, f"unexpected image {image}"
    # Confluent Platform 8.m carries Apache Kafka 4.m (Confluent's interoperability table).
    kafka = f"4.{tag.group(2)}" if tag.group(1) == "8" else None
    assert kafka, f"no known Kafka version for {image}"
    embedded = ".".join(jars.KAFKA_VERSION.split(".")[:2])
    if kafka != embedded:
        section = README[README.index("### With Docker"):README.index("### On your own")]
        assert f"Apache Kafka {kafka}" in section and jars.KAFKA_VERSION in section
        assert image.split("/")[1] in section
