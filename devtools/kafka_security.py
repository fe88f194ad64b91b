"""Secure mode for the local broker: TLS from a throwaway CA, SCRAM users and ACLs.

Clients connect over SASL_SSL with SCRAM-SHA-512. The controller listener takes TLS with
client certificates only: the broker's own certificate is the single one the CA ever signs,
because the CA's key is dropped as soon as that certificate exists.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from secrets import token_urlsafe
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.x509 import KeyUsage

__all__ = [
    "ADMIN_USER",
    "PROJECTOR_USER",
    "RELAY_USER",
    "SCRAM_MECHANISM",
    "KafkaSecrets",
    "KafkaUser",
    "SecureKafka",
    "grant_access",
    "scram_format_arguments",
    "secure_broker_properties",
]

ADMIN_USER = "admin"
RELAY_USER = "relay"
PROJECTOR_USER = "projector"
USERS = (ADMIN_USER, RELAY_USER, PROJECTOR_USER)
SCRAM_MECHANISM = "SCRAM-SHA-512"
# The broker's principal on the controller listener (the subject of its certificate).
BROKER_SUBJECT = "CN=local-kafka-broker"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
CLIENT_LISTENER = "SASL_SSL"
CERT_VALIDITY = timedelta(days=365)


@dataclass(frozen=True)
class SecureKafka:
    """What a secure broker grants: the relay writes `topic`; the projector reads it in `group_id`.

    The admin user (a super user) can do anything.
    """

    topic: str = "orders.events"
    group_id: str = "query-projector"
    partitions: int = 3


@dataclass(frozen=True)
class KafkaUser:
    """A SCRAM user of the secure broker; the password lives in a file, as services read it."""

    name: str
    password_file: Path

    def password(self) -> str:
        """The password, read from its file."""
        return self.password_file.read_text().rstrip("\r\n")


class KafkaSecrets:
    """The CA certificate, broker key pair and user passwords of one secure broker, as files."""

    def __init__(self, directory: Path) -> None:
        """Name the files; nothing is written until ensure()."""
        self.directory = Path(directory)
        self.ca_file = self.directory / "ca.pem"
        self.broker_chain_file = self.directory / "broker-chain.pem"
        self.broker_key_file = self.directory / "broker-key.pem"

    def user(self, name: str) -> KafkaUser:
        """One of ADMIN_USER, RELAY_USER, PROJECTOR_USER."""
        if name not in USERS:
            raise ValueError(f"unknown Kafka user {name!r}; the secure broker has {USERS}")
        return KafkaUser(name, self.directory / f"{name}.password")

    def exist(self) -> bool:
        """Whether every file is there (a broker formatted with them can be restarted)."""
        files = [self.ca_file, self.broker_chain_file, self.broker_key_file]
        return all(path.exists() for path in files + [self.user(n).password_file for n in USERS])

    def ensure(self) -> None:
        """Create the TLS material and the passwords unless they all exist already."""
        if self.exist():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        ca_pem, chain_pem, key_pem = _issue_broker_certificate()
        self.ca_file.write_bytes(ca_pem)
        self.broker_chain_file.write_bytes(chain_pem)
        _write_private(self.broker_key_file, key_pem.decode())
        for name in USERS:
            _write_private(self.user(name).password_file, token_urlsafe(24) + "\n")

    def client_options(self, name: str) -> dict[str, Any]:
        """kafka-python options for connecting as one user."""
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_plain_username": name,
            "sasl_plain_password": self.user(name).password(),
            "ssl_cafile": str(self.ca_file),
            "ssl_check_hostname": True,
        }


def secure_broker_properties(
    secrets: KafkaSecrets, port: int, controller_port: int
) -> dict[str, str]:
    """The server.properties entries that replace the plaintext listeners."""
    admin = secrets.user(ADMIN_USER)
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin.name}" password="{admin.password()}";'
    )
    listener_prefix = f"listener.name.{CLIENT_LISTENER.lower()}"
    return {
        "listeners": (
            f"{CLIENT_LISTENER}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"{CLIENT_LISTENER}://127.0.0.1:{port}",
        "listener.security.protocol.map": f"CONTROLLER:SSL,{CLIENT_LISTENER}:SASL_SSL",
        # One node has no other broker to talk to, but the setting must name a listener.
        "inter.broker.listener.name": CLIENT_LISTENER,
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        f"{listener_prefix}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": jaas,
        # TLS with client certificates, not PLAINTEXT: the broker's principal there must be a
        # super user, and on PLAINTEXT that principal (User:ANONYMOUS) is any local process.
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": secrets.broker_chain_file.read_text(),
        "ssl.keystore.key": secrets.broker_key_file.read_text(),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.certificates": secrets.ca_file.read_text(),
        "ssl.endpoint.identification.algorithm": "https",
        "authorizer.class.name": STANDARD_AUTHORIZER,
        # The broker must be a super user on the controller listener: it registers there
        # before any ACL is loaded.
        "super.users": f"User:{admin.name};User:{BROKER_SUBJECT}",
        "allow.everyone.if.no.acl.found": "false",
    }


def scram_format_arguments(secrets: KafkaSecrets) -> list[str]:
    """`kafka-storage format` arguments that store every user's SCRAM credential."""
    # The passwords show on the command line while the format runs: fine for a test broker.
    arguments: list[str] = []
    for name in USERS:
        password = secrets.user(name).password()
        arguments += ["--add-scram", f"{SCRAM_MECHANISM}=[name={name},password={password}]"]
    return arguments


