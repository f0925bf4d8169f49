"""The `server.properties` of one local KRaft node: pure text from ports and paths.

Every node is broker and controller in one JVM; the quorum is all nodes. PLAINTEXT carries
inter-broker traffic and the readiness probe; with security on, a SASL_SSL listener (PLAIN and
SCRAM) and an SSL listener that requires a client certificate sit beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from streamlearn.kafka.local.certs import CertFiles
from streamlearn.kafka.local.credentials import SASL_MECHANISMS

HOST = "127.0.0.1"


@dataclass(frozen=True)
class NodePorts:
    """One node's ports, chosen once and recorded so that restarts reuse them."""

    plaintext: int
    controller: int
    sasl_ssl: int | None = None
    ssl: int | None = None

    def to_json(self) -> dict:
        return asdict(self)


def replication(nodes: int) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) for a cluster of `nodes`: 3 and 2 from three
    nodes up, so one node can be lost without refusing acks=all writes; 1 and 1 below."""
    return (3, 2) if nodes >= 3 else (1, 1)


def _listeners(ports: NodePorts) -> tuple[list[str], list[str]]:
    """(listeners, advertised listeners) as `NAME://host:port` strings."""
    clients = [f"PLAINTEXT://{HOST}:{ports.plaintext}"]
    if ports.sasl_ssl is not None:
        clients.append(f"SASL_SSL://{HOST}:{ports.sasl_ssl}")
    if ports.ssl is not None:
        clients.append(f"SSL://{HOST}:{ports.ssl}")
    return [*clients[:1], f"CONTROLLER://{HOST}:{ports.controller}", *clients[1:]], clients


def _security_lines(certs: CertFiles, plain_jaas: str) -> list[str]:
    mechanisms = ",".join(SASL_MECHANISMS)
    return [
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs.server}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={certs.ca}",
        f"sasl.enabled.mechanisms={mechanisms}",
        f"listener.name.sasl_ssl.sasl.enabled.mechanisms={mechanisms}",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain_jaas}",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "listener.name.sasl_ssl.ssl.client.auth=none",
        "listener.name.ssl.ssl.client.auth=required",
    ]


def server_properties(
    node_id: int,
    nodes: Mapping[int, NodePorts],
    log_dir: Path,
    certs: CertFiles | None = None,
    plain_jaas: str | None = None,
) -> str:
    """The config of node `node_id` in a cluster of `nodes` (node id -> ports); security
    listeners are configured when the node has their ports and `certs` are given."""
    ports = nodes[node_id]
    listeners, advertised = _listeners(ports)
    voters = ",".join(f"{n}@{HOST}:{p.controller}" for n, p in sorted(nodes.items()))
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    if ports.sasl_ssl is not None:
        protocols.append("SASL_SSL:SASL_SSL")
    if ports.ssl is not None:
        protocols.append("SSL:SSL")
    factor, min_isr = replication(len(nodes))
    lines = [
        "process.roles=broker,controller",
        f"node.id={node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners={','.join(listeners)}",
        f"advertised.listeners={','.join(advertised)}",
        f"listener.security.protocol.map={','.join(protocols)}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={log_dir}",
        "num.partitions=1",
        "auto.create.topics.enable=false",
        f"default.replication.factor={factor}",
        f"min.insync.replicas={min_isr}",
        f"offsets.topic.replication.factor={factor}",
        "offsets.topic.num.partitions=8",
        f"transaction.state.log.replication.factor={factor}",
        f"transaction.state.log.min.isr={min_isr}",
        "transaction.state.log.num.partitions=4",
        "group.initial.rebalance.delay.ms=0",
        # Room for oversized events to reach the worker, which dead-letters them.
        "message.max.bytes=4194304",
        "log.retention.hours=168",
    ]
    if certs is not None and (ports.sasl_ssl is not None or ports.ssl is not None):
        if plain_jaas is None:
            raise ValueError("secure listeners need the PLAIN login module's JAAS config")
        lines += _security_lines(certs, plain_jaas)
    return "\n".join([*lines, ""])
