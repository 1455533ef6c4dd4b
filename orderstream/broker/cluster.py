"""A local multi-node KRaft cluster (every node broker and controller), for fault tests of replication.

With three nodes, topics get replication factor 3 and min.insync.replicas 2: one node can die and nothing that was
acknowledged (acks=all) is lost, while producing goes on.
"""

from __future__ import annotations

from pathlib import Path

from orderstream.broker.daemon import free_port
from orderstream.broker.distribution import KafkaDistribution
from orderstream.broker.local import BrokerSpec, LocalBroker, new_cluster_id


class LocalCluster:
    """N local brokers forming one KRaft quorum. start() returns when every node answers."""

    def __init__(self, home: Path, distribution: KafkaDistribution, nodes: int = 3, heap: str = "384m") -> None:
        ports = [(free_port(), free_port()) for _ in range(nodes)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{controller}" for i, (_, controller) in enumerate(ports))
        replication = str(min(3, nodes))
        min_isr = str(max(1, min(2, nodes - 1)))
        extra = (
            ("default.replication.factor", replication),
            ("min.insync.replicas", min_isr),
            ("offsets.topic.replication.factor", replication),
            ("transaction.state.log.replication.factor", replication),
            ("transaction.state.log.min.isr", min_isr),
            ("unclean.leader.election.enable", "false"),
        )
        self.brokers = [
            LocalBroker(
                BrokerSpec(
                    home=home / f"node{i + 1}",
                    port=port,
                    controller_port=controller,
                    heap=heap,
                    node_id=i + 1,
                    log_level="WARN",
                    quorum_voters=voters,
                    extra_properties=extra,
                ),
                distribution,
            )
            for i, (port, controller) in enumerate(ports)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(b.spec.bootstrap for b in self.brokers)

    def start(self, timeout_s: float = 120.0) -> None:
        cluster_id = new_cluster_id()
        processes = [broker.launch(cluster_id=cluster_id) for broker in self.brokers]
        for broker, process in zip(self.brokers, processes, strict=True):
            broker.wait_until_ready(process, timeout_s)

    def stop(self) -> None:
        for broker in self.brokers:
            broker.stop()
