"""Apache Kafka's jars, resolved from Maven Central into a cache outside the repository.

The pinned ``labkit/cluster/kafka/pom.xml`` names the broker (``kafka_2.13``), Kafka's tools and a
logging backend. ``ensure_jars()`` copies their runtime classpath into
``<cache>/kafka-<version>/libs`` once; later calls reuse it. The cache lives in
``$LABKIT_CACHE`` (default ``~/.cache/kafka-lab``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

KAFKA_VERSION = "4.4.0"
POM = Path(__file__).parent / "kafka" / "pom.xml"
LOG4J_CONFIG = Path(__file__).parent / "kafka" / "log4j2.properties"
MIN_JAVA = 17


class MissingTool(RuntimeError):
    """Java or Maven is not installed (or too old); the message says what to install."""


def cache_dir() -> Path:
    """Return the lab's cache directory (``$LABKIT_CACHE`` or ``~/.cache/kafka-lab``)."""
    return Path(os.environ.get("LABKIT_CACHE") or Path.home() / ".cache" / "kafka-lab")


def libs_dir() -> Path:
    """Return the directory that holds the Kafka runtime classpath once resolved."""
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def find_java(path: str | None = None) -> str:
    """Return the ``java`` executable to run brokers with.

    ``$JAVA_HOME/bin/java`` wins over ``java`` on the PATH.

    Args:
        path: search path to use instead of ``$PATH`` (for tests).

    Raises:
        MissingTool: no java, or one older than 17.
    """
    java_home = os.environ.get("JAVA_HOME")
    candidates = [str(Path(java_home) / "bin" / "java")] if java_home else []
    on_path = shutil.which("java", path=path)
    candidates += [on_path] if on_path else []
    for java in candidates:
        if os.access(java, os.X_OK):
            major = _java_major(java)
            if major >= MIN_JAVA:
                return java
            raise MissingTool(
                f"{java} is Java {major}; Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer: "
                "install OpenJDK 17+ (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless) "
                "and put it on PATH or set JAVA_HOME"
            )
    raise MissingTool(
        f"no java found (JAVA_HOME or PATH); Kafka {KAFKA_VERSION} needs Java {MIN_JAVA}+: "
        "install OpenJDK 17+ (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)"
    )


def find_maven(path: str | None = None) -> str:
    """Return the ``mvn`` executable.

    Args:
        path: search path to use instead of ``$PATH`` (for tests).

    Raises:
        MissingTool: Maven is not on the PATH.
    """
    mvn = shutil.which("mvn", path=path)
    if not mvn:
        raise MissingTool(
            "Maven (mvn) is not on PATH; labkit fetches Kafka's jars from Maven Central with it: "
            "install Maven 3.6+ (Debian/Ubuntu: apt-get install maven)"
        )
    return mvn


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    # First line looks like: openjdk version "17.0.15" 2025-04-15  (or "1.8.0_392")
    version = out.split('"')[1] if '"' in out else "0"
    parts = version.split(".")
    return int(parts[1]) if parts[0] == "1" else int(parts[0].split("-")[0])


def ensure_jars(quiet: bool = True) -> Path:
    """Resolve Kafka's runtime classpath into the cache if it is not there yet.

    Args:
        quiet: hide Maven's output unless it fails.

    Returns:
        The directory holding every jar of the classpath.

    Raises:
        MissingTool: Maven (or Java, which Maven needs) is missing.
        RuntimeError: Maven failed; the message carries the end of its output.
    """
    libs = libs_dir()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    find_java()
    mvn = find_maven()
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-B", "-f", str(POM),
        f"-Dmaven.repo.local={cache_dir() / 'm2'}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    if quiet:
        cmd.insert(2, "-q")
    done = subprocess.run(cmd, capture_output=quiet, text=True)
    if done.returncode != 0:
        tail = "\n".join(((done.stdout or "") + (done.stderr or "")).splitlines()[-20:])
        raise RuntimeError(f"Maven could not resolve Kafka {KAFKA_VERSION} from {POM}:\n{tail}")
    if not any(staging.glob("kafka_2.13-*.jar")):
        raise RuntimeError(f"Maven finished but no kafka_2.13 jar is in {staging}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text(KAFKA_VERSION + "\n")
    return libs


def classpath() -> str:
    """Return the Java classpath string for the resolved jars (resolving them if needed)."""
    return str(ensure_jars() / "*")
