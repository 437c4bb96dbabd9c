"""Credentials for a secured embedded cluster: a throwaway CA, a broker certificate, a SCRAM user.

``LocalCluster(security="sasl_ssl")`` calls ``make_credentials`` once per cluster: it writes,
into the cluster's data directory (created 0700 by ``tempfile.mkdtemp``),

- ``ca.pem``: the certificate of a CA made for this cluster alone (``trustme``), which
  clients trust through ``ssl.ca.location``;
- ``broker.pem`` (0600): the brokers' private key (unencrypted PKCS#8, as Kafka's PEM
  keystore reads it) followed by their certificate chain, for 127.0.0.1 and localhost;

and picks the SCRAM-SHA-512 user ``lab`` with a random password. ``write_client_properties``
then writes ``client.properties`` (0600): the librdkafka settings a client needs, for
``KAFKA_CLIENT_CONFIG``. Nothing is kept anywhere else: ``LocalCluster.stop()`` removes the
data directory, and with it every key and the password.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SECURITY_MODES = ("sasl_ssl",)
"""What ``LocalCluster(security=...)`` accepts besides None (no security)."""

SCRAM_MECHANISM = "SCRAM-SHA-512"
USERNAME = "lab"
CLIENT_PROPERTIES = "client.properties"


def check_security(security: object) -> str | None:
    """Return ``security`` if ``LocalCluster`` supports it.

    Raises:
        ValueError: it is neither None nor one of ``SECURITY_MODES``.
    """
    if security is not None and security not in SECURITY_MODES:
        allowed = ", ".join(repr(m) for m in (None, *SECURITY_MODES))
        raise ValueError(f"LocalCluster(security={security!r}) is not supported; security must "
                         f"be one of {allowed}")
    return security


@dataclass(frozen=True)
class Credentials:
    """Where a secured cluster's TLS files are, and its SASL user.

    Attributes:
        ca_file: the CA certificate clients trust (PEM).
        keystore_file: the brokers' PKCS#8 key and certificate chain (PEM).
        username: the SCRAM user.
        password: its password (never printed, logged or recorded in a state file).
    """

    ca_file: Path
    keystore_file: Path
    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(ca_file={str(self.ca_file)!r}, username={self.username!r}, " \
               f"password='***')"

    def client_config(self) -> dict[str, str]:
        """The librdkafka settings of a client of the secured listener."""
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": SCRAM_MECHANISM,
            "sasl.username": self.username,
            "sasl.password": self.password,
            "ssl.ca.location": str(self.ca_file),
        }

    def scram_argument(self) -> str:
        """The ``--add-scram`` value of ``kafka-storage format`` that creates the user."""
        return f"{SCRAM_MECHANISM}=[name={self.username},password={self.password}]"


def make_credentials(directory: Path) -> Credentials:
    """Make a CA and a broker certificate for 127.0.0.1 and localhost in ``directory``.

    Returns:
        The files written and a new user with a random password.
    """
    import trustme  # only a secured cluster needs it (and the cryptography it brings)
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA(organization_name="labkit throwaway CA")
    issued = ca.issue_cert("127.0.0.1", "localhost")
    # trustme writes the traditional OpenSSL key format; Kafka's PEM keystore reads PKCS#8.
    key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    chain = b"".join(blob.bytes() for blob in issued.cert_chain_pems)
    ca_file = directory / "ca.pem"
    keystore_file = directory / "broker.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    _write_private(keystore_file, pkcs8 + chain)
    # '=' ',' ']' would break the --add-scram syntax; token_urlsafe uses none of them.
    return Credentials(ca_file, keystore_file, USERNAME, secrets.token_urlsafe(18))


def broker_properties(credentials: Credentials, listener: str) -> dict[str, str]:
    """The broker settings that make ``listener`` (a listener name) SASL_SSL with SCRAM."""
    prefix = f"listener.name.{listener.lower()}"
    return {
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(credentials.keystore_file),
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        f"{prefix}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    }


def write_client_properties(path: Path, bootstrap_servers: str,
                            credentials: Credentials) -> Path:
    """Write a ready ``KAFKA_CLIENT_CONFIG`` properties file (mode 0600) and return its path."""
    settings = {"bootstrap.servers": bootstrap_servers, **credentials.client_config()}
    text = "# librdkafka settings of the lab's secured cluster (KAFKA_CLIENT_CONFIG)\n"
    text += "".join(f"{k}={v}\n" for k, v in settings.items())
    _write_private(path, text.encode())
    return path


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner can read (created so: never briefly 0644)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
