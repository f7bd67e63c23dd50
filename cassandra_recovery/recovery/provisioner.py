"""Node provisioning behind the replacement step: the lab starts a real replacement node; other clusters need
their own provisioner (cloud API, Kubernetes operator) and otherwise get a clear error, never a pretend success."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import Settings


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


class LabProvisioner:
    def __init__(self, settings: Settings):
        from cassandra_recovery.lab.cluster import Lab

        self.lab = Lab(settings.lab)

    def replace(self, dead_address: str) -> Replacement:
        dead = self.lab.node(dead_address)
        if self.lab.process(dead) is not None:  # wipe and replace of a node that came back: stop it first
            self.lab.kill(dead.name)
        new = self.lab.replace(dead.name)
        return Replacement(dead_address, new.address, new.name)


class NoProvisioner:
    def __init__(self, cluster_id: str):
        self.cluster_id = cluster_id

    def replace(self, dead_address: str) -> Replacement:
        raise ConfigError(
            f"cluster {self.cluster_id} has no node provisioner: replace {dead_address} by hand"
            " (replace_address_first_boot on a new node), then hand the incident back"
        )
