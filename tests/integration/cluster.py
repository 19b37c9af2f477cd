"""A private three-node Kafka cluster for failover tests, started with scripts/kafka.sh
(KAFKA_NODES=3), and what the tests ask of it: which node leads what, kill -9 a node, bring it
back, wait until every replica has caught up."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import IsolationLevel, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from tests.conftest import run_server_script

NODES = 3


class Cluster:
    def __init__(self, state_dir: Path, base_port: int):
        self.ports = [base_port + 100 * i for i in range(NODES)]
        self.bootstrap = ",".join(f"localhost:{port}" for port in self.ports)
        self.env = {
            **os.environ,
            "KAFKA_NODES": str(NODES),
            "KAFKA_STATE_DIR": str(state_dir),
            "KAFKA_PORT": str(base_port),
            "KAFKA_CONTROLLER_PORT": str(base_port + 1),
            "KAFKA_SASL_PORT": "",
            "KAFKA_HEAP": "256m",
            # A node killed under load recovers its logs before it serves: 20-50 s in a make test,
            # over 90 s (the script's default) in a slower clean-clone run.
            "KAFKA_START_TIMEOUT": "240",
        }
        self._admin_client: AdminClient | None = None

    def _script(self, *command: str) -> None:
        run_server_script("kafka.sh", " ".join(command), self.env, timeout_s=300)

    def start(self) -> None:
        """Start every node that is down and wait until each is up."""
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def create_transaction_state(self) -> None:
        """The transaction coordinators' topic exists from the first transactional producer on: made
        here, so that every test finds a transaction coordinator, whichever guarantee runs first."""
        Producer({"bootstrap.servers": self.bootstrap, "transactional.id": "cluster-start"}).init_transactions(60)

    def kill(self, node: int) -> None:
        """SIGKILL one node: no clean shutdown, as when its machine fails."""
        self._script("kill", str(node))

    def replicate(self, topic: str, replicas: int) -> None:
        self._script("replicate", topic, str(replicas))

    def restart(self, node: int) -> None:
        """A clean stop (SIGTERM) then a start of one node, as in a rolling restart."""
        self.stop_node(node)
        self.start()

    def stop_node(self, node: int) -> None:
        """SIGTERM one node and wait until it has shut down cleanly."""
        pid_file = Path(self.env["KAFKA_STATE_DIR"]) / "cluster" / f"node{node}" / "broker.pid"
        pid = int(pid_file.read_text())
        os.kill(pid, 15)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        raise AssertionError(f"node {node} did not stop within 60 s")

    def _admin(self) -> AdminClient:
        # One client for the test's life: a request's future fails if its client is collected first.
        if self._admin_client is None:
            self._admin_client = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin_client

    def leader_of(self, topic: str, partition: int = 0, timeout_s: float = 60) -> int:
        """The node leading one partition now, once it has one (metadata may briefly list the topic
        without its partitions, or a partition without a leader, just after a failover)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                found = self._admin().list_topics(topic, timeout=10).topics[topic].partitions.get(partition)
            except Exception:  # a node still electing: ask again
                found = None
            if found is not None and found.leader >= 0:
                return int(found.leader)
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} partition {partition} has no leader after {timeout_s}s")
            time.sleep(0.5)

    def controller(self) -> int:
        return int(self._admin().describe_cluster(request_timeout=10).result(timeout=10).controller.id)

    def group_coordinator(self) -> int:
        """One offsets partition (kafka.sh): its leader coordinates every group."""
        return self.leader_of("__consumer_offsets")

    def transaction_coordinator(self) -> int:
        """One transaction-state partition (kafka.sh): its leader coordinates every transactional id."""
        return self.leader_of("__transaction_state")

    def replication_factors(self, topics: Iterable[str]) -> set[int]:
        """The replica counts found among the partitions of these topics."""
        metadata = self._admin().list_topics(timeout=10)
        return {len(p.replicas) for name in topics for p in metadata.topics[name].partitions.values()}

    def open_transactions(self, topic: str) -> dict[int, int]:
        """Per partition of `topic`: how far its last stable offset lags its end. Above 0 for long,
        a transaction there is still open (a read_committed reader waits at its first record)."""
        admin = self._admin()
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for isolation in (IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED):
            asked = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}
            futures = admin.list_offsets(asked, isolation_level=isolation, request_timeout=10)
            ends[isolation] = {tp.partition: future.result(timeout=10).offset for tp, future in futures.items()}
        return {
            p: ends[IsolationLevel.READ_UNCOMMITTED][p] - ends[IsolationLevel.READ_COMMITTED][p]
            for p in sorted(partitions)
        }

    def wait_until_replicated(self, topics: Iterable[str], timeout_s: float = 120) -> float:
        """Seconds until every partition of these topics (and the internal ones) has a leader and all
        its replicas in sync again."""
        started = time.monotonic()
        names = [*topics, "__consumer_offsets", "__transaction_state"]
        while time.monotonic() - started < timeout_s:
            try:
                metadata = self._admin().list_topics(timeout=10)
            except Exception:  # a node still electing: ask again
                time.sleep(0.5)
                continue
            partitions = [
                partition
                for name in names
                if name in metadata.topics
                for partition in metadata.topics[name].partitions.values()
            ]
            if partitions and all(p.leader >= 0 and len(p.isrs) == len(p.replicas) for p in partitions):
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"topics {names} not fully replicated after {timeout_s}s")

    def wait_until_whole(self, timeout_s: float = 120) -> None:
        """Until every node is a registered broker and every partition there is (of any topic) has
        a leader and all its replicas in sync: what a test may start from after another's failures."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                metadata = self._admin().list_topics(timeout=10)
            except Exception:  # a node still electing: ask again
                time.sleep(0.5)
                continue
            partitions = [p for topic in metadata.topics.values() for p in topic.partitions.values()]
            in_sync = all(p.leader >= 0 and len(p.isrs) == len(p.replicas) for p in partitions)
            if len(metadata.brokers) == NODES and in_sync:
                return
            time.sleep(0.5)
        raise AssertionError(f"the cluster is not whole (every node up, every replica in sync) after {timeout_s}s")