def grant_access(
    bootstrap_servers: str, secrets: KafkaSecrets, spec: SecureKafka, timeout: float = 30
) -> None:
    """As admin: create the topic and the ACLs, then wait until the broker enforces them."""
    from kafka import KafkaAdminClient  # lazy, like devtools.local_kafka
    from kafka.errors import TopicAlreadyExistsError

    acls = _acls(spec)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="local-kafka-setup",
        **secrets.client_options(ADMIN_USER),
    )
    try:
        with contextlib.suppress(TopicAlreadyExistsError):  # a restarted broker has it
            admin.create_topics(
                {spec.topic: {"num_partitions": spec.partitions, "replication_factor": 1}}
            )
        result = admin.create_acls(acls)
        if result["failed"]:
            raise RuntimeError(f"creating ACLs failed: {result['failed']}")
        admin.wait_for_topics([spec.topic], timeout_ms=int(timeout * 1000))
        _wait_for_acls(admin, acls, time.monotonic() + timeout)
    finally:
        admin.close()


def _acls(spec: SecureKafka) -> list[Any]:
    """Least privilege: the relay writes the topic, the projector reads it in its group.

    WRITE covers the idempotent producer's InitProducerId since Kafka 3.0 (KIP-679), so no
    IDEMPOTENT_WRITE on the cluster; READ and WRITE imply DESCRIBE, listed for the reader.
    """
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    topic = ResourcePattern(ResourceType.TOPIC, spec.topic)
    group = ResourcePattern(ResourceType.GROUP, spec.group_id)
    grants = [
        (RELAY_USER, ACLOperation.WRITE, topic),
        (RELAY_USER, ACLOperation.DESCRIBE, topic),
        (PROJECTOR_USER, ACLOperation.READ, topic),
        (PROJECTOR_USER, ACLOperation.READ, group),
    ]
    return [
        ACL(f"User:{user}", "*", operation, ACLPermissionType.ALLOW, resource)
        for user, operation, resource in grants
    ]


def _wait_for_acls(admin: Any, acls: list[Any], deadline: float) -> None:
    """Poll until the broker's authorizer lists every ACL (they arrive through the metadata log)."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    while True:
        listed, _error = admin.describe_acls(everything)
        missing = [acl for acl in acls if acl not in listed]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"the broker does not list these ACLs yet: {missing}")
        time.sleep(0.1)


def _issue_broker_certificate() -> tuple[bytes, bytes, bytes]:
    """A new CA and a broker certificate for 127.0.0.1/localhost: (CA, chain, key) as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-kafka throwaway CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    broker_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name.from_rfc4514_string(BROKER_SUBJECT)
    san = [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    broker_cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(broker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        # clientAuth too: the broker presents this certificate to its controller listener.
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    key_pem = broker_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca_pem, broker_cert.public_bytes(pem) + ca_pem, key_pem


def _key_usage(cert_sign: bool) -> KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, with no moment where it is readable by others."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file that already exists
    with os.fdopen(fd, "w") as file:
        file.write(text)
