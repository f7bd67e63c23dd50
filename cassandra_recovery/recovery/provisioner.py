"""Node provisioning behind the replacement step, chosen per cluster by name (`clusters.<id>.provisioner`, see
plugins.py): the lab's starts a real replacement node (lab/provisioner.py); other clusters need their own (cloud
API, Kubernetes operator) and otherwise get a clear error, never a pretend success."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import ClusterConfig, Settings


@dataclass(frozen=True)
class Replacement:
    dead_address: str
    new_address: str
    new_name: str


class Provisioner(Protocol):
    def replace(self, dead_address: str) -> Replacement:
        """Stop the dead node for good (wipe) and bring up a new node that takes its tokens by bootstrapping.
        Returns once the new node is up for every peer. Raises on failure."""
        ...


class NoProvisioner:
    """Registered as `none`, every cluster's default: a person replaces the node."""

    def __init__(self, settings: Settings, cluster: ClusterConfig):
        self.cluster_id = cluster.id

    def replace(self, dead_address: str) -> Replacement:
        raise ConfigError(
            f"cluster {self.cluster_id} has no node provisioner: replace {dead_address} by hand"
            " (replace_address_first_boot on a new node), then hand the incident back"
        )
