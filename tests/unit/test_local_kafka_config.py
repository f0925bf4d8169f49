"""The local broker's config, certificates and credentials, checked without starting Kafka."""

from __future__ import annotations

import ssl
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from streamlearn.errors import KafkaError
from streamlearn.kafka.local import LocalCluster, check_version
from streamlearn.kafka.local.certs import CertFiles, generate_certs
from streamlearn.kafka.local.cluster import Layout
from streamlearn.kafka.local.config import NodePorts, server_properties
from streamlearn.kafka.local.credentials import (
    ensure_credentials,
    plain_jaas,
    scram_args,
    write_env_file,
)
from streamlearn.kafka.local.versions import logging_args, pom_path


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_a_single_node_is_its_own_quorum_with_replication_one(tmp_path):
    config = properties(server_properties(1, {1: NodePorts(9092, 9093)}, tmp_path / "logs"))
    assert config["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert config["default.replication.factor"] == "1"
    assert config["min.insync.replicas"] == "1"
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["transaction.state.log.min.isr"] == "1"
    assert not any(key.startswith(("ssl.", "sasl.")) for key in config)


def test_three_nodes_vote_together_and_replicate_three_ways(tmp_path):
    nodes = {n: NodePorts(9000 + n, 9100 + n) for n in (1, 2, 3)}
    config = properties(server_properties(2, nodes, tmp_path))
    assert config["node.id"] == "2"
    assert config["controller.quorum.voters"] == (
        "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    )
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9002"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):  # fmt: skip
        assert config[key] == "3", key
    assert config["min.insync.replicas"] == config["transaction.state.log.min.isr"] == "2"


def test_secure_listeners_sit_beside_plaintext(tmp_path):
    certs = CertFiles.in_dir(tmp_path)
    ports = {1: NodePorts(9092, 9093, sasl_ssl=9094, ssl=9095)}
    config = properties(server_properties(1, ports, tmp_path, certs, plain_jaas("u", "p")))
    assert config["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094,SSL://127.0.0.1:9095"
    )
    assert config["inter.broker.listener.name"] == "PLAINTEXT"
    assert "SASL_SSL:SASL_SSL" in config["listener.security.protocol.map"]
    assert config["listener.name.ssl.ssl.client.auth"] == "required"
    assert config["ssl.keystore.type"] == config["ssl.truststore.type"] == "PEM"
    assert config["ssl.keystore.location"] == str(certs.server)
    assert config["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == (
        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    )
    assert 'user_u="p";' in config["listener.name.sasl_ssl.plain.sasl.jaas.config"]


def test_scram_users_are_created_for_both_hashes():
    assert scram_args("u", "pw") == [
        "--add-scram", "SCRAM-SHA-256=[name=u,password=pw]",
        "--add-scram", "SCRAM-SHA-512=[name=u,password=pw]",
    ]  # fmt: skip


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificates_chain_to_the_ca_and_name_the_loopback_host(tmp_path):
    files = generate_certs(tmp_path)
    ca = load(files.ca)
    server = x509.load_pem_x509_certificates(files.server.read_bytes())[0]
    client = load(files.client_cert)
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert b"-----BEGIN PRIVATE KEY-----" in files.server.read_bytes()  # PKCS#8, as Kafka reads
    for private in (files.server, files.client_key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    # Python's TLS accepts them as the client side of mutual TLS.
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.client_cert), str(files.client_key))


def test_credentials_are_generated_once_and_kept(tmp_path):
    first = ensure_credentials(tmp_path)
    ca = first.ca_file.read_bytes()
    assert len(first.password) == 32 and first.password.isalnum()
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o600
    again = ensure_credentials(tmp_path)
    assert again == first and again.password == first.password
    assert again.ca_file.read_bytes() == ca


def test_the_env_file_sources_into_streamlearn_variables(tmp_path):
    cluster = LocalCluster(tmp_path, brokers=1, security=True)
    env = cluster.credentials.env("127.0.0.1:1234")
    path = write_env_file(tmp_path / "client.env", env)
    shell = subprocess.run(
        ["sh", "-c", f". {path} && env"], capture_output=True, text=True, check=True
    )
    exported = properties(shell.stdout)
    assert exported["STREAMLEARN_BROKER"] == "127.0.0.1:1234"
    assert exported["STREAMLEARN_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert exported["STREAMLEARN_SASL_PASSWORD_FILE"] == str(cluster.credentials.password_file)
    assert cluster.credentials.password not in path.read_text()


def test_versions_are_pinned_with_their_own_pom_and_logging():
    assert check_version("3.9.1") == "3.9.1"
    assert "<kafka.version>4.1.1</kafka.version>" in pom_path("4.1.1").read_text()
    assert "log4j2.configurationFile" in logging_args("4.1.1", None)[0]
    assert "log4j.configuration=" in logging_args("3.9.1", None)[0]
    with pytest.raises(
        KafkaError, match=r"Kafka 2\.8\.0 is not one streamlearn can run; pick one of"
    ):
        check_version("2.8.0")


def test_a_data_dir_refuses_another_cluster_shape(tmp_path):
    layout = Layout("3.9.1", "id", False, {n: NodePorts(n, 10 + n) for n in (1, 2, 3)})
    (tmp_path / "cluster.json").write_text(layout.to_json())
    assert LocalCluster(tmp_path).brokers == 3  # unspecified: as recorded
    with pytest.raises(KafkaError, match=r"holds a 3-node Kafka 3\.9\.1 cluster"):
        LocalCluster(tmp_path, brokers=1)
    with pytest.raises(KafkaError, match="holds a 3-node"):
        LocalCluster(tmp_path, kafka_version="4.1.1")


def test_secure_listeners_refuse_a_data_dir_formatted_without_them(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "meta.properties").write_text("cluster.id=x\n")  # an older broker's
    with pytest.raises(KafkaError, match="formatted without --secure-listeners"):
        LocalCluster(tmp_path, brokers=1, security=True)._layout()
