"""JMX metrics read through nodetool's bundled SJK: works on any cluster where nodetool works."""

from __future__ import annotations

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.parsers.sjk import HintCounters, dropped_messages, hint_counters
from cassandra_recovery.settings import ClusterConfig, NodeAccess

HINT_PATTERN = "org.apache.cassandra.metrics:name=*Hint*,*"
DROPPED_PATTERN = "org.apache.cassandra.metrics:type=DroppedMessage,name=Dropped,*"
# Legacy scopes (MUTATION, COUNTER_MUTATION...) count the same drops as the *_REQ verbs in 5.0.
MUTATION_VERBS = ("MUTATION_REQ", "COUNTER_MUTATION_REQ")


class JmxMetrics:
    """Hint and dropped-message counters per coordinator; one short-lived nodetool JVM per read."""

    def __init__(self, cluster: ClusterConfig, nodetool: Nodetool | None = None):
        self.cluster = cluster
        self.nodetool = nodetool or Nodetool(cluster)

    def _mx(self, node: str | NodeAccess, pattern: str) -> str:
        return self.nodetool.output(node, "sjk", "mx", "-mg", "-all", "-b", pattern, "-f", "Count", timeout_s=60)

    def hint_counters(self, node: str | NodeAccess) -> HintCounters:
        return hint_counters(self._mx(node, HINT_PATTERN))

    def dropped(self, node: str | NodeAccess) -> dict[str, int]:
        return dropped_messages(self._mx(node, DROPPED_PATTERN))

    def dropped_mutations(self, node: str | NodeAccess) -> int:
        d = self.dropped(node)
        return sum(d.get(v, 0) for v in MUTATION_VERBS)
